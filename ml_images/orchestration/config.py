"""Run configuration of the assets and the tunables of the sensor and the retry policy.

The selection config is part of the external contract (README):
``ops: {pending_image_products: {config: {dry_run: bool, limit: int|null, product_ids: [int]|null}}}``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from dagster import Backoff, Config, Jitter, RetryPolicy
from pydantic import Field

from ml_images.settings import env_number

#: Concurrency pool of the step that calls the paid search API (``dagster instance concurrency set`` / dagster.yaml).
IMAGE_SEARCH_POOL = "image_search_api"
#: Run tag (and ``concurrency.runs.tag_concurrency_limits`` key) of the runs that do background removal.
WORKLOAD_TAG = "ml_images/workload"
BACKGROUND_REMOVAL_WORKLOAD = "background_removal"
#: Run tag of a dry run of the selection (set by the asset itself, so runs launched from the UI carry it too).
DRY_RUN_TAG = "ml_images/dry_run"
#: Metadata key of the failure ``product_images`` raises to mark the products that got no pictures (their own
#: outcome, not a fault: ``ml-images fetch`` reads it to exit 0).
NO_PICTURES_KEY = "products_without_pictures"


class SelectionConfig(Config):
    """Which pending products the selection takes, and whether it only reports (dry run)."""

    dry_run: bool = Field(
        default=False,
        description="Materialise the selection only: register nothing, search, download, upload and write nothing.",
    )
    limit: int | None = Field(default=None, ge=1, description="At most this many products (oldest first).")
    product_ids: list[int] | None = Field(default=None, description="Only these product ids (if they are pending).")


class ProductImagesConfig(Config):
    force: bool = Field(
        default=False,
        description="Process the products even if they already have images (replacing them) or are not eligible.",
    )


@dataclass(frozen=True)
class SensorSettings:
    """How much one tick of ``new_eligible_products_sensor`` asks for.

    ``max_active_runs`` is back-pressure: no new runs while that many image runs are queued or running, so the
    queue never outgrows what the machine processes. Requested products stay excluded for ``requested_ttl_hours``
    (the claim TTL), long enough for a queued run to start and claim them.
    """

    batch_size: int = 25
    max_products_per_tick: int = 500
    max_active_runs: int = 4
    requested_ttl_hours: float = 2.0
    minimum_interval_seconds: int = 60

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SensorSettings:
        env = os.environ if env is None else env
        return cls(
            batch_size=int(env_number(env, "ML_IMAGES_SENSOR_BATCH_SIZE", 25, minimum=1)),
            max_products_per_tick=int(env_number(env, "ML_IMAGES_SENSOR_MAX_PRODUCTS_PER_TICK", 500, minimum=1)),
            max_active_runs=int(env_number(env, "ML_IMAGES_SENSOR_MAX_ACTIVE_RUNS", 4, minimum=1)),
            requested_ttl_hours=env_number(env, "ML_IMAGES_SENSOR_REQUESTED_TTL_HOURS", 2.0, minimum=0.0),
            minimum_interval_seconds=int(env_number(env, "ML_IMAGES_SENSOR_INTERVAL_SECONDS", 60, minimum=5)),
        )


def transient_retry_policy(env: Mapping[str, str] | None = None) -> RetryPolicy:
    """Retries for infrastructure faults (the search client already retried 5xx/429 within the call).

    Quota and configuration errors raise ``Failure(allow_retries=False)`` and are not retried.
    """
    env = os.environ if env is None else env
    return RetryPolicy(
        max_retries=int(env_number(env, "ML_IMAGES_STEP_MAX_RETRIES", 2, minimum=0)),
        delay=env_number(env, "ML_IMAGES_STEP_RETRY_DELAY_SECONDS", 30.0, minimum=0.0),
        backoff=Backoff.EXPONENTIAL,
        jitter=Jitter.PLUS_MINUS,
    )
