"""Builds a ``ProductImagePipeline`` from real parts pointed at a test catalog, an ``ImageWeb`` and a store."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ml_images.catalog.recorder import Claim, ImageRecord, ImageRecorder
from ml_images.catalog.rules import parse_publication_rules
from ml_images.catalog.selection import ImageCandidateSelector, MercadoLibreFilter
from ml_images.defs.resources import (
    BackgroundRemoverResource,
    CatalogDatabaseResource,
    ImageSearchResource,
    ImageStoreResource,
)
from ml_images.download.safe_downloader import SafeDownloader
from ml_images.errors import CatalogUnavailableError
from ml_images.orchestration.services import build_pipeline
from ml_images.outcomes import AttemptStats
from ml_images.pipeline.candidate_sources import CandidateSources
from ml_images.pipeline.product_pipeline import BatchConcurrency, ProductImagePipeline
from ml_images.processing.background import BackgroundRemover
from ml_images.processing.processor import ImageProcessorService
from ml_images.search.cache import SearchCache
from ml_images.search.factory import build_search_service
from ml_images.search.retry import RetryPolicy
from ml_images.search.service import ImageSearchService
from ml_images.settings import Settings
from ml_images.storage.base import ImageStore
from ml_images.storage.local import LocalImageStore
from ml_images_tests.pipeline.support import API_KEY, Catalog, ImageWeb


def search_service(catalog: Catalog, web: ImageWeb, *, cache: bool = True) -> ImageSearchService:
    settings = replace(
        Settings.from_env(),
        search_provider="brave",
        search_endpoint=web.search_endpoint,
        brave_api_key=API_KEY,
    )
    service = build_search_service(settings, cache=SearchCache(catalog.session_factory) if cache else None)
    # Fast retries: a 503 is still retried (that is what is tested), without seconds of backoff.
    service.retry = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05)
    return service


def make_pipeline(
    catalog: Catalog,
    web: ImageWeb | None,
    remover: BackgroundRemover | None,
    *,
    store: ImageStore | None = None,
    root: Path | None = None,
    recorder: ImageRecorder | None = None,
    concurrency: BatchConcurrency | None = None,
    max_images: int = 5,
    search_cache: bool = True,
    processor: ImageProcessorService | None = None,
    downloader: SafeDownloader | None = None,
    unreachable_attempts: int = 3,
    heartbeat_seconds: float = 15.0,
    sources: CandidateSources | None = None,
    search: ImageSearchService | None = None,
) -> ProductImagePipeline:
    """The production wiring (``build_pipeline``) over the test's catalog, with the test's parts: a search of
    ``web`` (unless ``search`` is given) that retries without backoff, a store in ``root`` (unless ``store``), a
    downloader allowed onto 127.0.0.1, the processor over ``remover``."""
    if store is None:
        if root is None:
            raise ValueError("give a store or a root folder")
        store = LocalImageStore(root)
    if search is None:
        if web is None:
            raise ValueError("give a search service or the ImageWeb it searches")
        search = search_service(catalog, web, cache=search_cache)
    # The search, store and remover resources build nothing here: each of their parts is given.
    return build_pipeline(
        CatalogDatabaseResource(database_url=catalog.url),
        ImageSearchResource(),
        ImageStoreResource(),
        BackgroundRemoverResource(),
        concurrency=concurrency,
        recorder=recorder,
        search=search,
        downloader=downloader or SafeDownloader(allowed_private_hosts=("127.0.0.1",), deadline_seconds=10.0),
        processor=processor or ImageProcessorService(remover),
        store=store,
        max_images=max_images,
        unreachable_attempts=unreachable_attempts,
        heartbeat_seconds=heartbeat_seconds,
        sources=sources or CandidateSources(),
    )


class CommitFails(ImageRecorder):
    """The database goes away between the uploads and the commit (the first ``failures`` times)."""

    def __init__(self, *args: Any, failures: int = 1, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.failures = failures

    def commit_images(
        self,
        claim: Claim,
        records: Sequence[ImageRecord],
        *,
        stats: AttemptStats,
        reason_code: str | None = None,
        reason: str | None = None,
    ) -> list[str]:
        if self.failures > 0:
            self.failures -= 1
            raise CatalogUnavailableError("the catalog database cannot be reached: connection reset (test)")
        return super().commit_images(claim, records, stats=stats, reason_code=reason_code, reason=reason)


def pending_ids(catalog: Catalog) -> list[int]:
    selector = ImageCandidateSelector(MercadoLibreFilter(catalog.session_factory, parse_publication_rules(None)))
    return [p.id for p in selector.get_pending_image_products()]
