"""A stop request (SIGINT) during the selection or the coverage run of ``ml-images fetch``: the asset tags its run
``ml_images/stopped_by=interrupted`` and the runner turns that run into ``KeyboardInterrupt`` (exit 130), instead
of a failed run (exit 1). In process, so the signal reaches Dagster's own handler in the step, as in the command.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest
from dagster import DagsterInstance, DagsterRunStatus, Definitions, RunsFilter

from ml_images.catalog.coverage import CoverageReporter
from ml_images.cli.fetch_runner import FetchCommand
from ml_images.defs.assets.coverage import image_coverage
from ml_images.defs.assets.selection import eligible_products, pending_image_products
from ml_images.defs.jobs import FETCH_ML_IMAGES_JOB, fetch_ml_images, product_images_job
from ml_images.defs.sensors.coverage import IMAGE_COVERAGE_JOB, image_coverage_job
from ml_images.orchestration.config import STOPPED_BY_TAG
from ml_images.orchestration.selection_services import SelectionServices
from ml_images.settings import current_settings
from ml_images_tests.defs.helpers import fast_product_images, instance, resources
from ml_images_tests.pipeline.support import Catalog, ImageWeb

__all__ = ["instance"]


def _sigint(*_: Any, **__: Any) -> Any:
    """What a user's Ctrl-C does: SIGINT to this process, while the step is computing."""
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(5)  # Dagster's handler raises out of this at once
    raise AssertionError("SIGINT did not interrupt the step")


@pytest.fixture
def command(catalog: Catalog, web: ImageWeb, instance: DagsterInstance) -> FetchCommand:
    res = resources(catalog, web)
    defs = Definitions(
        assets=[eligible_products, pending_image_products, fast_product_images, image_coverage],
        jobs=[fetch_ml_images, product_images_job, image_coverage_job],
        resources=res,
    )
    return FetchCommand(defs, instance, current_settings(), res["catalog"], batch_size=10, verbose=False)


def _only_run(instance: DagsterInstance, job_name: str) -> Any:
    [record] = instance.get_run_records(RunsFilter(job_name=job_name))
    return record.dagster_run


def test_an_interrupted_selection_run_is_tagged_and_raises_keyboard_interrupt(
    command: FetchCommand, catalog: Catalog, instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch
):
    catalog.add_product("ZX7700")
    monkeypatch.setattr(SelectionServices, "select_ids", _sigint)

    with pytest.raises(KeyboardInterrupt):
        command.run_selection(dry_run=False, limit=None)

    run = _only_run(instance, FETCH_ML_IMAGES_JOB)
    assert run.status == DagsterRunStatus.FAILURE
    assert run.tags[STOPPED_BY_TAG] == "interrupted"
    assert type(run.tags[STOPPED_BY_TAG]) is str
    assert instance.get_dynamic_partitions("products") == []  # nothing registered


def test_an_interrupted_coverage_run_is_tagged_and_raises_keyboard_interrupt(
    command: FetchCommand, catalog: Catalog, instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch
):
    catalog.add_product("ZX7701")
    monkeypatch.setattr(CoverageReporter, "report", _sigint)

    with pytest.raises(KeyboardInterrupt):
        command.report_coverage()

    run = _only_run(instance, IMAGE_COVERAGE_JOB)
    assert run.status == DagsterRunStatus.FAILURE
    assert run.tags[STOPPED_BY_TAG] == "interrupted"


def test_a_selection_run_failing_on_a_fault_is_not_taken_for_a_stop(
    command: FetchCommand, catalog: Catalog, instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch
):
    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("the catalog went away")

    monkeypatch.setattr(SelectionServices, "select_ids", broken)

    assert command.run_selection(dry_run=False, limit=None) is False
    assert STOPPED_BY_TAG not in _only_run(instance, FETCH_ML_IMAGES_JOB).tags
