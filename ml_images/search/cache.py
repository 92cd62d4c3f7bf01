"""Search results cached in the catalog database, per (provider, query), so a retried run does not pay twice."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ml_images.catalog.layout import models_of
from ml_images.catalog.models import utcnow
from ml_images.errors import CatalogUnavailableError
from ml_images.search.candidates import ImageCandidate

log = logging.getLogger(__name__)

_MAX_QUERY_LENGTH = 300  # the column's width; longer queries are simply not cached
_MAX_PROVIDER_LENGTH = 32


class SearchCache:
    """``get`` → the cached candidates (an empty list is a cached "no results"), or None on a miss/expiry.

    Database outages surface as ``CatalogUnavailableError``; the search service treats them as a miss (on
    read) or logs them (on write), because the cache is an optimisation and must never cost a result.
    """

    def __init__(
        self,
        session_factory: Callable[[], Session],
        ttl_hours: float = 168.0,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self._session_factory = session_factory
        self.ttl = timedelta(hours=ttl_hours)
        self._now = now

    def _cacheable(self, provider: str, query: str) -> bool:
        return (
            self.ttl > timedelta(0)
            and 0 < len(query) <= _MAX_QUERY_LENGTH
            and 0 < len(provider) <= _MAX_PROVIDER_LENGTH
        )

    def get(self, provider: str, query: str) -> list[ImageCandidate] | None:
        if not self._cacheable(provider, query):
            return None
        try:
            with self._session_factory() as session:
                SearchCacheEntry = models_of(session).SearchCacheEntry  # the catalog layout's table
                entry = session.scalar(
                    sa.select(SearchCacheEntry).where(
                        SearchCacheEntry.provider == provider, SearchCacheEntry.query == query
                    )
                )
                if entry is None or entry.expires_at <= self._now():
                    return None
                results = entry.results
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
            raise CatalogUnavailableError(f"search cache unreadable: {type(exc).__name__}") from None
        try:
            return [ImageCandidate.from_dict(item) for item in results]
        except (KeyError, TypeError, ValueError, AttributeError):
            log.warning("ignoring an unreadable search cache entry for provider %s", provider)
            return None

    def put(self, provider: str, query: str, candidates: Sequence[ImageCandidate], calls: int) -> None:
        if not self._cacheable(provider, query):
            return
        now = self._now()
        values: dict[str, Any] = {
            "provider": provider,
            "query": query,
            "results": [c.to_dict() for c in candidates],
            "calls": calls,
            "created_at": now,
            "expires_at": now + self.ttl,
        }
        try:
            with self._session_factory() as session, session.begin():
                self._upsert(session, values)
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
            raise CatalogUnavailableError(f"search cache not written: {type(exc).__name__}") from None

    @staticmethod
    def _upsert(session: Session, values: dict[str, Any]) -> None:
        SearchCacheEntry = models_of(session).SearchCacheEntry  # the catalog layout's table
        updated = {k: values[k] for k in ("results", "calls", "created_at", "expires_at")}
        dialect = session.get_bind().dialect.name
        if dialect in ("postgresql", "sqlite"):
            # One statement: two workers caching the same query at once cannot collide on the unique key.
            insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
            statement = insert(SearchCacheEntry).values(**values)
            statement = statement.on_conflict_do_update(
                index_elements=[SearchCacheEntry.provider, SearchCacheEntry.query],
                set_={k: getattr(statement.excluded, k) for k in updated},
            )
            session.execute(statement)
            return
        entry = session.scalar(
            sa.select(SearchCacheEntry)
            .where(SearchCacheEntry.provider == values["provider"], SearchCacheEntry.query == values["query"])
            .with_for_update()
        )
        if entry is None:
            session.add(SearchCacheEntry(**values))
        else:
            for key, value in updated.items():
                setattr(entry, key, value)
