"""The pending query on a Django catalog of 1,000,000 products: Django's own indexes, then the suggested one.

``python -m benchmarks.pending_query_django [--rows N] [--url SERVER_URL] [--repeats R] [--no-append]``

Creates a throw-away PostgreSQL database, builds the three tables with Django's own ``migrate`` (the test app of
``ml_images_tests/django_catalog``: Django is a development dependency), migrates the project's ``ml_images_*``
tables (``ML_IMAGES_CATALOG_LAYOUT=django``), seeds the catalog shape of ``benchmarks/selection_at_scale.py`` into
the Django tables and times the selection's queries on Django's indexes alone. Then it asks
``ml-images db suggest-indexes``'s logic what it would print, creates that index on the scratch copy (what a DBA
who accepts the suggestion would do) and times the queries again. Appends both tables to ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from benchmarks.results import append_results, format_table
from benchmarks.selection_at_scale import (
    _ATTEMPTS,
    DEFAULT_SERVER_URL,
    GOAL_SECONDS,
    Timing,
    explain,
    load_average,
    scratch_database,
    time_it,
    vacuum_analyze,
)
from ml_images.catalog.db import create_catalog_engine, make_session_factory, upgrade_schema
from ml_images.catalog.index_advice import advise
from ml_images.catalog.layout import CatalogLayout
from ml_images.catalog.rules import DEFAULT_PUBLICATION_RULES
from ml_images.catalog.selection import ImageCandidateSelector, MercadoLibreFilter

LAYOUT = CatalogLayout("django", "aiecommerce")

_SEED_PRODUCTS = """
INSERT INTO aiecommerce_productmaster (id, code, sku, description, price, category, last_updated, is_active,
                                       is_for_mercadolibre, specs, normalized_name, model_name)
SELECT i, 'P' || lpad(i::text, 8, '0'), 'SKU-' || i, 'Product ' || i,
       CASE WHEN b < 10 THEN (ARRAY[1000, 0, 500])[1 + i % 3] + (i % 997)
            WHEN b < 20 THEN CASE WHEN i % 2 = 0 THEN 999.99 - (i % 500) ELSE 5000 END
            ELSE 10 + (i % 3000) END,
       CASE WHEN b < 10 THEN (ARRAY['NOTEBOOK', 'monitor', ' Computer '])[1 + i % 3]
            WHEN b < 20 THEN CASE WHEN i % 2 = 0 THEN 'NOTEBOOK'
                                  ELSE (ARRAY['Cartoons', 'TOYS', 'NOTEBOOKS'])[1 + i % 3] END
            ELSE (ARRAY['NOTEBOOK', 'MONITOR', 'COMPUTER', 'TOYS', 'PHONE'])[1 + i % 5] END,
       CASE WHEN b < 20 THEN CAST(:now AS timestamptz) - (i % 82800) * interval '1 second'
            WHEN b < 40 THEN CAST(:now AS timestamptz) - interval '25 hours' - (i % 400) * interval '1 day'
            ELSE CAST(:now AS timestamptz) - (i % 365) * interval '1 day' END,
       b NOT BETWEEN 40 AND 44, b < 45,
       jsonb_build_object('brand', 'Brand' || (i % 50), 'model', 'M' || i), 'product ' || i, 'M' || i
FROM (SELECT i, i % 100 AS b FROM generate_series(1, :n) AS i) AS s
"""

_SEED_IMAGES = """
INSERT INTO aiecommerce_productimage (product_id, url, "order", is_processed)
SELECT i, 'https://cdn.example.test/products/' || i || '/' || o || '.jpg', o, true
FROM generate_series(1, :n) AS i CROSS JOIN generate_series(0, 2) AS o
WHERE i % 100 < 5
"""

_SEED_LISTINGS = """
INSERT INTO aiecommerce_mercadolibrelisting (product_master_id, ml_id, status, sync_error, created_at, updated_at)
SELECT i, CASE WHEN i % 100 < 5 THEN 'MLA' || i END,
       CASE WHEN i % 100 < 5 THEN 'ACTIVE' WHEN i % 100 = 5 THEN 'ERROR' ELSE 'PAUSED' END,
       CASE WHEN i % 100 = 5 THEN 'images: all candidates refused' END,
       CAST(:now AS timestamptz) - interval '30 days', CAST(:now AS timestamptz) - interval '1 day'
FROM generate_series(1, :n) AS i
WHERE i % 100 < 5 OR (i % 100 = 5 AND (i / 100) % 2 = 0) OR i % 100 BETWEEN 45 AND 59
"""


def seed(engine: sa.Engine, rows: int, now: datetime) -> int:
    """Fills the Django tables and the project's attempts; returns the number of pending products."""
    params = {"n": rows, "now": now}
    with engine.begin() as conn:
        conn.execute(sa.text(_SEED_PRODUCTS), params)
        conn.execute(sa.text(_SEED_IMAGES), params)
        for condition, outcome, started_ago, finished_ago, reason_code in _ATTEMPTS:
            finished = f"CAST(:now AS timestamptz) - {finished_ago}" if finished_ago else "NULL"
            conn.execute(
                sa.text(
                    "INSERT INTO ml_images_fetch_attempt (product_id, run_id, started_at, finished_at, outcome, "  # noqa: S608
                    "reason_code, search_calls, candidates_found, images_stored) "
                    f"SELECT i, 'bench', CAST(:now AS timestamptz) - {started_ago}, {finished}, :outcome, "
                    ":reason_code, 1, 5, CASE WHEN :outcome = 'stored' THEN 3 ELSE 0 END "
                    f"FROM generate_series(1, :n) AS i WHERE {condition}"
                ),
                {**params, "outcome": outcome, "reason_code": reason_code},
            )
        conn.execute(sa.text(_SEED_LISTINGS), params)
        conn.execute(
            sa.text(
                "SELECT setval(pg_get_serial_sequence('aiecommerce_productmaster', 'id'), "
                "(SELECT max(id) FROM aiecommerce_productmaster))"
            )
        )
    eligible = sum(1 for i in range(1, rows + 1) if i % 100 < 10)
    with_images = sum(1 for i in range(1, rows + 1) if i % 100 < 5)
    cooling = sum(1 for i in range(1, rows + 1) if i % 100 == 5 and (i // 100) % 2 == 0)
    return eligible - with_images - cooling


def _timings(selector: ImageCandidateSelector, repeats: int, label: str) -> list[Timing]:
    return [
        time_it(f"{label}: pending_product_ids()", selector.pending_product_ids, len, repeats),
        time_it(f"{label}: pending_product_ids(limit=500)", lambda: selector.pending_product_ids(500), len, repeats),
        time_it(f"{label}: count_pending()", selector.count_pending, lambda n: n, repeats),
    ]


def run(rows: int, server_url: str, repeats: int) -> tuple[str, list[dict[str, str]], str, list[str], float]:
    from ml_images_tests.django_catalog.harness import use_django_catalog

    now = datetime.now(UTC)
    with scratch_database(server_url) as url, use_django_catalog(url):
        engine = create_catalog_engine(url, LAYOUT)
        try:
            upgrade_schema(engine)
            print(f"seeding {rows:,} products into the Django tables …", flush=True)
            pending = seed(engine, rows, now)
            vacuum_analyze(engine)
            sessions = make_session_factory(engine)
            selector = ImageCandidateSelector(MercadoLibreFilter(sessions, DEFAULT_PUBLICATION_RULES, now=lambda: now))
            load = load_average()
            before = _timings(selector, repeats, "Django's indexes")
            if before[0].rows != pending:
                raise AssertionError(f"selection returned {before[0].rows} pending products, seeded {pending}")
            plan = explain(engine, selector.pending_ids_query())
            advice = advise(selector, sessions)
            after: list[Timing] = []
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                for statement in advice.statements:
                    conn.execute(sa.text(statement))
            if advice.statements:
                vacuum_analyze(engine)
                after = _timings(selector, repeats, "with the suggested index")
                plan += "\n\n-- with the suggested index:\n" + explain(engine, selector.pending_ids_query())
            with engine.connect() as conn:
                server = str(conn.execute(sa.text("SHOW server_version")).scalar_one()).split()[0]
        finally:
            engine.dispose()
    title = f"Pending query on a Django catalog — {rows:,} products in PostgreSQL {server}, median of {repeats}"
    return title, [t.row() for t in before + after], plan, advice.statements, load


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.pending_query_django", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--url", default=DEFAULT_SERVER_URL, help="PostgreSQL server URL (a scratch database is made)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-append", action="store_true", help="print only; do not append to benchmarks/RESULTS.md")
    args = parser.parse_args(argv)
    if args.rows < 100 or args.repeats < 3:
        parser.error("--rows must be >= 100 and --repeats >= 3")
    if make_url(args.url).get_backend_name() != "postgresql":
        parser.error("--url must be a PostgreSQL server URL")
    title, rows, plan, statements, load = run(args.rows, args.url, args.repeats)
    print(f"\n## {title}\n\n{format_table(rows)}\n\n{plan}\n")
    suggested = "; ".join(f"`{s}`" for s in statements) or "none (the budget was met)"
    notes = (
        f"Goal: under {GOAL_SECONDS:g} s. `ml-images db suggest-indexes` suggested: {suggested}. The 1-min load "
        f"average was {load:.2f} when the timing started (shared machine). Reproduce: "
        f"`python -m benchmarks.pending_query_django --rows {args.rows}`."
    )
    print(notes)
    if not args.no_append:
        append_results(title, rows, notes=notes)
        print("appended to benchmarks/RESULTS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
