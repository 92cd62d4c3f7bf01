"""``ML_IMAGES_COVER_POLICY`` and ``ML_IMAGES_COVER_ATTEMPTS`` reach the processing of a real Dagster run, and each
stored image's checks reach the partition's metadata. A bad value fails the run at start-up, never retried."""

from __future__ import annotations

import io

import pytest
from dagster import DagsterEventType, DagsterInstance
from PIL import Image

from demo import labelled_pictures as lp
from ml_images_tests.defs.helpers import (
    observed_partition_metadata,
    partition_metadata,
    register,
    resources,
    run_images,
)
from ml_images_tests.pipeline.support import Catalog, ImageWeb


def jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=92)
    return out.getvalue()


@pytest.fixture(scope="module")
def truncated_candidates() -> list[bytes]:
    """Three pictures on a textured backdrop (each needs a model run), each cut off by its frame."""
    return [
        jpeg(lp.truncated(lp.photo_on("cup", "wood", seed=2), side="right").image),
        jpeg(lp.truncated(lp.photo_on("retina", "wood", seed=8), side="left").image),
        jpeg(lp.truncated(lp.photo_on("print", "brick", seed=9), side="bottom").image),
    ]


def test_cover_attempts_and_policy_come_from_the_environment(
    sqlite_catalog: Catalog,
    web: ImageWeb,
    instance: DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
    truncated_candidates: list[bytes],
):
    refused = sqlite_catalog.add_product("ZX7401")
    web.add("ZX7401", truncated_candidates)
    good = sqlite_catalog.add_product("ZX7402")
    web.add("ZX7402", [jpeg(lp.photo_on("cup", "wood", seed=2).image)])
    keys = register(instance, [refused, good])
    monkeypatch.setenv("ML_IMAGES_COVER_ATTEMPTS", "1")
    monkeypatch.setenv("ML_IMAGES_COVER_POLICY", "Strict")

    result = run_images(instance, resources(sqlite_catalog, web), keys, raise_on_error=False)

    # The product without a compliant cover fails its partition (README, "What an operator reads"); the other
    # is materialised.
    assert not result.success
    [attempt] = sqlite_catalog.attempts(refused)
    assert attempt.reason_code == "no_compliant_cover"
    assert attempt.cover_report is not None
    assert attempt.cover_report["policy"] == "strict"
    assert attempt.cover_report["model_runs"] == 1  # ML_IMAGES_COVER_ATTEMPTS=1, not the default 3
    assert len(attempt.cover_report["attempts"]) == 1
    observed = observed_partition_metadata(result, instance)
    assert observed[str(refused)]["reason_code"] == "no_compliant_cover"
    assert "cover_truncated" in observed[str(refused)]["reason"]
    assert observed[str(refused)]["cover_status"] == "no_compliant_cover"
    stored = partition_metadata(result, instance)[str(good)]
    assert stored["cover_status"] == "compliant"
    assert "| 0 | u2netp |" in stored["image_checks"]
    [summary] = stored["image_checks_json"]
    assert summary["cover_compliant"] is True
    assert summary["background_method"] == "u2netp"
    assert summary["white_border_share"] == 1.0
    assert summary["mask"]["objects"] == 1
    assert 0 < summary["quality_score"] <= 1


def test_the_lenient_policy_from_the_environment_stores_and_flags(
    sqlite_catalog: Catalog,
    web: ImageWeb,
    instance: DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
    truncated_candidates: list[bytes],
):
    pid = sqlite_catalog.add_product("ZX7403")
    web.add("ZX7403", truncated_candidates[:2])
    keys = register(instance, [pid])
    monkeypatch.setenv("ML_IMAGES_COVER_POLICY", "lenient")

    result = run_images(instance, resources(sqlite_catalog, web), keys)

    assert result.success
    assert len(sqlite_catalog.images(pid)) == 2
    [attempt] = sqlite_catalog.attempts(pid)
    assert (attempt.outcome, attempt.reason_code) == ("stored", "no_compliant_cover")
    assert attempt.cover_report is not None
    assert attempt.cover_report["flagged"] is True
    metadata = partition_metadata(result)[str(pid)]
    assert metadata["cover_flagged"] is True
    assert "✗ cover_truncated" in metadata["image_checks"]


@pytest.mark.parametrize(("name", "value"), [("ML_IMAGES_COVER_POLICY", "loose"), ("ML_IMAGES_COVER_ATTEMPTS", "0")])
def test_a_bad_cover_setting_fails_the_run_at_start_up_without_retry(
    sqlite_catalog: Catalog,
    web: ImageWeb,
    instance: DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    value: str,
):
    pid = sqlite_catalog.add_product("ZX7404")
    web.add("ZX7404", 1)
    keys = register(instance, [pid])
    monkeypatch.setenv(name, value)

    result = run_images(instance, resources(sqlite_catalog, web), keys, raise_on_error=False, with_check=False)

    assert not result.success
    assert sum(1 for e in result.all_events if e.event_type == DagsterEventType.STEP_UP_FOR_RETRY) == 0
    errors = [getattr(e.event_specific_data, "error", None) for e in result.all_events]
    assert any(error is not None and name in error.to_string() for error in errors)
    assert web.search_calls == 0
    assert sqlite_catalog.attempt_count() == 0
