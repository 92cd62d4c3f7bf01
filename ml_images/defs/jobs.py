"""Jobs: ``fetch_ml_images`` (the selection; registers partitions) and ``product_images_job`` (image batches)."""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job

from ml_images.orchestration.config import BACKGROUND_REMOVAL_WORKLOAD, WORKLOAD_TAG

FETCH_ML_IMAGES_JOB = "fetch_ml_images"
PRODUCT_IMAGES_JOB = "product_images_job"

fetch_ml_images = define_asset_job(
    FETCH_ML_IMAGES_JOB,
    selection=AssetSelection.groups("selection"),
    description=(
        "The selection: eligible products, then those still needing images, registered as partitions of "
        "`products`. Run config `ops.pending_image_products.config`: dry_run, limit, product_ids."
    ),
)

product_images_job = define_asset_job(
    PRODUCT_IMAGES_JOB,
    # Partitioned by `products` because product_images is: Dagster infers a job's partitions from its assets
    # (`define_asset_job(partitions_def=...)` is deprecated, removed in 2.0).
    selection=AssetSelection.assets("product_images"),
    # Lets `concurrency.runs.tag_concurrency_limits` in dagster.yaml cap how many image runs (each doing
    # background removal on the CPU) the run queue starts at once.
    tags={WORKLOAD_TAG: BACKGROUND_REMOVAL_WORKLOAD},
    description=(
        "Images for one product (tag dagster/partition) or a batch (tags dagster/asset_partition_range_start and "
        "_end). Run config `ops.product_images.config.force: true` replaces images of products that have some."
    ),
)
