"""A million-product catalog with 300,000 registered partitions in a PostgreSQL Dagster instance (a benchmark).

``python -m benchmarks.partition_scale [--products 1000000] [--partitions 300000] [--ticks 4] [--no-append]``

Two throw-away databases on the server (default ``postgresql+psycopg2://postgres@127.0.0.1:5432/test``): the catalog,
seeded as in ``benchmarks.selection_at_scale`` (10 % eligible, 45,000 pending at 1,000,000), and the Dagster
instance (``storage: postgres``). The first ``--partitions`` product ids are registered as ``products`` partitions.
Then, against the goals of the scale issue:

* a tick of ``new_eligible_products_sensor`` (the real definition, cursor carried, its partitions registered
  between ticks as the daemon does): goal under 5 s;
* launching a batch run: ``product_images_job`` over a range of two registered products (which already have
  pictures, so the step itself is short), from the call to the step's start, and the whole run: goal under 5 s;
* the UI: ``dagster-webserver`` on the instance, the GraphQL queries the asset's partition page makes (the
  partition keys and their statuses), timed from the client: the page must answer;
* ``ml-images partitions prune --dry-run``'s planning over every registered key.

Appends one table to ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa

from benchmarks.harness import free_port, venv_script
from benchmarks.results import append_results
from benchmarks.selection_at_scale import DEFAULT_SERVER_URL, scratch_database, seed, vacuum_analyze
from benchmarks.sensor_tick import tick_sensor

REPO = Path(__file__).resolve().parents[1]
GOAL_TICK_S = 5.0
GOAL_LAUNCH_S = 5.0
_REGISTER_CHUNK = 10_000

PARTITIONS_QUERY = """
query($key: AssetKeyInput!) {
  assetNodeOrError(assetKey: $key) {
    ... on AssetNode {
      partitionKeysByDimension { partitionKeys }
      assetPartitionStatuses {
        ... on DefaultPartitionStatuses { materializedPartitions failedPartitions materializingPartitions }
      }
    }
  }
}
"""
STATS_QUERY = """
query($key: AssetKeyInput!) {
  assetNodeOrError(assetKey: $key) {
    ... on AssetNode { partitionStats { numMaterialized numPartitions numFailed numMaterializing } }
  }
}
"""


@dataclass(frozen=True)
class ScaleResult:
    products: int
    partitions: int
    register_s: float
    ticks_s: list[float]
    products_per_tick: int
    launch_to_step_s: float
    run_s: float
    ui_stats_s: float
    ui_partitions_s: float
    ui_keys: int
    prune_plan_s: float


def _instance_yaml(url: str) -> str:
    parsed = sa.make_url(url)
    return (
        "storage:\n  postgres:\n    postgres_db:\n"
        f"      username: {parsed.username or 'postgres'}\n"
        f"      password: '{parsed.password or ''}'\n"
        f"      hostname: {parsed.host or '127.0.0.1'}\n"
        f"      db_name: {parsed.database}\n"
        f"      port: {parsed.port or 5432}\n"
        "      scheme: postgresql+psycopg2\n"
        "telemetry:\n  enabled: false\n"
    )


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _launch(instance: Any, keys: tuple[str, str]) -> tuple[float, float]:
    from dagster import DagsterEventType

    from ml_images.definitions import defs
    from ml_images.orchestration.partitions import RANGE_END_TAG, RANGE_START_TAG

    job = defs.resolve_job_def("product_images_job")
    start = time.time()
    result = job.execute_in_process(
        instance=instance, tags={RANGE_START_TAG: keys[0], RANGE_END_TAG: keys[1]}, raise_on_error=True
    )
    total = time.time() - start
    [step_start] = [
        r.timestamp
        for r in instance.all_logs(result.run_id, of_type=DagsterEventType.STEP_START)
        if r.step_key == "product_images"
    ]
    return step_start - start, total


def _graphql(port: int, query: str) -> tuple[float, dict[str, Any]]:
    start = time.perf_counter()
    response = requests.post(
        f"http://127.0.0.1:{port}/graphql",
        json={"query": query, "variables": {"key": {"path": ["product_images"]}}},
        timeout=600,
    )
    elapsed = time.perf_counter() - start
    if not response.ok:
        raise RuntimeError(f"GraphQL answered {response.status_code}: {response.text[:1000]}")
    body = response.json()
    if body.get("errors"):
        raise RuntimeError(f"GraphQL errors: {body['errors']}")
    return elapsed, body["data"]


def _ui(env: dict[str, str], home: Path) -> tuple[float, float, int]:
    port = free_port()
    log = (home / "webserver.log").open("w")
    proc = subprocess.Popen(
        [venv_script("dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{port}/server_info", timeout=2).ok:
                    _graphql(port, "{ version }")
                    break
            except (requests.RequestException, RuntimeError):
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dagster-webserver did not start: {(home / 'webserver.log').read_text()[-2000:]}")
            time.sleep(1)
        stats_s, _ = _graphql(port, STATS_QUERY)
        partitions_s, data = _graphql(port, PARTITIONS_QUERY)
        dims = data["assetNodeOrError"]["partitionKeysByDimension"]
        keys = len(dims[0]["partitionKeys"]) if dims else 0
        return stats_s, partitions_s, keys
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _prune_plan(instance: Any, catalog_url: str) -> float:
    from ml_images.catalog.db import create_catalog_engine, make_session_factory
    from ml_images.catalog.done_products import DoneProductFinder
    from ml_images.orchestration.partition_pruning import PartitionPruner

    engine = create_catalog_engine(catalog_url)
    try:
        pruner = PartitionPruner(instance, DoneProductFinder(make_session_factory(engine)))
        start = time.perf_counter()
        pruner.plan(datetime.now(UTC) - timedelta(days=1))
        return time.perf_counter() - start
    finally:
        engine.dispose()


def run(products: int, partitions: int, server_url: str, ticks: int) -> ScaleResult:
    from dagster import DagsterInstance

    from ml_images.catalog.db import create_catalog_engine, upgrade_schema
    from ml_images.orchestration.partitions import PRODUCTS_PARTITIONS_NAME

    with (
        scratch_database(server_url) as catalog_url,
        scratch_database(server_url) as instance_url,
        tempfile.TemporaryDirectory(prefix="bench_scale_") as tmp,
    ):
        home = Path(tmp)
        engine = create_catalog_engine(catalog_url)
        try:
            upgrade_schema(engine)
            seed(engine, products, datetime.now(UTC))
            vacuum_analyze(engine)
        finally:
            engine.dispose()
        (home / "dagster_home").mkdir()
        (home / "dagster_home" / "dagster.yaml").write_text(_instance_yaml(instance_url))
        overrides = {
            "DAGSTER_HOME": str(home / "dagster_home"),
            "ML_IMAGES_HOME": str(home / "ml_images_home"),
            "ML_IMAGES_DATABASE_URL": catalog_url,
            # The runs here never search (their products have pictures); the key only satisfies the settings.
            "BRAVE_SEARCH_API_KEY": "benchmark-unused",
            "ML_IMAGES_SEARCH_ENDPOINT": "http://127.0.0.1:9/",
        }
        env = {**os.environ, **overrides}  # the webserver's, a process of its own
        with _environment(overrides):
            with DagsterInstance.from_config(str(home / "dagster_home")) as instance:
                keys = [str(i) for i in range(1, partitions + 1)]
                start = time.perf_counter()
                for begin in range(0, len(keys), _REGISTER_CHUNK):
                    instance.add_dynamic_partitions(PRODUCTS_PARTITIONS_NAME, keys[begin : begin + _REGISTER_CHUNK])
                register_s = time.perf_counter() - start
                done = tick_sensor(instance, catalog_url, ticks)
                ticks_s, per_tick = done.durations, done.products_per_tick
                # Products 1 and 2 already have pictures (the seed gives pictures to ids ending in 00-04).
                launch_s, run_s = _launch(instance, ("1", "2"))
                prune_s = _prune_plan(instance, catalog_url)
            stats_s, partitions_s, ui_keys = _ui(env, home)
    return ScaleResult(
        products=products,
        partitions=partitions,
        register_s=register_s,
        ticks_s=ticks_s,
        products_per_tick=per_tick,
        launch_to_step_s=launch_s,
        run_s=run_s,
        ui_stats_s=stats_s,
        ui_partitions_s=partitions_s,
        ui_keys=ui_keys,
        prune_plan_s=prune_s,
    )


def _verdict(value: float, goal: float) -> str:
    return "met" if value < goal else f"MISSED by {value - goal:.2f} s"


def rows(result: ScaleResult) -> list[dict[str, str]]:
    later = sorted(result.ticks_s[1:])
    median_tick = later[len(later) // 2]
    return [
        {"measure": "register the partitions", "value": f"{result.register_s:.1f} s", "goal": "—"},
        {
            "measure": f"sensor tick, first / median of the next {len(later)}",
            "value": f"{result.ticks_s[0]:.2f} s / {median_tick:.2f} s",
            "goal": f"< {GOAL_TICK_S:g} s: {_verdict(max(result.ticks_s), GOAL_TICK_S)}",
        },
        {
            "measure": "launch a batch run (call → step start)",
            "value": f"{result.launch_to_step_s:.2f} s",
            "goal": f"< {GOAL_LAUNCH_S:g} s: {_verdict(result.launch_to_step_s, GOAL_LAUNCH_S)}",
        },
        {
            "measure": "the whole batch run (2 products that have pictures)",
            "value": f"{result.run_s:.2f} s",
            "goal": "—",
        },
        {
            "measure": "UI: partition stats of product_images (GraphQL)",
            "value": f"{result.ui_stats_s:.2f} s",
            "goal": "answers",
        },
        {
            "measure": f"UI: partition keys and statuses ({result.ui_keys:,} keys, GraphQL)",
            "value": f"{result.ui_partitions_s:.2f} s",
            "goal": "answers",
        },
        {"measure": "partitions prune: planning over every key", "value": f"{result.prune_plan_s:.2f} s", "goal": "—"},
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.partition_scale", description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=1_000_000)
    parser.add_argument("--partitions", type=int, default=300_000)
    parser.add_argument("--ticks", type=int, default=4)
    parser.add_argument("--url", default=os.environ.get("ML_IMAGES_TEST_POSTGRES_URL", DEFAULT_SERVER_URL))
    parser.add_argument("--no-append", action="store_true", help="print only; do not append to RESULTS.md")
    args = parser.parse_args(argv)
    if args.partitions > args.products or args.ticks < 2:
        parser.error("--partitions must not exceed --products, and --ticks must be at least 2")
    result = run(args.products, args.partitions, args.url, args.ticks)
    table = rows(result)
    title = (
        f"Partitions at scale — {result.products:,} products, {result.partitions:,} registered partitions, "
        "PostgreSQL Dagster instance"
    )
    notes = (
        "The sensor reads which candidates are registered and the last keys added, never every key. A run over a "
        "partition range resolves its keys from the registered order, which reads every key once per run. The UI "
        "figures are the GraphQL answers behind the asset's partition page, timed from the client."
    )
    for row in table:
        print(f"{row['measure']}: {row['value']} ({row['goal']})")
    if not args.no_append:
        append_results(title, table, notes=notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
