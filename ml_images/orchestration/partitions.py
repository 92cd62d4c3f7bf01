"""The ``products`` dynamic partitions (key = product id as a decimal string) and how batches map onto them.

A run carries a batch as a *partition range* (``dagster/asset_partition_range_start`` / ``_end`` tags). Dynamic
partition keys are ordered by registration, so a range is every key registered between its two ends. A batch is
therefore only sent as a range when its keys are consecutive in that order: new keys are registered in the order
they are batched (consecutive by construction); keys registered earlier are grouped into runs of consecutive
positions, and a key with no registered neighbour in the batch gets a run of its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

from dagster import DagsterInstance, DynamicPartitionsDefinition

PRODUCTS_PARTITIONS_NAME = "products"
products_partitions = DynamicPartitionsDefinition(name=PRODUCTS_PARTITIONS_NAME)

PARTITION_TAG = "dagster/partition"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"

_REGISTER_CHUNK = 1000  # the storage checks existing keys with one IN (...) per call; keep it bounded


def parse_product_key(key: str) -> int | None:
    """The product id of a partition key, or None when the key is not a positive decimal id."""
    if not key.isascii() or not key.isdigit():
        return None
    value = int(key)
    return value if value > 0 and str(value) == key else None


@dataclass(frozen=True)
class PartitionBatch:
    """Keys processed by one run, consecutive in the partition order (so ``context.partition_keys`` == ``keys``)."""

    keys: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.keys:
            raise ValueError("a batch needs at least one key")

    @property
    def first(self) -> str:
        return self.keys[0]

    @property
    def last(self) -> str:
        return self.keys[-1]

    def run_tags(self) -> dict[str, str]:
        if len(self.keys) == 1:
            return {PARTITION_TAG: self.first}
        return {RANGE_START_TAG: self.first, RANGE_END_TAG: self.last}


def plan_batches(candidates: Sequence[str], registered: Sequence[str], batch_size: int) -> list[PartitionBatch]:
    """Split ``candidates`` into runs of at most ``batch_size`` keys that are consecutive in partition order.

    ``registered`` is the current key order (``instance.get_dynamic_partitions``). Keys not in it are assumed to be
    registered next, in the order given here; already-registered keys are batched by their positions.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    unique = list(dict.fromkeys(candidates))
    position = _positions(registered, unique)
    existing = sorted((k for k in unique if k in position), key=position.__getitem__)
    new = [k for k in unique if k not in position]

    batches: list[PartitionBatch] = []
    group: list[str] = []
    for key in existing:
        if group and (position[key] != position[group[-1]] + 1 or len(group) == batch_size):
            batches.append(PartitionBatch(tuple(group)))
            group = []
        group.append(key)
    if group:
        batches.append(PartitionBatch(tuple(group)))
    for start in range(0, len(new), batch_size):
        batches.append(PartitionBatch(tuple(new[start : start + batch_size])))
    return batches


def plan_sensor_batches(
    candidates: Sequence[str], existing: AbstractSet[str], recent: Sequence[str], batch_size: int
) -> list[PartitionBatch]:
    """Like ``plan_batches`` without reading every registered key: ``existing`` says which candidates are
    registered, ``recent`` is the tail of the registration order (the last keys added).

    New keys become consecutive ranges once added; registered keys found in ``recent`` are batched by their
    positions there; a registered key older than the window gets a run of its own (its neighbours are unknown).
    """
    unique = list(dict.fromkeys(candidates))
    window = set(recent)
    known = [k for k in unique if k in existing and k in window]
    new = [k for k in unique if k not in existing]
    older = [k for k in unique if k in existing and k not in window]
    return plan_batches(known + new, recent, batch_size) + [PartitionBatch((k,)) for k in older]


def _positions(registered: Sequence[str], wanted: Iterable[str]) -> Mapping[str, int]:
    wanted_set = set(wanted)
    return {key: i for i, key in enumerate(registered) if key in wanted_set}


def unregistered(keys: Sequence[str], registered: Iterable[str]) -> list[str]:
    known = set(registered)
    return [k for k in dict.fromkeys(keys) if k not in known]


def register_products(instance: DagsterInstance, keys: Sequence[str]) -> list[str]:
    """Register the keys not yet known, in the given order; returns those newly added. Idempotent."""
    new = unregistered(keys, instance.get_dynamic_partitions(PRODUCTS_PARTITIONS_NAME))
    for start in range(0, len(new), _REGISTER_CHUNK):
        instance.add_dynamic_partitions(PRODUCTS_PARTITIONS_NAME, new[start : start + _REGISTER_CHUNK])
    return new


def run_partition_keys(tags: Mapping[str, str], instance: DagsterInstance) -> list[str] | None:
    """The ``products`` keys a run targets, from its tags (None when the run names no partition).

    Works for any step of the run, including an unpartitioned asset check executed on its own with partition tags.
    """
    if PARTITION_TAG in tags:
        return [tags[PARTITION_TAG]]
    start, end = tags.get(RANGE_START_TAG), tags.get(RANGE_END_TAG)
    if start is None or end is None:
        return None
    keys = list(instance.get_dynamic_partitions(PRODUCTS_PARTITIONS_NAME))
    try:
        first, last = keys.index(start), keys.index(end)
    except ValueError:
        raise ValueError(f"partition range {start}...{end}: both ends must be registered products") from None
    return keys[first : last + 1]
