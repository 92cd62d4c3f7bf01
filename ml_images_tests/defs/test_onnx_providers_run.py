"""A run asking for an ONNX execution provider this machine lacks fails at start-up: no retry, nothing claimed."""

from __future__ import annotations

import pytest
from dagster import DagsterEventType, DagsterInstance

from ml_images_tests.defs.helpers import register, resources, run_images
from ml_images_tests.pipeline.support import Catalog, ImageWeb


def test_a_run_asking_for_a_missing_provider_fails_at_start_up_without_retry(
    sqlite_catalog: Catalog, web: ImageWeb, instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid = sqlite_catalog.add_product("ZX7701")
    web.add("ZX7701", 1)
    keys = register(instance, [pid])
    monkeypatch.setenv("ML_IMAGES_ONNX_PROVIDERS", "CUDAExecutionProvider,CPUExecutionProvider")

    result = run_images(instance, resources(sqlite_catalog, web), keys, raise_on_error=False)

    assert not result.success
    events = instance.all_logs(result.run_id)
    assert not [e for e in events if e.dagster_event_type == DagsterEventType.STEP_UP_FOR_RETRY]
    # The remover's resource fails to initialise: the run fails before the step, with the reason.
    failures = [e for e in events if e.dagster_event_type == DagsterEventType.RESOURCE_INIT_FAILURE]
    assert failures
    assert "ML_IMAGES_ONNX_PROVIDERS asks for CUDAExecutionProvider" in str(failures[0].dagster_event)
    assert sqlite_catalog.attempts(pid) == []  # nothing claimed: the product stays pending
    assert web.search_calls == 0
