"""``ml-images db suggest-indexes``: time the pending query and, where it misses its budget, say which index fixes it.

On a Django catalog the project may not add an index to the shop's tables (``README.md``, "On an existing Django
catalog"): the pending query runs on Django's own indexes (the picture table's ``product_id`` index serves the
anti-join; the project's tables carry their own). What a large catalog lacks is an index on the product table's
selection columns; this module prints the ``CREATE INDEX CONCURRENTLY`` statement for the shop's DBA to decide on,
and never runs it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from ml_images.catalog.layout import layout_of
from ml_images.catalog.selection import ImageCandidateSelector

#: The pending query should answer within this many seconds (a sensor tick and ``ml-images fetch`` run it).
BUDGET_SECONDS = 1.0
# The selection's own index in the standalone schema (``models.py``), the same shape here.
_COLUMNS = ("last_updated", "id")
_INCLUDE = ("category", "price")


@dataclass(frozen=True)
class Advice:
    seconds: float  # the slowest of the timed queries
    products: int  # rows of the product table
    statements: list[str]  # empty when the budget is met or the index exists
    budget: float = BUDGET_SECONDS

    @property
    def within_budget(self) -> bool:
        return self.seconds < self.budget


def time_pending_query(selector: ImageCandidateSelector, limit: int = 500) -> float:
    """Seconds of the slowest of the selection's queries: the first ``limit`` pending ids, and the count."""
    slowest = 0.0
    for run in (lambda: selector.pending_product_ids(limit), selector.count_pending):
        started = time.perf_counter()
        run()
        slowest = max(slowest, time.perf_counter() - started)
    return slowest


def index_statement(engine: sa.Engine) -> str:
    """The index that serves the selection on this catalog's product table, as this database writes it."""
    layout = layout_of(engine)
    table = layout.shop_tables[0]
    preparer = engine.dialect.identifier_preparer
    name = f"ml_images_{table}_pending"[:63]
    columns = ", ".join(preparer.quote(c) for c in _COLUMNS)
    if engine.dialect.name == "postgresql":
        include = ", ".join(preparer.quote(c) for c in _INCLUDE)
        return (
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {preparer.quote(name)} ON {preparer.quote(table)} "
            f"({columns}) INCLUDE ({include}) WHERE is_for_mercadolibre AND is_active;"
        )
    return (
        f"CREATE INDEX IF NOT EXISTS {preparer.quote(name)} ON {preparer.quote(table)} ({columns}) "
        "WHERE is_for_mercadolibre = 1 AND is_active = 1;"
    )


def _has_selection_index(engine: sa.Engine) -> bool:
    table = layout_of(engine).shop_tables[0]
    with engine.connect() as connection:
        indexes = sa.inspect(connection).get_indexes(table)
    return any(list(index["column_names"][:2]) == list(_COLUMNS) for index in indexes)


def advise(
    selector: ImageCandidateSelector, session_factory: sessionmaker[Session], budget: float = BUDGET_SECONDS
) -> Advice:
    engine = selector.product_filter.engine
    seconds = time_pending_query(selector)
    with session_factory() as session:
        products = int(session.scalar(sa.select(sa.func.count()).select_from(selector.models.ProductMaster)) or 0)
    statements = [] if seconds < budget or _has_selection_index(engine) else [index_statement(engine)]
    return Advice(seconds=seconds, products=products, statements=statements, budget=budget)
