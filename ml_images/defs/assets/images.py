"""``product_images``: the images of each product, one dynamic partition per product, a batch per run.

A run carries a range of partitions (``context.partition_keys``), processed by
``ProductImagePipeline.process_batch`` with overlapping network and CPU work; a multi-run backfill policy bounds a
backfill from the UI to runs of at most a batch. Each partition gets its own metadata
(the product's code and description, status, previews and thumbnails of its images, links, refusals, search calls;
see ``metadata.py``) on top of the batch metadata (counts and the table of the run's products).

When every product of the batch ended with pictures or was skipped, the step returns a ``MaterializeResult`` and
the per-partition metadata is merged into each partition's materialisation (see ``partition_metadata.py`` for how,
and why not one ``context.add_asset_metadata(..., partition_key=key)`` call per product). When some products got
no pictures (``NO_IMAGES``, ``DEFERRED``), the step logs a materialisation for each of the others and an
observation for those, then raises ``Failure(allow_retries=False)`` naming them: the UI shows their partitions as
failed (red) next to the stored ones (green). That is their recorded outcome, not a fault: nothing is retried, and
``ml-images fetch`` tells it from a fault by the outcomes in ``image_fetch_attempt``.

Faults: an exhausted quota or a configuration error raises ``Failure(allow_retries=False)``; an infrastructure
fault raises a retryable ``Failure`` (the ``RetryPolicy`` tries again with exponential backoff). A fault that stops
the batch (or a stop request) also tags the run ``ml_images/stopped_by=<reason code>``, which ``ml-images fetch``
reads. Either way the products not finished stay pending and the message says what was done and what is left.
"""

import warnings
from collections.abc import Iterator, Mapping
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetMaterialization,
    AssetObservation,
    AssetsDefinition,
    BackfillPolicy,
    BetaWarning,
    DagsterExecutionInterruptedError,
    Failure,
    MaterializeResult,
    MetadataValue,
    RetryPolicy,
    asset,
)

from ml_images.catalog.product_reader import CatalogProducts
from ml_images.defs.assets.selection import pending_image_products
from ml_images.defs.resources import (
    BackgroundRemoverResource,
    CatalogDatabaseResource,
    ImageSearchResource,
    ImageStoreResource,
)
from ml_images.errors import ConfigurationError, SearchQuotaError
from ml_images.orchestration.config import (
    IMAGE_SEARCH_POOL,
    NO_PICTURES_KEY,
    ProductImagesConfig,
    transient_retry_policy,
)
from ml_images.orchestration.metadata import (
    PictureView,
    ProductInfo,
    batch_metadata,
    batch_table,
    product_metadata,
)
from ml_images.orchestration.partition_metadata import add_partition_metadata
from ml_images.orchestration.partitions import parse_product_key, products_partitions
from ml_images.orchestration.pictures import PictureViews, store_kind
from ml_images.orchestration.progress import product_done
from ml_images.orchestration.services import build_pipeline
from ml_images.orchestration.stops import mark_stopped
from ml_images.outcomes import ProductStatus, ReasonCode
from ml_images.pipeline.failures import failure_reason_code
from ml_images.pipeline.reports import BatchReport, ProductReport
from ml_images.settings import Settings, current_settings

#: Outcomes whose partition is not materialised: the product got no pictures in this run (listing in ERROR, or
#: left pending because every candidate was unreachable).
WITHOUT_PICTURES = frozenset({ProductStatus.NO_IMAGES, ProductStatus.DEFERRED})


class ProductLogger:
    """Logs each finished product to the run's log (called from the step's thread)."""

    def __init__(self, context: AssetExecutionContext, total: int) -> None:
        self._context = context
        self._total = total
        self._done = 0

    def __call__(self, report: ProductReport) -> None:
        self._done += 1
        detail = f"{len(report.images)} images" if report.status is ProductStatus.STORED else report.reason_code
        self._context.log.info(
            f"product {report.product_id}: {report.status.value} ({detail}); products done {self._done}/{self._total}"
        )
        product_done(report)


def _failure(batch: BatchReport, keys_total: int, *, allow_retries: bool) -> Failure:
    done = [r for r in batch.reports if r.status is not ProductStatus.FAILED]
    left = [r.product_id for r in batch.reports if r.status is ProductStatus.FAILED]
    cause = batch.abort_error
    headline = (
        f"{failure_reason_code(cause)} ({type(cause).__name__}: {cause})"
        if cause is not None
        else f"{len(left)} products failed"
    )
    return Failure(
        description=(
            f"{headline}. Done: {len(done)} of {keys_total} products ({batch.summary()}). "
            f"Left pending (not finished): {left[:50]}{' …' if len(left) > 50 else ''}"
        ),
        metadata={
            **batch_metadata(batch),
            "products": batch_table(batch),
            "left_pending": MetadataValue.json(left),
        },
        allow_retries=allow_retries,
    )


def _no_pictures_failure(
    batch: BatchReport,
    without: list[ProductReport],
    products: Mapping[int, ProductInfo],
    shared: Mapping[str, Any],
) -> Failure:
    named = [
        f"{r.product_id} {products.get(r.product_id, ProductInfo()).label} ({r.reason_code or r.status.value})"
        for r in without
    ]
    return Failure(
        description=(
            f"{len(without)} of {len(batch.reports)} products got no pictures: {', '.join(named[:25])}"
            f"{' …' if len(named) > 25 else ''}. This is their outcome, recorded in image_fetch_attempt (listing "
            f"ERROR or left pending), not a fault of the run: not retried. {batch.summary()}"
        ),
        metadata={**shared, NO_PICTURES_KEY: MetadataValue.json([r.product_id for r in without])},
        allow_retries=False,
    )


def _product_infos(catalog: CatalogDatabaseResource, ids: list[int]) -> dict[int, ProductInfo]:
    return {pid: ProductInfo.of(p) for pid, p in CatalogProducts(catalog.session_factory()).load(ids).items()}


def _product_entry(
    report: ProductReport,
    products: Mapping[int, ProductInfo],
    views: PictureViews,
    context: AssetExecutionContext,
) -> dict[str, Any]:
    pictures = [
        PictureView(image, *views.pictures(image.storage_key), link=views.link(image.storage_key, image.url))
        for image in report.images
    ]
    if any(p.thumbnail is None for p in pictures):
        context.log.warning(f"product {report.product_id}: some thumbnails could not be made (see the metadata)")
    return product_metadata(report, products.get(report.product_id), pictures, no_link=views.no_link_reason())


def _configuration_failure(error: ConfigurationError, ids: list[int]) -> Failure:
    return Failure(
        description=(
            f"{failure_reason_code(error)} ({type(error).__name__}: {error}). Nothing was processed; "
            f"left pending: {ids[:50]}{' …' if len(ids) > 50 else ''}"
        ),
        metadata={"left_pending": MetadataValue.json(ids)},
        allow_retries=False,
    )


def build_product_images_asset(
    retry_policy: RetryPolicy | None = None, settings: Settings | None = None
) -> AssetsDefinition:
    """The asset, from ``settings`` (default: the process's); tests build it with a fast retry policy, the code
    location with ``transient_retry_policy(settings)``."""
    settings = current_settings() if settings is None else settings
    with warnings.catch_warnings():
        # `backfill_policy` is marked beta; the multi-run policy is what bounds a UI backfill to runs of a batch.
        warnings.simplefilter("ignore", BetaWarning)
        return _define_product_images(
            retry_policy if retry_policy is not None else transient_retry_policy(settings),
            store_kind(settings.bucket),
            settings.sensor.batch_size,
        )


def _define_product_images(retry_policy: RetryPolicy, kind: str, batch_size: int) -> AssetsDefinition:
    @asset(
        name="product_images",
        group_name="images",
        kinds={"python", kind},
        output_required=False,
        partitions_def=products_partitions,
        backfill_policy=BackfillPolicy.multi_run(max_partitions_per_run=batch_size),
        deps=[pending_image_products],
        pool=IMAGE_SEARCH_POOL,
        retry_policy=retry_policy,
        description=(
            "Up to 5 photos per product: searched, downloaded safely, normalised to a white 1200×1200 JPEG (the "
            "main picture with its background removed), stored, and recorded as product_image rows in one "
            "transaction. One partition per product id; a run processes a range of partitions."
        ),
    )
    def product_images(
        context: AssetExecutionContext,
        config: ProductImagesConfig,
        catalog: CatalogDatabaseResource,
        image_search: ImageSearchResource,
        image_store: ImageStoreResource,
        background_remover: BackgroundRemoverResource,
    ) -> Iterator[MaterializeResult]:
        keys = list(context.partition_keys)
        ids: list[int] = []
        per_partition: dict[str, dict[str, Any]] = {}
        for key in keys:
            pid = parse_product_key(key)
            if pid is None:
                per_partition[key] = {
                    "status": ProductStatus.SKIPPED.value,
                    "reason_code": ReasonCode.INVALID_PARTITION_KEY.value,
                    "reason": f"partition key {key!r} is not a product id",
                }
            else:
                ids.append(pid)
        if context.retry_number:
            context.log.info(f"retry {context.retry_number}: products already done are skipped")
        try:
            link_hours = image_store.settings().presigned_link_hours
            pipeline = build_pipeline(
                catalog, image_search, image_store, background_remover, search_cache=not config.force
            )
        except ConfigurationError as exc:
            # A bad variable or a missing key fails every attempt alike: no retry (the RetryPolicy would otherwise
            # spend minutes on it), nothing claimed, every product left pending.
            mark_stopped(context, failure_reason_code(exc))
            raise _configuration_failure(exc, ids) from exc
        try:
            batch = pipeline.process_batch(
                ids, context.run.run_id, force=config.force, on_product_done=ProductLogger(context, len(ids))
            )
        except (KeyboardInterrupt, DagsterExecutionInterruptedError) as exc:
            # Dagster retries an interrupted step under a RetryPolicy; a request to stop (SIGINT/SIGTERM) must stop.
            mark_stopped(context, ReasonCode.INTERRUPTED)
            raise Failure(
                description=(
                    f"{ReasonCode.INTERRUPTED}: the run was told to stop; the products in flight released their claims "
                    "(recorded as interrupted), the others stay pending"
                ),
                allow_retries=False,
            ) from exc
        context.log.info(batch.summary())

        if batch.abort_error is not None:
            mark_stopped(context, failure_reason_code(batch.abort_error))
            retryable = not isinstance(batch.abort_error, SearchQuotaError | ConfigurationError)
            raise _failure(batch, len(keys), allow_retries=retryable) from batch.abort_error
        if batch.with_status(ProductStatus.FAILED):
            raise _failure(batch, len(keys), allow_retries=True)

        products = _product_infos(catalog, ids)
        views = PictureViews(image_store.store(), presigned_link_hours=link_hours)
        shared = batch_metadata(batch, products)
        per_partition.update((str(r.product_id), _product_entry(r, products, views, context)) for r in batch.reports)
        without_pictures = [r for r in batch.reports if r.status in WITHOUT_PICTURES]
        if not without_pictures:
            add_partition_metadata(context, per_partition)
            yield MaterializeResult(metadata=shared)
            return
        # Some products got no pictures: only the others are materialised, then the step fails without a retry,
        # so their partitions show "Failed" (red) in the UI while the stored ones are green. Their outcomes are
        # recorded in image_fetch_attempt already; `ml-images fetch` reads them to tell this from a fault.
        # The products without pictures get an observation instead: their partition's page still lists what
        # was searched and why each candidate was refused, without counting as materialised.
        failed_keys = {str(r.product_id) for r in without_pictures}
        for key, metadata in per_partition.items():
            event = AssetObservation if key in failed_keys else AssetMaterialization
            context.log_event(event(asset_key=context.asset_key, partition=key, metadata={**metadata, **shared}))
        raise _no_pictures_failure(batch, without_pictures, products, shared)

    return product_images
