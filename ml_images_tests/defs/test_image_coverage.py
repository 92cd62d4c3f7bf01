"""``image_coverage``: its numbers against a catalog the real pipeline worked on, and the sensor that runs it."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from dagster import (
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    SensorResult,
    build_sensor_context,
    materialize,
)

from ml_images.catalog.models import ListingStatus, MercadoLibreListing, utcnow
from ml_images.defs.assets.coverage import image_coverage
from ml_images.defs.sensors.coverage import image_coverage_sensor
from ml_images.orchestration.config import DRY_RUN_TAG
from ml_images_tests.defs.helpers import register, resources, run_images
from ml_images_tests.pipeline.support import Catalog, ImageWeb


def _coverage(instance: DagsterInstance, res: dict[str, Any]) -> dict[str, Any]:
    result = materialize([image_coverage], instance=instance, resources={"catalog": res["catalog"]})
    [event] = result.asset_materializations_for_node("image_coverage")
    return {k: getattr(v, "value", v) for k, v in event.metadata.items()}


def test_the_coverage_numbers_match_the_catalog(catalog: Catalog, web: ImageWeb, instance: DagsterInstance):
    stored = catalog.add_product("ZX9000", code="SKU-COV-1")
    nothing = catalog.add_product("ZX9001", code="SKU-COV-2")  # the search finds nothing: ERROR, cooldown
    pending = catalog.add_product("ZX9002", code="SKU-COV-3")  # never processed
    catalog.add_product("ZX9003", code="SKU-COV-4", eligible=False)
    catalog.add_product("ZX9004", code="SKU-COV-5", age=timedelta(days=30))  # stale: not eligible
    web.add("ZX9000", 2)
    res = resources(catalog, web)
    run_images(instance, res, register(instance, [stored, nothing]), raise_on_error=False)
    with catalog.session_factory() as session, session.begin():  # a listing the shop's sync put in ERROR
        session.add(MercadoLibreListing(product_master_id=pending, status=ListingStatus.ERROR, sync_error="ML: 400"))

    coverage = _coverage(instance, res)

    assert {k: coverage[k] for k in ("eligible", "with_pictures", "without_pictures", "pending", "in_cooldown")} == {
        "eligible": 3,
        "with_pictures": 1,
        "without_pictures": 2,
        "pending": 1,
        "in_cooldown": 1,
    }
    assert coverage["with_pictures_percent"] == 33.3
    assert coverage["listings_in_error"] == 2
    assert coverage["errors_by_reason"] == {"no_search_results": 1, "other": 1}
    assert (coverage["errors_no_search_results"], coverage["errors_other"]) == (1, 1)
    assert (coverage["search_calls_last_day"], coverage["search_calls_last_week"]) == (2, 2)
    assert (coverage["pictures_stored_last_day"], coverage["pictures_stored_last_week"]) == (2, 2)
    assert coverage["needing_attention"] == 1
    [row] = coverage["needing_attention_products"].records
    assert (row.data["product_id"], row.data["code"], row.data["reason"]) == (nothing, "SKU-COV-2", "no_search_results")
    assert row.data["name"] == "Monitor Acme ZX9001 24 pulgadas"
    [attempt] = catalog.attempts(nothing)
    assert attempt.finished_at is not None
    assert row.data["since"] == attempt.finished_at.isoformat(timespec="minutes")
    assert abs(attempt.finished_at - utcnow()) < timedelta(minutes=5)


def _ended_run(instance: DagsterInstance, job: str, status: DagsterRunStatus, **tags: str) -> str:
    run_id = str(uuid.uuid4())
    instance.add_run(DagsterRun(job_name=job, run_id=run_id, status=status, tags=tags))
    return run_id


def _tick(instance: DagsterInstance, cursor: str | None) -> SensorResult:
    result = image_coverage_sensor(build_sensor_context(instance=instance, cursor=cursor))
    assert isinstance(result, SensorResult)
    return result


def test_the_sensor_reports_once_after_real_runs_end_and_ignores_dry_runs(instance: DagsterInstance):
    assert _tick(instance, None).skip_reason is not None  # nothing ran yet

    selection = _ended_run(instance, "fetch_ml_images", DagsterRunStatus.SUCCESS)
    images = _ended_run(instance, "product_images_job", DagsterRunStatus.FAILURE)
    _ended_run(instance, "product_images_job", DagsterRunStatus.STARTED)  # not ended yet
    first = _tick(instance, None)
    assert [r.run_key for r in first.run_requests or []] in (
        [f"coverage-after-{images}"],
        [f"coverage-after-{selection}"],
    )
    assert first.cursor is not None

    again = _tick(instance, first.cursor)
    assert again.run_requests in (None, [])
    assert again.skip_reason is not None
    assert again.skip_reason.skip_message == "no selection or image run ended since the last report"

    _ended_run(instance, "fetch_ml_images", DagsterRunStatus.SUCCESS, **{DRY_RUN_TAG: "true"})
    dry = _tick(instance, first.cursor)
    assert dry.run_requests in (None, [])
    assert dry.skip_reason is not None
    assert dry.skip_reason.skip_message == "only dry runs ended"
    assert dry.cursor is not None

    later = _ended_run(instance, "product_images_job", DagsterRunStatus.SUCCESS)
    last = _tick(instance, dry.cursor)
    assert [r.run_key for r in last.run_requests or []] == [f"coverage-after-{later}"]
