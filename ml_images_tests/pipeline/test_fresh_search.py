"""Cached search results that led nowhere are not replayed: the product's next attempt searches afresh."""

from __future__ import annotations

from pathlib import Path

from ml_images.outcomes import ProductStatus
from ml_images.search.cache import SearchCache
from ml_images_tests.pipeline.builders import make_pipeline
from ml_images_tests.pipeline.network_faults import closed_port
from ml_images_tests.pipeline.support import Catalog, ImageWeb


def _cached_urls(catalog: Catalog, query: str) -> list[str] | None:
    cached = SearchCache(catalog.session_factory).get("brave", query)
    return None if cached is None else [c.image_url for c in cached]


def test_results_that_led_nowhere_are_searched_afresh_next_time(
    catalog: Catalog, web: ImageWeb, remover, image_root: Path
):
    pid = catalog.add_product("ZX4001")
    query = "Acme ZX4001 MONITOR"
    dead = [web.url("gone-1.jpg"), web.url("gone-2.jpg")]
    web.add_urls("ZX4001", dead)
    pipeline = make_pipeline(catalog, web, remover, root=image_root)

    first = pipeline.process_product(pid, "run-1")
    assert (first.status, first.reason_code) == (ProductStatus.NO_IMAGES, "no_usable_image")
    assert web.search_calls == 1
    assert _cached_urls(catalog, query) == dead

    web.add("ZX4001", 2)  # the web has moved on: the same search now finds usable photos
    second = pipeline.process_product(pid, "run-2")  # the next attempt (after the cooldown)

    assert second.status is ProductStatus.STORED
    assert (second.search_calls, second.search_cached) == (1, False)
    assert web.search_calls == 2
    assert _cached_urls(catalog, query) == [web.url("zx4001-0.jpg"), web.url("zx4001-1.jpg")]  # refreshed


def test_a_fresh_search_is_made_once_per_fruitless_verdict(catalog: Catalog, web: ImageWeb, remover, image_root: Path):
    pid = catalog.add_product("ZX4002")
    web.add_urls("ZX4002", [web.url("gone.jpg")])
    pipeline = make_pipeline(catalog, web, remover, root=image_root)
    assert pipeline.process_product(pid, "run-1").reason_code == "no_usable_image"

    # After the verdict, a fresh search whose candidates are unreachable (transient: the product stays pending)...
    web.add_urls("ZX4002", [f"http://127.0.0.1:{closed_port()}/a.jpg"])
    second = pipeline.process_product(pid, "run-2")
    assert (second.reason_code, second.search_cached) == ("candidates_unreachable", False)
    assert web.search_calls == 2

    # ...is not repeated by the next attempt: the cache holds fresh results, which may be reachable now.
    third = pipeline.process_product(pid, "run-3")
    assert (third.reason_code, third.search_cached) == ("candidates_unreachable", True)
    assert web.search_calls == 2


def test_results_that_were_used_stay_cached(catalog: Catalog, web: ImageWeb, remover, image_root: Path):
    pid = catalog.add_product("ZX4003")
    web.add("ZX4003", 1)
    pipeline = make_pipeline(catalog, web, remover, root=image_root)
    assert pipeline.process_product(pid, "run-1").status is ProductStatus.STORED

    again = pipeline.process_product(pid, "run-2", force=True)  # a forced re-run through this (cached) pipeline

    assert (again.status, again.search_cached) == (ProductStatus.STORED, True)
    assert web.search_calls == 1
