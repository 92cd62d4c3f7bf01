"""How ``ml-images fetch`` executes one image batch: in this process, or with the job's own executor.

With ``ML_IMAGES_EXECUTOR=in_process`` a batch runs through ``execute_in_process`` (no subprocess, rembg loaded
once for every batch of the command). With ``ML_IMAGES_EXECUTOR=celery`` the batch goes through ``execute_job`` on
the reconstructable job, so the code location's Celery executor sends its step to an ``ml-images worker`` (on any
machine) while this process orchestrates the run, as ``dagster job execute`` and the daemon's runs do.
``execute_in_process`` would ignore the executor and do every step here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
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

BatchResult = ExecuteInProcessResult | JobExecutionResult


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
