"""Fixtures of the catalog tests: a migrated database (SQLite and PostgreSQL), a fixed clock, product factories."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from ml_images.catalog.db import create_catalog_engine, make_session_factory, upgrade_schema
from ml_images.catalog.models import ProductImage, ProductMaster

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


MakeProduct = Callable[..., int]


@dataclass
class Clock:
    """A settable "now" for the services under test (freshness, cooldown and claim TTL are relative to it)."""

    current: datetime

    def __call__(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += timedelta(**delta)


class StatementCounter:
    """Counts the SQL statements an engine executes (to prove a selection is one query)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.statements: list[str] = []

    def _record(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.statements.append(statement)

    def __enter__(self) -> StatementCounter:
        sa.event.listen(self.engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *exc: object) -> None:
        sa.event.remove(self.engine, "before_cursor_execute", self._record)

    @property
    def selects(self) -> list[str]:
        return [s for s in self.statements if s.lstrip().upper().startswith("SELECT")]


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def migrated_url(database_url: str) -> str:
    """The test's own database (SQLite file or fresh PostgreSQL database), upgraded to head."""
    upgrade_schema(database_url)
    return database_url


@pytest.fixture
def engine(migrated_url: str) -> Iterator[sa.Engine]:
    engine = create_catalog_engine(migrated_url)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def session_factory(engine: sa.Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@pytest.fixture
def make_product(session_factory: sessionmaker[Session], clock: Clock) -> MakeProduct:
    """Inserts a product that is eligible under the default rules unless overridden; returns its id."""
    counter = itertools.count(1)

    def make(**overrides: Any) -> int:
        number = next(counter)
        values: dict[str, Any] = {
            "code": f"P{number:04d}",
            "description": f"Notebook {number}",
            "price": Decimal("1500.00"),
            "category": "NOTEBOOK",
            "is_for_mercadolibre": True,
            "is_active": True,
            "last_updated": clock() - timedelta(hours=1),
            "specs": {"brand": "Acme", "model": f"X{number}"},
        }
        values.update(overrides)
        with session_factory() as session, session.begin():
            product = ProductMaster(**values)
            session.add(product)
            session.flush()
            return product.id

    return make


@pytest.fixture
def add_image(session_factory: sessionmaker[Session]) -> Callable[..., None]:
    def add(product_id: int, order: int = 0, storage_key: str | None = None) -> None:
        with session_factory() as session, session.begin():
            session.add(
                ProductImage(
                    product_id=product_id,
                    url=f"https://cdn.example.test/{product_id}/{order}.jpg",
                    order=order,
                    is_processed=True,
                    storage_key=storage_key or f"products/{product_id}/{order}.jpg",
                )
            )

    return add


@pytest.fixture
def count_statements(engine: sa.Engine) -> Callable[[], StatementCounter]:
    """``with count_statements() as counter:`` records the SQL statements run inside the block."""
    return lambda: StatementCounter(engine)
