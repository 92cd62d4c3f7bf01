"""Runs executed in a process of their own (``ml-images fetch``) carry that process in their tags, so a run whose
process died can be told from a run in progress and marked failed, instead of counting as active for ever.

Dagster's daemon already handles the runs it launches (its code server reports a run whose worker process exited,
and run monitoring in ``dagster.yaml`` fails runs that never start or outlive ``max_runtime_seconds``). An
in-process run (``execute_in_process``) has no such watcher: when its process is killed (SIGKILL, OOM) the run
stays STARTED. ``fail_dead_runs`` finds such runs whose process is provably dead (same machine, see
``ml_images.catalog.holder``), marks them failed and frees the concurrency-pool slots they held. ``ml-images
fetch`` calls it before its runs, the sensor before counting the active runs.
"""

from __future__ import annotations

import logging

from dagster import DagsterInstance, DagsterRun, DagsterRunStatus, RunsFilter

from ml_images.catalog.holder import Liveness, ProcessHolder, current_holder, liveness_of

logger = logging.getLogger(__name__)

HOST_TAG = "ml_images/host"
NODE_TAG = "ml_images/node"
PID_TAG = "ml_images/pid"
PROCESS_START_TAG = "ml_images/process_start"
IN_PROGRESS_STATUSES = [
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
]
_SCAN_LIMIT = 1000


def holder_tags(holder: ProcessHolder | None = None) -> dict[str, str]:
    """Run tags naming the process that executes the run (this one by default)."""
    holder = holder or current_holder()
    tags = {HOST_TAG: holder.host, PID_TAG: str(holder.pid)}
    if holder.node is not None:
        tags[NODE_TAG] = holder.node
    if holder.started is not None:
        tags[PROCESS_START_TAG] = str(holder.started)
    return tags


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def run_liveness(run: DagsterRun) -> Liveness:
    """ALIVE/DEAD for a run tagged with its process on this machine; UNKNOWN otherwise (daemon-launched runs)."""
    tags = run.tags
    if PID_TAG not in tags:
        return Liveness.UNKNOWN
    return liveness_of(tags.get(NODE_TAG), _int(tags.get(PID_TAG)), _int(tags.get(PROCESS_START_TAG)))


def fail_dead_runs(instance: DagsterInstance) -> list[str]:
    """Marks failed the in-progress runs whose process is provably dead; returns their run ids."""
    failed: list[str] = []
    for record in instance.get_run_records(RunsFilter(statuses=IN_PROGRESS_STATUSES), limit=_SCAN_LIMIT):
        run = record.dagster_run
        if run_liveness(run) is not Liveness.DEAD:
            continue
        host, pid = run.tags.get(HOST_TAG, "?"), run.tags.get(PID_TAG, "?")
        instance.report_run_failed(
            run,
            message=(
                f"The process that executed this run (pid {pid} on {host}) is no longer running (killed?); "
                "marked as failed. Its products were left claimed and are taken over by the next run."
            ),
        )
        storage = instance.event_log_storage
        if storage.supports_global_concurrency_limits:
            # The dead process cannot free the pool slots its step held; without this the pool stays blocked.
            storage.free_concurrency_slots_for_run(run.run_id)
        logger.warning("run %s: its process (pid %s on %s) is dead; marked as failed", run.run_id, pid, host)
        failed.append(run.run_id)
    return failed
