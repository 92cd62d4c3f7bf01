"""``image_coverage_sensor``: materialises ``image_coverage`` after selection and image runs end.

Each tick looks for runs of ``fetch_ml_images`` or ``product_images_job`` that ended (success or failure) since the
last run it saw, leaving dry runs out, and requests one ``image_coverage_job`` run for all of them. The cursor is
the end time of the newest run seen (and the runs that ended at that time), so a tick costs two bounded run
queries whatever the history.
"""

from __future__ import annotations

import json
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

from ml_images.defs.assets.coverage import IMAGE_COVERAGE
from ml_images.defs.jobs import FETCH_ML_IMAGES_JOB, PRODUCT_IMAGES_JOB
from ml_images.orchestration.config import DRY_RUN_TAG

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
    since, seen = _parse_cursor(context.cursor)
    # Run storage may keep whole seconds: ask from a second earlier and drop the runs already seen.
    after = datetime.fromtimestamp(since - 1, UTC) if since is not None else None
    ended = [
        record
        for job in WATCHED_JOBS
        for record in context.instance.get_run_records(
            RunsFilter(job_name=job, statuses=ENDED, updated_after=after), limit=RUNS_PER_TICK
        )
        if since is None
        or record.update_timestamp.timestamp() > since
        or (record.update_timestamp.timestamp() == since and record.dagster_run.run_id not in seen)
    ]
    if not ended:
        return SensorResult(skip_reason="no selection or image run ended since the last report")
    newest = max(ended, key=lambda r: r.update_timestamp)
    newest_ts = newest.update_timestamp.timestamp()
    at_newest = {r.dagster_run.run_id for r in ended if r.update_timestamp.timestamp() == newest_ts}
    if since is not None and newest_ts == since:
        at_newest |= seen
    cursor = json.dumps({"ended": newest_ts, "runs": sorted(at_newest)})
    real = [r for r in ended if r.dagster_run.tags.get(DRY_RUN_TAG) != "true"]
    if not real:
        return SensorResult(skip_reason="only dry runs ended", cursor=cursor)
    return SensorResult(run_requests=[RunRequest(run_key=f"coverage-after-{newest.dagster_run.run_id}")], cursor=cursor)


def _parse_cursor(cursor: str | None) -> tuple[float | None, set[str]]:
    """The end time of the newest run seen, and the runs seen that ended at that very time."""
    if not cursor:
        return None, set()
    try:
        data = json.loads(cursor)
        return float(data["ended"]), {str(r) for r in data.get("runs", [])}
    except (ValueError, TypeError, KeyError):
        return None, set()  # an unreadable cursor: start over (at worst one extra report)
