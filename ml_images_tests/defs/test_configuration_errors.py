"""A configuration error inside a run fails the step at once, without the RetryPolicy's retries (issue 10.12).

The RetryPolicy exists for infrastructure faults; a missing key or a bad variable fails every attempt alike, so
retrying it only costs minutes (two retries with 30 s+ backoff by default). Resource start-up failures (schema,
model) are never retried by Dagster; errors the asset meets while building its services are raised as
``Failure(allow_retries=False)``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus

from ml_images.defs.resources import ImageSearchResource
from ml_images_tests.defs.helpers import register, resources, run_images
from ml_images_tests.pipeline.support import Catalog, ImageWeb, web_environment

REPO = Path(__file__).resolve().parents[2]
DAGSTER = str(Path(sys.executable).with_name("dagster"))


def _retries(events: Any) -> int:
    return sum(1 for e in events if e.event_type == DagsterEventType.STEP_UP_FOR_RETRY)


def _failure_description(events: Any) -> str:
    [failure] = [e for e in events if e.event_type == DagsterEventType.STEP_FAILURE]
    data = failure.step_failure_data
    assert data.user_failure_data is not None, data.error
    return str(data.user_failure_data.description)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("brave_api_key", None, "BRAVE_SEARCH_API_KEY is not set"),
        ("provider", "bing", "search provider must be one of"),
        ("allowed_private_hosts", "127.0.0.1:0", "ML_IMAGES_ALLOWED_PRIVATE_HOSTS"),
    ],
)
def test_a_configuration_error_in_the_step_is_not_retried(
    sqlite_catalog: Catalog, web: ImageWeb, instance: DagsterInstance, field: str, value: Any, message: str
):
    pid = sqlite_catalog.add_product("ZX7100")
    web.add("ZX7100", 1)
    res = resources(sqlite_catalog, web)
    res["image_search"] = ImageSearchResource(**{**res["image_search"].__dict__, field: value})
    keys = register(instance, [pid])

    result = run_images(instance, res, keys, raise_on_error=False, with_check=False)

    assert not result.success
    assert _retries(result.all_events) == 0  # the test asset's RetryPolicy would retry once
    description = _failure_description(result.all_events)
    assert description.startswith("configuration (ConfigurationError: ")
    assert message in description
    assert f"left pending: [{pid}]" in description
    assert web.search_calls == 0
    assert sqlite_catalog.attempt_count() == 0  # nothing claimed
    assert sqlite_catalog.listing(pid) is None


def test_bad_publication_rules_fail_the_step_without_retry(
    sqlite_catalog: Catalog, web: ImageWeb, instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch
):
    pid = sqlite_catalog.add_product("ZX7200")
    keys = register(instance, [pid])
    monkeypatch.setenv("MERCADOLIBRE_PUBLICATION_RULES", "{not json")

    result = run_images(instance, resources(sqlite_catalog, web), keys, raise_on_error=False, with_check=False)

    assert not result.success
    assert _retries(result.all_events) == 0
    # Settings check the rules when a resource starts (Dagster never retries a resource start-up failure).
    errors = [getattr(e.event_specific_data, "error", None) for e in result.all_events]
    assert any(error is not None and "MERCADOLIBRE_PUBLICATION_RULES" in error.to_string() for error in errors)
    assert web.search_calls == 0
    assert sqlite_catalog.attempt_count() == 0


@pytest.mark.slow
def test_dagster_job_execute_with_a_missing_key_fails_at_once(sqlite_catalog: Catalog, web: ImageWeb, tmp_path: Path):
    """The code location's own RetryPolicy (2 retries, 30 s backoff), through the Dagster CLI in a subprocess."""
    home = Path(os.environ["ML_IMAGES_HOME"])
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    catalog = Catalog(f"sqlite:///{home / 'catalog.db'}")
    try:
        pid = catalog.add_product("ZX7300")
    finally:
        catalog.close()
    env = {**os.environ, **web_environment(web), "DAGSTER_HOME": str(dagster_home)}
    del env["BRAVE_SEARCH_API_KEY"]
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        register(instance, [pid])

    result = subprocess.run(
        [DAGSTER, "job", "execute", "-m", "ml_images.definitions", "-j", "product_images_job",
         "--tags", json.dumps({"dagster/partition": str(pid)})],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip

    assert result.returncode != 0
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        [run] = instance.get_runs()
        assert run.status == DagsterRunStatus.FAILURE
        events = [e.dagster_event for e in instance.all_logs(run.run_id) if e.dagster_event is not None]
    assert _retries(events) == 0
    assert "BRAVE_SEARCH_API_KEY is not set" in _failure_description(events)
    assert web.search_calls == 0
