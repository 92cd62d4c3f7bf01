"""Wires the resources' clients into the image pipeline (the one object that needs all four)."""

from __future__ import annotations

from ml_images.catalog.product_reader import CatalogProducts
from ml_images.defs.resources import (
    BackgroundRemoverResource,
    CatalogDatabaseResource,
    ImageSearchResource,
    ImageStoreResource,
)
from ml_images.download.safe_downloader import SafeDownloader
from ml_images.pipeline.candidate_sources import CandidateSources
from ml_images.pipeline.product_pipeline import BatchConcurrency, ProductImagePipeline
from ml_images.processing.processor import ImageProcessorService


def build_pipeline(
    catalog: CatalogDatabaseResource,
    image_search: ImageSearchResource,
    image_store: ImageStoreResource,
    background_remover: BackgroundRemoverResource,
    *,
    concurrency: BatchConcurrency | None = None,
    search_cache: bool = True,
) -> ProductImagePipeline:
    """``search_cache=False`` for forced re-processing: a product's images are replaced with a fresh search,
    not with the cached candidates that produced the current ones."""
    search_settings = image_search.settings()
    settings = catalog.settings()
    selection = catalog.selection()
    return ProductImagePipeline(
        products=CatalogProducts(catalog.session_factory()),
        selector=selection.selector,
        recorder=catalog.recorder(),
        queries=selection.queries,
        search=image_search.search_service(cache=catalog.search_cache() if search_cache else None),
        downloader=SafeDownloader(allowed_private_hosts=tuple(search_settings.allowed_private_hosts)),
        processor=ImageProcessorService(
            background_remover.remover(),
            canvas_size=settings.canvas_size,
            cover_policy=settings.cover_policy,
            cover_attempts=settings.cover_attempts,
        ),
        store=image_store.store(),
        max_images=search_settings.image_search_count,
        concurrency=concurrency,
        unreachable_attempts=settings.unreachable_attempts,
        heartbeat_seconds=settings.claim_heartbeat_seconds,
        sources=CandidateSources.from_settings(settings),
    )
