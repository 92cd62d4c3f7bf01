"""Per-partition metadata of a range run at 100,000 registered partitions: public ways against the private one.

``python -m benchmarks.partition_metadata_cost [--partitions 100000] [--batch 25] [--repeats 3]``

A throw-away PostgreSQL Dagster instance (``storage: postgres`` on the server of ``ML_IMAGES_TEST_POSTGRES_URL``,
default ``postgresql+psycopg2://postgres@127.0.0.1:5432/test``) with ``--partitions`` keys registered in
``products``. A probe asset partitioned like ``product_images`` (single-run backfill) runs over a range of
``--batch`` keys in the middle and gives each partition its own metadata, three ways:

* ``add_asset_metadata``: ``context.add_asset_metadata(metadata, partition_key=key)`` per key (public);
* ``log_event``: ``context.log_event(AssetMaterialization(partition=key, metadata=...))`` per key, no output
  (public; the step yields nothing, so nothing downstream of it in the run starts);
* ``accumulator``: ``ml_images.orchestration.partition_metadata.add_partition_metadata`` (the step's metadata
  accumulator, private to Dagster).

Reports the time spent in the metadata calls and the whole run (medians of ``--repeats``), checks that every
partition got its own metadata, and appends a table to ``benchmarks/RESULTS.md``.
"""

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetMaterialization,
    AssetsDefinition,
    BackfillPolicy,
    DagsterInstance,
    MaterializeResult,
    asset,
    materialize,
)

from benchmarks.partition_scale import _instance_yaml
from benchmarks.results import append_results
from benchmarks.selection_at_scale import DEFAULT_SERVER_URL, scratch_database
from ml_images.orchestration.partition_metadata import add_partition_metadata
from ml_images.orchestration.partitions import (
    PRODUCTS_PARTITIONS_NAME,
    RANGE_END_TAG,
    RANGE_START_TAG,
    products_partitions,
)

_REGISTER_CHUNK = 10_000
_seconds: dict[str, float] = {}


def _probe(way: str, give: Callable[[AssetExecutionContext, dict[str, dict[str, Any]]], bool]) -> AssetsDefinition:
    @asset(
        name=f"probe_{way}",
        partitions_def=products_partitions,
        backfill_policy=BackfillPolicy.single_run(),
        output_required=False,
    )
    def probe(context: AssetExecutionContext) -> Iterator[MaterializeResult]:
        by_key = {key: {"product": key, "images": 3} for key in context.partition_keys}
        start = time.perf_counter()
        yields_output = give(context, by_key)
        _seconds[way] = time.perf_counter() - start
        if yields_output:
            yield MaterializeResult(metadata={"batch": len(by_key)})

    return probe


def _add_asset_metadata(context: AssetExecutionContext, by_key: dict[str, dict[str, Any]]) -> bool:
    for key, metadata in by_key.items():
        context.add_asset_metadata(metadata, partition_key=key)
    return True


def _log_event(context: AssetExecutionContext, by_key: dict[str, dict[str, Any]]) -> bool:
    for key, metadata in by_key.items():
        context.log_event(
            AssetMaterialization(
                asset_key=context.asset_key, partition=key, metadata={**metadata, "batch": len(by_key)}
            )
        )
    return False


def _accumulator(context: AssetExecutionContext, by_key: dict[str, dict[str, Any]]) -> bool:
    add_partition_metadata(context, by_key)
    return True


WAYS: dict[str, Callable[[AssetExecutionContext, dict[str, dict[str, Any]]], bool]] = {
    "add_asset_metadata": _add_asset_metadata,
    "log_event": _log_event,
    "accumulator": _accumulator,
}


def measure(instance: DagsterInstance, partitions: int, batch: int, repeats: int) -> list[dict[str, str]]:
    first = partitions // 2
    rows = []
    for way, give in WAYS.items():
        probe = _probe(way, give)
        calls, runs = [], []
        for attempt in range(repeats):
            start_key = first + attempt * batch
            tags = {RANGE_START_TAG: str(start_key), RANGE_END_TAG: str(start_key + batch - 1)}
            t0 = time.perf_counter()
            result = materialize([probe], instance=instance, tags=tags)
            runs.append(time.perf_counter() - t0)
            calls.append(_seconds[way])
            events = result.asset_materializations_for_node(probe.op.name)
            own = {e.partition: e.metadata["product"].value for e in events}
            expected = {str(k): str(k) for k in range(start_key, start_key + batch)}
            if own != expected or len(events) != batch:
                raise RuntimeError(f"{way}: the partitions did not each get their own metadata ({len(events)} events)")
        rows.append(
            {
                "way": way,
                "public": "yes" if way != "accumulator" else "no",
                f"metadata calls for {batch} partitions (median)": f"{statistics.median(calls):.3f} s",
                "whole run (median)": f"{statistics.median(runs):.2f} s",
                "per partition": f"{statistics.median(calls) / batch * 1000:.1f} ms",
            }
        )
    return rows


def run(partitions: int, batch: int, repeats: int, server_url: str) -> list[dict[str, str]]:
    with scratch_database(server_url) as instance_url, tempfile.TemporaryDirectory(prefix="bench_meta_") as tmp:
        home = Path(tmp)
        (home / "dagster.yaml").write_text(_instance_yaml(instance_url))
        with DagsterInstance.from_config(str(home)) as instance:
            keys = [str(i) for i in range(1, partitions + 1)]
            for i in range(0, len(keys), _REGISTER_CHUNK):
                instance.add_dynamic_partitions(PRODUCTS_PARTITIONS_NAME, keys[i : i + _REGISTER_CHUNK])
            return measure(instance, partitions, batch, repeats)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--partitions", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=25)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--url", default=os.environ.get("ML_IMAGES_TEST_POSTGRES_URL", DEFAULT_SERVER_URL))
    parser.add_argument("--no-append", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args(argv)
    rows = run(args.partitions, args.batch, args.repeats, args.url)
    title = f"Per-partition metadata — {args.partitions:,} registered partitions, PostgreSQL Dagster instance"
    notes = (
        f"`python -m benchmarks.partition_metadata_cost --partitions {args.partitions} --batch {args.batch}`: a range "
        f"run of {args.batch} partitions giving each its own metadata; medians of {args.repeats} runs."
    )
    if args.no_append:
        for row in rows:
            print(row)
    else:
        print(append_results(title, rows, notes=notes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
