"""Issue 7.3 (second half) — one tick of ``new_eligible_products_sensor`` against a large catalog.

The real sensor definition is evaluated with ``build_sensor_context`` on a persistent (SQLite) Dagster instance,
with the catalog resource pointing at the given database. Between ticks the partitions the tick asked for are
registered, as the daemon does, and the returned cursor is fed to the next tick — the state a running deployment
is in. The first tick includes opening the catalog engine; the later ones are what every interval costs.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from typing import Any

from benchmarks.harness import Summary, summarize


@dataclass(frozen=True)
class SensorTickResult:
    first_tick_s: float
    later_ticks: Summary
    products_per_tick: int
    runs_per_tick: int
    partitions_registered: int


@dataclass(frozen=True)
class Ticks:
    durations: list[float]
    products_per_tick: int  # of the last tick
    runs_per_tick: int  # of the last tick


def tick_sensor(instance: Any, database_url: str, ticks: int) -> Ticks:
    """Evaluate the real sensor ``ticks`` times on ``instance`` (cursor carried; the partitions each tick asks for
    registered before the next, as the daemon does)."""
    from dagster import SensorResult, build_sensor_context

    from ml_images.defs.resources import CatalogDatabaseResource
    from ml_images.defs.sensors.new_products import SensorCursor, build_new_eligible_products_sensor
    from ml_images.orchestration.partitions import PRODUCTS_PARTITIONS_NAME
    from ml_images.settings import current_settings

    new_eligible_products_sensor = build_new_eligible_products_sensor(current_settings().sensor)

    if ticks < 2:
        raise ValueError("need at least 2 ticks: the first is cold")
    durations: list[float] = []
    products = runs = 0
    cursor: str | None = None
    catalog = CatalogDatabaseResource(database_url=database_url)
    for _ in range(ticks):
        context = build_sensor_context(instance=instance, cursor=cursor, resources={"catalog": catalog})
        t0 = time.perf_counter()
        result = new_eligible_products_sensor(context)
        durations.append(time.perf_counter() - t0)
        if not isinstance(result, SensorResult) or not result.run_requests:
            raise RuntimeError(f"the sensor requested no runs on a catalog with pending products: {result!r}")
        runs = len(result.run_requests)
        keys: list[str] = []
        for request in result.dynamic_partitions_requests or []:
            keys.extend(request.partition_keys)
        if keys:
            instance.add_dynamic_partitions(PRODUCTS_PARTITIONS_NAME, keys)
        before = len(SensorCursor.parse(cursor).requested)
        cursor = result.cursor
        products = len(SensorCursor.parse(cursor).requested) - before
    return Ticks(durations, products, runs)


def time_sensor_ticks(database_url: str, *, ticks: int = 4) -> SensorTickResult:
    """Evaluate the sensor ``ticks`` times in a row on a fresh SQLite instance (see ``tick_sensor``)."""
    from dagster import DagsterInstance

    from ml_images.orchestration.partitions import PRODUCTS_PARTITIONS_NAME

    with tempfile.TemporaryDirectory(prefix="bench_sensor_home_") as home:
        instance = DagsterInstance.from_config(home)
        try:
            done = tick_sensor(instance, database_url, ticks)
            registered = len(instance.get_dynamic_partitions(PRODUCTS_PARTITIONS_NAME))
        finally:
            instance.dispose()
    return SensorTickResult(
        first_tick_s=done.durations[0],
        later_ticks=summarize(done.durations[1:]),
        products_per_tick=done.products_per_tick,
        runs_per_tick=done.runs_per_tick,
        partitions_registered=registered,
    )


def run_selection_benchmark(
    rows: int, *, sensor_ticks: int = 4, repeats: int = 5
) -> list[tuple[str, list[dict[str, str]], str]]:
    """Issue 7.3: the selection benchmark (``selection_at_scale.run``: pending query, EXPLAIN) and then one sensor
    tick, each on a freshly seeded catalog of ``rows`` products (``selection_at_scale.seed``).

    Returns ``(title, rows, notes)`` per table. The catalog is seeded twice because ``selection_at_scale.run`` drops
    its database before returning; a hook there (a callback given the seeded URL) would save one seeding.
    """
    from datetime import UTC, datetime

    from benchmarks import selection_at_scale as scale
    from benchmarks.harness import postgres_admin_url
    from ml_images.catalog.db import create_catalog_engine, upgrade_schema

    server_url = postgres_admin_url()
    if server_url is None:
        raise RuntimeError("PostgreSQL is not reachable; set ML_IMAGES_BENCH_POSTGRES_URL")
    selection = scale.run(rows, server_url, repeats)
    selection_notes = (
        f"{selection.verdict()}\n\nEXPLAIN (ANALYZE, BUFFERS) of the pending query:\n\n```\n{selection.plan}\n```"
    )
    tables = [(selection.title, selection.rows, selection_notes)]

    with scale.scratch_database(server_url) as url:
        engine = create_catalog_engine(url)
        try:
            upgrade_schema(engine)
            print(f"seeding {rows:,} products again for the sensor tick …", flush=True)
            seeded = scale.seed(engine, rows, datetime.now(UTC))
            scale.vacuum_analyze(engine)
        finally:
            engine.dispose()
        ticks = time_sensor_ticks(url, ticks=sensor_ticks)
    title = (
        f"Sensor tick — `new_eligible_products_sensor` on {rows:,} products ({seeded.pending:,} pending), "
        f"{sensor_ticks} consecutive ticks"
    )
    tick_rows = [
        {"measurement": "first tick (opens the catalog engine)", "seconds": f"{ticks.first_tick_s:.3f}"},
        {
            "measurement": f"later ticks, median (min–max) of {sensor_ticks - 1}",
            "seconds": ticks.later_ticks.fmt(3),
        },
        {
            "measurement": "work per tick",
            "seconds": f"{ticks.products_per_tick} products in {ticks.runs_per_tick} run requests "
            f"({ticks.partitions_registered} partitions registered after {sensor_ticks} ticks)",
        },
    ]
    notes = (
        "The real sensor evaluated with `build_sensor_context` on a persistent SQLite Dagster instance; between ticks "
        "the requested partitions are registered and the cursor carried, as the daemon does. A tick's work is bounded "
        "by its back-pressure budget (at most 4 runs × 25 products), whatever the catalog size."
    )
    tables.append((title, tick_rows, notes))
    return tables
