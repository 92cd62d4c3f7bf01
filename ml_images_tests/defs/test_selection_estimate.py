"""The selection's estimate of the search calls a run will make: distributor photos (fallback/never) and cached
results count zero; checked against a real catalog (SQLite and PostgreSQL) and through the selection asset."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from dagster import DagsterInstance

from ml_images.catalog.models import ProductMaster
from ml_images.search.cache import SearchCache
from ml_images.search.candidates import ImageCandidate
from ml_images.search.cost_estimate import SearchCostEstimator
from ml_images.search.distributor import SearchMode
from ml_images.search.query import QueryConstructor
from ml_images_tests.defs.helpers import resources, run_selection
from ml_images_tests.pipeline.support import Catalog, ImageWeb


def _with_photo(catalog: Catalog, pid: int) -> None:
    with catalog.session_factory() as session, session.begin():
        session.execute(
            sa.update(ProductMaster).where(ProductMaster.id == pid).values(image_url="http://127.0.0.1:9/sm/1.jpg")
        )


def _products(catalog: Catalog) -> list[int]:
    """Four products: two with a distributor photo, one of the others with cached results."""
    ids = [catalog.add_product(f"CE{700 + i}") for i in range(4)]
    _with_photo(catalog, ids[0])
    _with_photo(catalog, ids[1])
    SearchCache(catalog.session_factory).put(
        "brave", "Acme CE702 MONITOR", [ImageCandidate("http://127.0.0.1/x.jpg")], 1
    )
    return ids


@pytest.mark.parametrize(
    ("mode", "calls", "photos", "cached"),
    [(SearchMode.FILL, 3, 0, 1), (SearchMode.FALLBACK, 1, 2, 1), (SearchMode.NEVER, 0, 0, 0)],
)
def test_estimate_by_mode(catalog: Catalog, mode: SearchMode, calls: int, photos: int, cached: int) -> None:
    ids = _products(catalog)
    estimator = SearchCostEstimator(catalog.session_factory, QueryConstructor(), mode=mode, provider="brave")

    estimate = estimator.estimate(ids)

    assert (estimate.products, estimate.search_calls, estimate.distributor_photos, estimate.cached) == (
        4,
        calls,
        photos,
        cached,
    )
    # Another provider's cache does not count.
    other = SearchCostEstimator(catalog.session_factory, QueryConstructor(), mode=mode, provider="serpapi")
    assert other.estimate(ids).cached == 0


def _metadata(result: Any, node: str) -> dict[str, Any]:
    [event] = result.asset_materializations_for_node(node)
    return {k: getattr(v, "value", v) for k, v in event.metadata.items()}


def test_the_selection_asset_shows_the_estimate(
    sqlite_catalog: Catalog, web: ImageWeb, instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    _products(sqlite_catalog)
    monkeypatch.setenv("ML_IMAGES_SEARCH_MODE", "fallback")

    pending = _metadata(run_selection(instance, resources(sqlite_catalog, web)), "pending_image_products")

    assert pending["selected_count"] == 4
    assert (pending["estimated_search_calls"], pending["estimate_distributor_photos"]) == (1, 2)
    assert (pending["estimate_cached_searches"], pending["search_mode"]) == (1, "fallback")
