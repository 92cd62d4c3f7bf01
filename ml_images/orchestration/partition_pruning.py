"""Keeps the ``products`` partitions bounded: the partitions of done products are deleted, nothing else.

A product is done when its pictures were stored more than the given age ago, or when it left the catalog
(``ml_images.catalog.done_products``). Deleting its partition removes the key from the partition list (and so
from the UI's partition view and from what the sensor and range runs resolve); the product's pictures, its
``product_image`` rows and its attempts stay, and Dagster keeps the key's past materialisations in the event log.
A key that bounds a range of a run that has not finished is kept, or that run could not resolve its range.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from ml_images.catalog.done_products import DoneProductFinder
from ml_images.orchestration.partitions import (
    PARTITION_TAG,
    PRODUCTS_PARTITIONS_NAME,
    RANGE_END_TAG,
    RANGE_START_TAG,
)

_UNFINISHED = [
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
]
_CHUNK = 1000  # keys per catalog look-up and per deletion progress step


@dataclass
class PruneReport:
    registered: int = 0
    stored: list[str] = field(default_factory=list)  # done: pictures stored before the cut-off
    gone: list[str] = field(default_factory=list)  # done: no longer in the catalog
    kept_for_runs: list[str] = field(default_factory=list)  # done, but an unfinished run names them
    not_product_ids: list[str] = field(default_factory=list)  # keys that are not product ids (left alone)
    deleted: int = 0

    @property
    def prunable(self) -> list[str]:
        return self.stored + self.gone


def _keys_named_by_unfinished_runs(instance: DagsterInstance) -> set[str]:
    named: set[str] = set()
    for record in instance.get_run_records(RunsFilter(statuses=_UNFINISHED)):
        tags = record.dagster_run.tags
        named.update(tags[t] for t in (PARTITION_TAG, RANGE_START_TAG, RANGE_END_TAG) if t in tags)
    return named


class PartitionPruner:
    def __init__(self, instance: DagsterInstance, finder: DoneProductFinder) -> None:
        self.instance = instance
        self.finder = finder

    def plan(self, stored_before: datetime) -> PruneReport:
        keys = self.instance.get_dynamic_partitions(PRODUCTS_PARTITIONS_NAME)
        report = PruneReport(registered=len(keys))
        ids: list[int] = []
        for key in keys:
            if key.isdigit():
                ids.append(int(key))
            else:
                report.not_product_ids.append(key)
        protected = _keys_named_by_unfinished_runs(self.instance)
        for start in range(0, len(ids), _CHUNK):
            done = self.finder.find(ids[start : start + _CHUNK], stored_before)
            for kind, found in (("stored", done.stored), ("gone", done.gone)):
                for pid in found:
                    key = str(pid)
                    if key in protected:
                        report.kept_for_runs.append(key)
                    else:
                        getattr(report, kind).append(key)
        return report

    def prune(self, report: PruneReport, progress: Callable[[int, int], None] | None = None) -> PruneReport:
        """Deletes the partitions ``report`` found prunable (one storage call per key: Dagster has no bulk call)."""
        keys = report.prunable
        for number, key in enumerate(keys, start=1):
            self.instance.delete_dynamic_partition(PRODUCTS_PARTITIONS_NAME, key)
            report.deleted += 1
            if progress is not None and (number % _CHUNK == 0 or number == len(keys)):
                progress(number, len(keys))
        return report
