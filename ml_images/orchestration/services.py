"""Wires the resources' clients into the image pipeline (the one object that needs all four)."""

from __future__ import annotations

from ml_images.catalog.product_reader import CatalogProducts
from ml_images.catalog.recorder import ImageRecorder
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
from ml_images.search.service import ImageSearchService
from ml_images.storage.base import ImageStore


def build_pipeline(
    catalog: CatalogDatabaseResource,
    image_search: ImageSearchResource,
    image_store: ImageStoreResource,
    background_remover: BackgroundRemoverResource,
    *,
    concurrency: BatchConcurrency | None = None,
    search_cache: bool = True,
    recorder: ImageRecorder | None = None,
    search: ImageSearchService | None = None,
    downloader: SafeDownloader | None = None,
    processor: ImageProcessorService | None = None,
    store: ImageStore | None = None,
    max_images: int | None = None,
    unreachable_attempts: int | None = None,
    heartbeat_seconds: float | None = None,
    sources: CandidateSources | None = None,
) -> ProductImagePipeline:
    """``search_cache=False`` for forced re-processing: a product's images are replaced with a fresh search,
    not with the cached candidates that produced the current ones.

    A part or figure given takes the place of the one the resources and their settings would give (the tests'
    pipelines: a recorder whose commit fails, a search that retries without backoff, a store in a temporary
    folder); production gives none, and a part given is not built.
    """
    search_settings = image_search.settings()
    settings = catalog.settings()
    selection = catalog.selection()
    if search is None:
        search = image_search.search_service(cache=catalog.search_cache() if search_cache else None)
    if processor is None:
        processor = ImageProcessorService(
            background_remover.remover(),
            canvas_size=settings.canvas_size,
            cover_policy=settings.cover_policy,
            cover_attempts=settings.cover_attempts,
        )
    return ProductImagePipeline(
        products=CatalogProducts(catalog.session_factory()),
        selector=selection.selector,
        recorder=recorder or catalog.recorder(),
        queries=selection.queries,
        search=search,
        downloader=downloader or SafeDownloader(allowed_private_hosts=tuple(search_settings.allowed_private_hosts)),
        processor=processor,
        store=store or image_store.store(),
        max_images=search_settings.image_search_count if max_images is None else max_images,
        concurrency=concurrency,
        unreachable_attempts=settings.unreachable_attempts if unreachable_attempts is None else unreachable_attempts,
        heartbeat_seconds=settings.claim_heartbeat_seconds if heartbeat_seconds is None else heartbeat_seconds,
        sources=sources or CandidateSources.from_settings(settings),
    )
