"""``image_coverage_sensor``: materialises ``image_coverage`` after selection and image runs end.

Each tick looks for runs of ``fetch_ml_images`` or ``product_images_job`` that ended (success or failure) since the
last run it saw, leaving dry runs out, and requests one ``image_coverage_job`` run for all of them. The cursor is
the end time of the newest run seen, so a tick costs two bounded run queries whatever the history.
"""

from __future__ import annotations

from datetime import UTC, datetime

from dagster import (
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    define_asset_job,
    sensor,
)

from ml_images.dagster_defs.assets.coverage import IMAGE_COVERAGE
from ml_images.dagster_defs.config import DRY_RUN_TAG
from ml_images.dagster_defs.jobs import FETCH_ML_IMAGES_JOB, PRODUCT_IMAGES_JOB

IMAGE_COVERAGE_JOB = "image_coverage_job"
COVERAGE_SENSOR_NAME = "image_coverage_sensor"
WATCHED_JOBS = (FETCH_ML_IMAGES_JOB, PRODUCT_IMAGES_JOB)
ENDED = [DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE]
RUNS_PER_TICK = 100

image_coverage_job = define_asset_job(
    IMAGE_COVERAGE_JOB,
    selection=[IMAGE_COVERAGE],
    description="The coverage report (image_coverage); reads the catalog only.",
)


@sensor(
    name=COVERAGE_SENSOR_NAME,
    job=image_coverage_job,
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
    description="Materialises image_coverage once after selection and image runs end (dry runs left out).",
)
def image_coverage_sensor(context: SensorEvaluationContext) -> SensorResult:
    since = float(context.cursor) if context.cursor else None
    ended = [
        record
        for job in WATCHED_JOBS
        for record in context.instance.get_run_records(
            RunsFilter(
                job_name=job,
                statuses=ENDED,
                updated_after=datetime.fromtimestamp(since, UTC) if since is not None else None,
            ),
            limit=RUNS_PER_TICK,
        )
        if since is None or record.update_timestamp.timestamp() > since
    ]
    if not ended:
        return SensorResult(skip_reason="no selection or image run ended since the last report")
    newest = max(ended, key=lambda r: r.update_timestamp)
    cursor = str(newest.update_timestamp.timestamp())
    real = [r for r in ended if r.dagster_run.tags.get(DRY_RUN_TAG) != "true"]
    if not real:
        return SensorResult(skip_reason="only dry runs ended", cursor=cursor)
    return SensorResult(
        run_requests=[RunRequest(run_key=f"coverage-after-{newest.dagster_run.run_id}")],
        cursor=cursor,
    )
