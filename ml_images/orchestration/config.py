"""Run configuration of the assets, the run tags and pools, and the retry policy (built from the settings).

The selection config is part of the external contract (README):
``ops: {pending_image_products: {config: {dry_run: bool, limit: int|null, product_ids: [int]|null}}}``.
"""

from __future__ import annotations

from dagster import Backoff, Config, Jitter, RetryPolicy
from pydantic import Field

from ml_images.settings import SensorSettings, Settings

__all__ = ["SensorSettings"]  # the sensor's tunables live in the settings registry; re-exported for its users

#: Concurrency pool of the step that calls the paid search API (``dagster instance concurrency set`` / dagster.yaml).
IMAGE_SEARCH_POOL = "image_search_api"
#: Run tag (and ``concurrency.runs.tag_concurrency_limits`` key) of the runs that do background removal.
WORKLOAD_TAG = "ml_images/workload"
BACKGROUND_REMOVAL_WORKLOAD = "background_removal"
#: Run tag of a dry run of the selection (set by the asset itself, so runs launched from the UI carry it too).
DRY_RUN_TAG = "ml_images/dry_run"
#: Metadata key of the failure ``product_images`` raises to mark the products that got no pictures (their own
#: outcome, not a fault), listing them for the UI.
NO_PICTURES_KEY = "products_without_pictures"
#: Run tag ``product_images`` sets when its batch stopped on a fault every later run would meet (quota,
#: configuration, storage, an outage) or on a stop request; the value is the reason code. ``ml-images fetch``
#: reads it to stop launching batches.
STOPPED_BY_TAG = "ml_images/stopped_by"


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


def transient_retry_policy(settings: Settings) -> RetryPolicy:
    """Retries for infrastructure faults (the search client already retried 5xx/429 within the call).

    Quota and configuration errors raise ``Failure(allow_retries=False)`` and are not retried.
    """
    return RetryPolicy(
        max_retries=settings.step_max_retries,
        delay=settings.step_retry_delay_seconds,
        backoff=Backoff.EXPONENTIAL,
        jitter=Jitter.PLUS_MINUS,
    )
