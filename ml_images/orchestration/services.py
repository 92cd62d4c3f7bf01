"""Builds the plain services from the resources. Assets, checks, the sensor and the CLI all go through here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ml_images.catalog.models import ProductMaster
from ml_images.catalog.product_reader import CatalogProducts
from ml_images.catalog.recorder import ImageRecorder
from ml_images.catalog.rules import parse_publication_rules
from ml_images.catalog.selection import ImageCandidateSelector, MercadoLibreFilter
from ml_images.defs.resources import (
    BackgroundRemoverResource,
    CatalogDatabaseResource,
    ImageSearchResource,
    ImageStoreResource,
)
from ml_images.download.safe_downloader import SafeDownloader
from ml_images.orchestration.metadata import PREVIEW_ROWS
from ml_images.pipeline.candidate_sources import CandidateSources
from ml_images.pipeline.product_pipeline import BatchConcurrency, ProductImagePipeline
from ml_images.processing.processor import ImageProcessorService
from ml_images.search.cache import SearchCache
from ml_images.search.factory import build_search_service
from ml_images.search.query import QueryConstructor
from ml_images.settings import Settings


@dataclass(frozen=True)
class SelectionServices:
    """What the selection needs: read-only queries and the query builder (no search, no writes)."""

    settings: Settings
    product_filter: MercadoLibreFilter
    selector: ImageCandidateSelector
    queries: QueryConstructor

    def select_ids(self, *, limit: int | None = None, product_ids: Sequence[int] | None = None) -> list[int]:
        """The pending products a selection takes (oldest first), restricted by ``limit`` / ``product_ids``.

        Explicitly named products skip the cooldown (asking for them is the reason to try again); the other
        rules still apply. Ids only: a selection may hold most of a large catalog.
        """
        ids = list(dict.fromkeys(product_ids)) if product_ids else None
        return self.selector.pending_product_ids(limit, product_ids=ids, ignore_cooldown=ids is not None)

    def preview(self, product_ids: Sequence[int]) -> list[ProductMaster]:
        """The products (rows) of the first ``PREVIEW_ROWS`` selected ids, in the same order."""
        ids = list(product_ids)[:PREVIEW_ROWS]
        if not ids:
            return []
        found = {p.id: p for p in self.selector.get_pending_image_products(product_ids=ids, ignore_cooldown=True)}
        return [found[i] for i in ids if i in found]


def build_selection(
    catalog: CatalogDatabaseResource, image_search: ImageSearchResource | None = None
) -> SelectionServices:
    settings = catalog.settings()
    if image_search is not None:
        settings = image_search.apply(settings)
    session_factory = catalog.session_factory()
    product_filter = MercadoLibreFilter(
        session_factory,
        parse_publication_rules(settings.publication_rules_json),
        freshness_hours=settings.freshness_hours,
    )
    selector = ImageCandidateSelector(
        product_filter,
        cooldown_hours=settings.no_images_cooldown_hours,
        claim_lease_seconds=settings.claim_lease_seconds,
    )
    return SelectionServices(
        settings=settings, product_filter=product_filter, selector=selector, queries=QueryConstructor()
    )


def build_recorder(catalog: CatalogDatabaseResource) -> ImageRecorder:
    return ImageRecorder(catalog.session_factory(), lease_seconds=catalog.settings().claim_lease_seconds)


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
    selection = build_selection(catalog, image_search)
    settings = image_store.apply(selection.settings)
    session_factory = catalog.session_factory()
    cache = SearchCache(session_factory, ttl_hours=settings.search_cache_ttl_hours) if search_cache else None
    return ProductImagePipeline(
        products=CatalogProducts(session_factory),
        selector=selection.selector,
        recorder=ImageRecorder(session_factory, lease_seconds=settings.claim_lease_seconds),
        queries=selection.queries,
        search=build_search_service(settings, cache=cache),
        downloader=SafeDownloader(allowed_private_hosts=tuple(settings.allowed_private_hosts)),
        processor=ImageProcessorService(
            background_remover.remover(),
            canvas_size=settings.canvas_size,
            cover_policy=settings.cover_policy,
            cover_attempts=settings.cover_attempts,
        ),
        store=image_store.build_store(settings),
        max_images=settings.image_search_count,
        concurrency=concurrency,
        unreachable_attempts=settings.unreachable_attempts,
        heartbeat_seconds=settings.claim_heartbeat_seconds,
        sources=CandidateSources.from_settings(settings),
    )
