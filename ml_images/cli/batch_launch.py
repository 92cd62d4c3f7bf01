"""How ``ml-images fetch`` executes its image batches: one at a time in this process, or ``--parallel`` at once in
child processes; the steps in the run's process or, with ``ML_IMAGES_EXECUTOR=celery``, on the Celery workers.

Executor: with ``in_process`` a batch runs through ``execute_in_process`` (rembg loaded once per process for every
batch it runs). With ``celery`` it goes through ``execute_job`` on the reconstructable job, so the code location's
Celery executor sends the step to an ``ml-images worker`` (on any machine) while the launching process
orchestrates the run, as ``dagster job execute`` and the daemon's runs do; ``execute_in_process`` would ignore the
executor and do every step itself.

Why child processes, not threads, for batches at once: Dagster configures Python logging (``dictConfig``, which
flushes every live handler under the logging module's lock) each time a run starts when the instance has a
``dagster.yaml``, while a running run's event handler holds its own lock and may need the module's: two runs
starting and logging in one process can deadlock each other (seen here: both threads stuck in ``logging``).
"""

from __future__ import annotations

import multiprocessing
import signal
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

from dagster import (
    DagsterInstance,
    ExecuteInProcessResult,
    JobDefinition,
    JobExecutionResult,
    execute_job,
    reconstructable,
)

from ml_images.definitions import defs as code_location
from ml_images.defs.jobs import PRODUCT_IMAGES_JOB
from ml_images.orchestration.progress import listening
from ml_images.orchestration.run_holders import holder_tags
from ml_images.pipeline.reports import ProductReport

BatchResult = ExecuteInProcessResult | JobExecutionResult
RUN_FAILED = "the run failed (see the Dagster UI for its logs)"


def product_images_job() -> JobDefinition:
    """The code location's image job. At module scope so that ``reconstructable`` can point a worker at it: the
    worker imports this module and calls it to rebuild the job (with its resources and executor)."""
    return code_location.resolve_job_def(PRODUCT_IMAGES_JOB)


@contextmanager
def executed_batch(
    job: JobDefinition,
    instance: DagsterInstance,
    *,
    run_config: Mapping[str, Any],
    tags: Mapping[str, str],
    distributed: bool,
) -> Iterator[BatchResult]:
    """Runs one batch of ``job`` to its end and yields its result (a failed run too: ``raise_on_error=False``).

    ``distributed``: the code location's own job through its executor (``job`` must then be the code location's
    image job: a worker can only rebuild a job it can import)."""
    if not distributed:
        yield job.execute_in_process(run_config=run_config, instance=instance, tags=tags, raise_on_error=False)
        return
    with execute_job(
        reconstructable(product_images_job),
        instance=instance,
        run_config=dict(run_config),
        tags=dict(tags),
        raise_on_error=False,
    ) as result:
        yield result


def failure_text(result: BatchResult) -> str:
    """The first thing that went wrong in the run, in one line: the step's ``Failure`` description when there is
    one, else the innermost cause of the first error (a resource that did not start, a crash)."""
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data.user_failure_data is not None:
            description = event.step_failure_data.user_failure_data.description
            if description:
                return str(description)
    for event in result.all_events:
        error = getattr(event.event_specific_data, "error", None)
        if error is not None:
            while error.cause is not None:
                error = error.cause
            first = error.message.strip().splitlines()[0] if error.message.strip() else ""
            return f"{error.cls_name}: {first}" if first else str(error.cls_name)
    return RUN_FAILED


# ------------------------------------------------------------------------------------- batches at once


@dataclass(frozen=True)
class ChildRun:
    """What a child process tells the command about the run it executed."""

    run_id: str
    success: bool
    failure: str  # failure_text() of a failed run, else ""

    @classmethod
    def of(cls, result: BatchResult) -> ChildRun:
        return cls(result.run_id, result.success, "" if result.success else failure_text(result))


_child: dict[str, Any] = {}


def _start_child(reports: Any) -> None:
    """Initialiser of each child process. A stop request (Ctrl-C reaches the whole process group) is the
    command's to handle: it starts no new batch and lets the runs in flight finish theirs."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _child["instance"] = DagsterInstance.get()
    # Each finished product goes to the command's progress bar, for as long as this child lives.
    _child["exit"] = ExitStack()
    _child["exit"].enter_context(listening(reports.put))


def _run_in_child(run_config: Mapping[str, Any], tags: Mapping[str, str], distributed: bool) -> ChildRun:
    # The run is held by this child (its pid), so a child that dies leaves a run recognised as dead.
    with executed_batch(
        product_images_job(),
        _child["instance"],
        run_config=run_config,
        tags={**tags, **holder_tags()},
        distributed=distributed,
    ) as result:
        return ChildRun.of(result)


class ChildBatches:
    """``workers`` child processes, each executing one batch run at a time; the products they finish reach
    ``on_product`` in this process."""

    def __init__(self, workers: int, *, distributed: bool, on_product: Callable[[ProductReport], None]) -> None:
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: no lock or thread copied from here
        self._reports: Any = context.Queue()
        self._on_product = on_product
        self.distributed = distributed
        self._pool = ProcessPoolExecutor(
            max_workers=workers, mp_context=context, initializer=_start_child, initargs=(self._reports,)
        )
        self._forwarder = threading.Thread(target=self._forward, name="ml-images-progress", daemon=True)
        self._forwarder.start()

    def _forward(self) -> None:
        while (report := self._reports.get()) is not None:
            self._on_product(report)

    def submit(self, run_config: Mapping[str, Any], tags: Mapping[str, str]) -> Any:
        return self._pool.submit(_run_in_child, dict(run_config), dict(tags), self.distributed)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._reports.put(None)
        self._forwarder.join(timeout=10)
        self._reports.close()
