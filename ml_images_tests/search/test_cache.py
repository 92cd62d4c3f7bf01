"""SearchCache on SQLite and PostgreSQL, schema created by the project's migrations."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from ml_images.catalog.db import create_catalog_engine, make_session_factory, upgrade_schema
from ml_images.catalog.models import SearchCacheEntry
from ml_images.search.cache import SearchCache
from ml_images.search.candidates import ImageCandidate


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    upgrade_schema(database_url)
    engine = create_catalog_engine(database_url)
    try:
        yield make_session_factory(engine)
    finally:
        engine.dispose()


CANDIDATES = [
    ImageCandidate(
        image_url="https://www.hp.com/ar/15-fd0011la.png",
        width=1200,
        height=1200,
        page_url="https://www.hp.com/ar-es/shop/15-fd0011la",
        source="www.hp.com",
        title="Notebook HP 15-fd0011la — cámara, teclado en español (ñ)",
        rank=0,
    ),
    ImageCandidate(image_url="https://tienda.example.com.ar/hp15.jpg", rank=1),
]


def test_round_trip_and_miss(sessions: sessionmaker[Session]) -> None:
    cache = SearchCache(sessions)
    assert cache.get("brave", "Notebook HP 15-fd0011la") is None
    cache.put("brave", "Notebook HP 15-fd0011la", CANDIDATES, calls=1)
    assert cache.get("brave", "Notebook HP 15-fd0011la") == CANDIDATES
    assert cache.get("serpapi", "Notebook HP 15-fd0011la") is None  # per provider
    assert cache.get("brave", "notebook hp 15-fd0011la") is None  # exact query


def test_upsert_replaces_the_entry(sessions: sessionmaker[Session]) -> None:
    cache = SearchCache(sessions)
    cache.put("brave", "q", CANDIDATES, calls=2)
    cache.put("brave", "q", CANDIDATES[1:], calls=1)
    assert cache.get("brave", "q") == CANDIDATES[1:]
    with sessions() as session:
        entries = session.scalars(sa.select(SearchCacheEntry)).all()
        assert len(entries) == 1
        assert entries[0].calls == 1


def test_expired_entry_is_a_miss(sessions: sessionmaker[Session]) -> None:
    clock = Clock()
    cache = SearchCache(sessions, ttl_hours=168.0, now=clock)
    cache.put("brave", "q", CANDIDATES, calls=1)
    clock.now += timedelta(days=6, hours=23)
    assert cache.get("brave", "q") == CANDIDATES
    clock.now += timedelta(hours=1)
    assert cache.get("brave", "q") is None
    cache.put("brave", "q", [], calls=1)  # refreshed after expiry: an empty result is cached too
    assert cache.get("brave", "q") == []


def test_zero_ttl_disables_the_cache(sessions: sessionmaker[Session]) -> None:
    cache = SearchCache(sessions, ttl_hours=0)
    cache.put("brave", "q", CANDIDATES, calls=1)
    assert cache.get("brave", "q") is None


def test_overlong_query_is_not_cached(sessions: sessionmaker[Session]) -> None:
    cache = SearchCache(sessions)
    query = "x" * 301
    cache.put("brave", query, CANDIDATES, calls=1)
    assert cache.get("brave", query) is None


def test_unreadable_entry_is_a_miss(sessions: sessionmaker[Session]) -> None:
    with sessions() as session, session.begin():
        session.add(
            SearchCacheEntry(
                provider="brave",
                query="q",
                results=[{"no_image_url": True}],
                calls=1,
                expires_at=datetime.now(UTC) + timedelta(days=1),
            )
        )
    assert SearchCache(sessions).get("brave", "q") is None
