"""Per-partition metadata in a partition-range run, at a cost independent of how many partitions exist.

The one function here, ``add_partition_metadata``, is the only place the project touches a Dagster internal.
Measured at 100,000 registered partitions on a PostgreSQL instance (``benchmarks/partition_metadata_cost.py``,
figures in ``benchmarks/RESULTS.md``), for a range run of 25 partitions:

* ``context.add_asset_metadata(metadata, partition_key=key)``, the public call, loads every key of the dynamic
  partitions definition to validate each call: 1.85 s per partition, 46 s of the run;
* ``context.log_event(AssetMaterialization(partition=key, ...))``, also public, is as cheap as the path below but
  only when the step yields no output, and a step without an output skips the asset check that follows it in the
  run (with an output every partition would be materialised twice);
* the step's metadata accumulator, where ``add_asset_metadata`` records the metadata after its check: 52 ms per
  partition, one resolution of the range for the whole batch.

So the keys are validated once against ``context.partition_keys`` (which the run has resolved anyway) and the
metadata goes to the accumulator, taken only when it looks exactly as expected (dagster is pinned below 1.14);
otherwise the public call is the fallback. ``ml_images_tests/defs`` checks both the result and that the fast path
is used.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dagster import AssetExecutionContext


def _accumulating_step(context: AssetExecutionContext) -> Any | None:
    step = getattr(context.op_execution_context, "_step_execution_context", None)
    accumulator = getattr(step, "_metadata_accumulator", None)
    if accumulator is None or not callable(getattr(accumulator, "with_additional_asset_metadata", None)):
        return None
    return step


def uses_fast_path(context: AssetExecutionContext) -> bool:
    return _accumulating_step(context) is not None


def add_partition_metadata(context: AssetExecutionContext, by_partition: Mapping[str, Mapping[str, Any]]) -> None:
    """Adds ``by_partition[key]`` to the materialisation of partition ``key`` of the asset being materialised."""
    if not by_partition:
        return
    targeted = set(context.partition_keys)
    unknown = sorted(set(by_partition) - targeted)
    if unknown:
        raise ValueError(f"partitions {unknown[:10]} are not targeted by this run")
    step = _accumulating_step(context)
    if step is None:
        for key, metadata in by_partition.items():
            context.add_asset_metadata(dict(metadata), partition_key=key)
        return
    asset_key = context.asset_key
    accumulator = step._metadata_accumulator
    for key, metadata in by_partition.items():
        accumulator = accumulator.with_additional_asset_metadata(
            asset_key=asset_key, partition_key=key, metadata=dict(metadata)
        )
    step._metadata_accumulator = accumulator
