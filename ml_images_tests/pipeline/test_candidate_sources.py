"""Issue 13 in the pipeline, with real parts: the distributor photo as candidate #0 (rewrite rules, search modes),
the ranking and its recorded parts, the fallback provider, and the shared rate limit under 6 products in flight."""

from __future__ import annotations

import bisect
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pytest_httpserver import HTTPServer

from ml_images.catalog.models import ImageDetail, ProductMaster
from ml_images.orchestration.metadata import product_metadata
from ml_images.outcomes import ProductStatus
from ml_images.pipeline.candidate_sources import CandidateSources
from ml_images.pipeline.product_pipeline import BatchConcurrency
from ml_images.search.cache import SearchCache
from ml_images.search.distributor import SearchMode, UrlRewrites
from ml_images.search.factory import build_search_service
from ml_images.search.retry import RetryPolicy
from ml_images.settings import Settings
from ml_images_tests.pipeline.builders import make_pipeline
from ml_images_tests.pipeline.support import API_KEY, Catalog, ImageWeb, photo_bytes
from ml_images_tests.search.payloads import brave_payload, brave_result, serpapi_payload, serpapi_result

SM_TO_LG = UrlRewrites.parse('[["/dist/sm/", "/dist/lg/"]]')


def set_product(catalog: Catalog, pid: int, **values: Any) -> None:
    with catalog.session_factory() as session, session.begin():
        session.execute(sa.update(ProductMaster).where(ProductMaster.id == pid).values(**values))


def details(catalog: Catalog, pid: int) -> list[ImageDetail]:
    """The ``ml_images_image`` rows of a product, in image order."""
    orders = {row.id: row.order for row in catalog.images(pid)}
    with catalog.session_factory() as session:
        rows = list(session.scalars(sa.select(ImageDetail).where(ImageDetail.product_id == pid)))
    return sorted(rows, key=lambda d: orders[d.product_image_id])


def distributor_photos(web: ImageWeb, name: str, seed: int) -> str:
    """A distributor's thumbnail (200 px: refused as too small if ever downloaded) and its large version; returns
    the thumbnail URL, which is what the catalog holds."""
    web.serve(f"/dist/lg/{name}", photo_bytes(seed, size=900))
    return web.serve(f"/dist/sm/{name}", photo_bytes(seed, size=200))


def test_distributor_photo_is_candidate_zero_rewritten_and_recorded(
    catalog: Catalog, web: ImageWeb, remover, image_root
):
    pid = catalog.add_product("DS100")
    thumbnail = distributor_photos(web, "ds100.jpg", seed=7001)
    set_product(catalog, pid, image_url=thumbnail)
    web.add("DS100", 2)
    pipeline = make_pipeline(catalog, web, remover, root=image_root, sources=CandidateSources(rewrites=SM_TO_LG))

    report = pipeline.process_product(pid, "run-1")

    assert report.status is ProductStatus.STORED, report.reason
    large = thumbnail.replace("/dist/sm/", "/dist/lg/")
    assert "/dist/lg/ds100.jpg" in web.requested_paths()
    assert "/dist/sm/ds100.jpg" not in web.requested_paths()  # the rewrite rule applied before the download
    rows = catalog.images(pid)
    assert rows[0].source_url == large
    [first, *others] = details(catalog, pid)
    assert (first.source_kind, first.provider, first.provider_rank) == ("distributor", None, None)
    assert first.rank_parts is not None
    assert first.rank_parts["source_kind"]["points"] == 100
    assert first.rank_score == report.candidates[0]["score"]["total"]
    assert others
    assert all(d.source_kind == "search" and d.provider == "brave" for d in others)
    assert all(d.page_url and d.provider_rank is not None for d in others)
    # fill mode: the search still fills the places left; cost recorded on the attempt
    [attempt] = catalog.attempts(pid)
    assert (attempt.provider, attempt.search_calls_by_provider, attempt.search_cache_hits) == ("brave", {"brave": 1}, 0)
    assert attempt.downloads == 3 == report.downloads
    assert attempt.candidates is not None
    assert [c["source_kind"] for c in attempt.candidates] == ["distributor", "search", "search"]
    assert attempt.candidates[0]["rewritten_from"] == thumbnail
    assert set(attempt.candidates[0]["score"]["parts"]) == {"source_kind", "size", "domain", "rank", "words"}
    assert report.images[0].source_label == "distributor"
    assert report.images[1].source_label.startswith("search brave #")
    assert report.search_plan == "fill_after_distributor_photo"
    # ... and the product's Dagster metadata shows them.
    metadata = {k: getattr(v, "value", v) for k, v in product_metadata(report).items()}
    assert metadata["image_sources"][0] == "#0 distributor"
    assert metadata["ranked_candidates"][0]["parts"]["source_kind"] == 100
    assert (metadata["search_provider"], metadata["search_calls_by_provider"], metadata["downloads"]) == (
        "brave",
        {"brave": 1},
        3,
    )


def test_never_mode_makes_no_search_call(sqlite_catalog: Catalog, web: ImageWeb, remover, image_root):
    with_photo = sqlite_catalog.add_product("NV200")
    set_product(sqlite_catalog, with_photo, image_url=distributor_photos(web, "nv200.jpg", seed=7002))
    without = sqlite_catalog.add_product("NV201")
    web.add("NV200", 2)
    web.add("NV201", 2)
    sources = CandidateSources(rewrites=SM_TO_LG, mode=SearchMode.NEVER)
    pipeline = make_pipeline(sqlite_catalog, web, remover, root=image_root, sources=sources)

    stored = pipeline.process_product(with_photo, "run-1")
    nothing = pipeline.process_product(without, "run-1")

    assert web.search_calls == 0
    assert stored.status is ProductStatus.STORED
    assert [d.source_kind for d in details(sqlite_catalog, with_photo)] == ["distributor"]
    assert (nothing.status, nothing.reason_code) == (ProductStatus.NO_IMAGES, "no_distributor_photo_search_disabled")
    [attempt] = sqlite_catalog.attempts(without)
    assert (attempt.reason_code, attempt.search_calls, attempt.downloads) == (
        "no_distributor_photo_search_disabled",
        0,
        0,
    )


def test_never_mode_with_a_refused_distributor_photo_has_its_own_reason(
    sqlite_catalog: Catalog, web: ImageWeb, remover, image_root
):
    pid = sqlite_catalog.add_product("NV300")
    set_product(sqlite_catalog, pid, image_url=web.url("missing-distributor-photo.jpg"))
    web.add("NV300", 2)
    pipeline = make_pipeline(
        sqlite_catalog, web, remover, root=image_root, sources=CandidateSources(mode=SearchMode.NEVER)
    )

    report = pipeline.process_product(pid, "run-1")

    assert web.search_calls == 0
    assert (report.status, report.reason_code) == (ProductStatus.NO_IMAGES, "distributor_photo_refused_search_disabled")
    [refusal] = report.refusals
    assert (refusal.stage, refusal.reason) == ("download", "http_404")
    assert refusal.detail.startswith("distributor photo")


def test_fallback_mode_broken_distributor_url_falls_back_to_search(
    sqlite_catalog: Catalog, web: ImageWeb, remover, image_root
):
    broken = sqlite_catalog.add_product("FB400")
    set_product(sqlite_catalog, broken, image_url=web.url("gone-distributor-photo.jpg"))
    good = sqlite_catalog.add_product("FB401")
    set_product(sqlite_catalog, good, image_url=distributor_photos(web, "fb401.jpg", seed=7004))
    web.add("FB400", 2)
    web.add("FB401", 2)
    sources = CandidateSources(rewrites=SM_TO_LG, mode=SearchMode.FALLBACK)
    pipeline = make_pipeline(sqlite_catalog, web, remover, root=image_root, sources=sources)

    searched = pipeline.process_product(broken, "run-1")
    assert searched.status is ProductStatus.STORED, searched.reason
    assert web.queries == ["Acme FB400 MONITOR"]
    assert searched.refusal_counts() == {"http_404": 1}  # the refused distributor photo, recorded like any other
    assert {d.source_kind for d in details(sqlite_catalog, broken)} == {"search"}
    assert searched.search_plan == "distributor_photo_refused"

    # A usable distributor photo: no search paid for at all.
    kept = pipeline.process_product(good, "run-1")
    assert kept.status is ProductStatus.STORED, kept.reason
    assert web.search_calls == 1
    assert [d.source_kind for d in details(sqlite_catalog, good)] == ["distributor"]
    assert (kept.search_plan, kept.search_calls) == ("distributor_photo_usable", 0)


def test_fallback_mode_unreachable_distributor_and_no_search_results_is_deferred_not_error(
    sqlite_catalog: Catalog, web: ImageWeb, remover, image_root
):
    pid = sqlite_catalog.add_product("FB402")
    # Port 1 on this machine: nothing listens, the connection is refused (a transport fault, not the product's).
    set_product(sqlite_catalog, pid, image_url="http://127.0.0.1:1/distributor/lg/fb402.jpg")
    sources = CandidateSources(rewrites=SM_TO_LG, mode=SearchMode.FALLBACK)
    pipeline = make_pipeline(sqlite_catalog, web, remover, root=image_root, sources=sources)

    report = pipeline.process_product(pid, "run-1")

    assert web.queries == ["Acme FB402 MONITOR"]  # the search was paid for, and found nothing
    assert report.status is ProductStatus.DEFERRED, report.reason
    assert report.reason_code == "candidates_unreachable"
    assert sqlite_catalog.listing(pid) is None  # no ERROR for a fault that was not the product's
    assert report.refusal_counts() == {"connect_error": 1}


def test_ranking_puts_the_brand_domain_large_model_named_candidate_first(
    sqlite_catalog: Catalog, web: ImageWeb, remover, image_root, httpserver: HTTPServer
):
    pid = sqlite_catalog.add_product("T24i-30")
    set_product(
        sqlite_catalog,
        pid,
        specs={"brand": "Lenovo", "model": "T24i-30"},
        description="Monitor Lenovo ThinkVision T24i-30 24 pulgadas",
    )
    names = web.add("ranking-photos", 3)
    generic, other_model, brand = (web.url(n) for n in names)
    local_page = httpserver.url_for("/tienda/monitor-24")
    results = [
        {**brave_result(generic, local_page, width=640, height=640), "title": "Monitor 24 pulgadas oferta"},
        {**brave_result(other_model, local_page, width=800, height=800), "title": "Lenovo ThinkVision T27i-30"},
        {
            **brave_result(brand, "https://www.lenovo.com/ar/es/p/monitores/t24i-30", width=1600, height=1600),
            "title": "ThinkVision T24i-30 | Lenovo AR",
        },
    ]
    httpserver.expect_request("/res/v1/images/search").respond_with_json(brave_payload(results))
    settings = replace(
        Settings.from_env(), search_endpoint=httpserver.url_for("/res/v1/images/search"), brave_api_key=API_KEY
    )
    pipeline = make_pipeline(
        sqlite_catalog, web, remover, root=image_root, search=build_search_service(settings), max_images=3
    )

    report = pipeline.process_product(pid, "run-1")

    assert [c["image_url"] for c in report.candidates] == [brand, generic, other_model]
    best = report.candidates[0]["score"]
    assert {name: part["points"] for name, part in best["parts"].items()} == {
        "source_kind": 0,
        "size": 20,
        "domain": 30,
        "rank": -2,
        "words": 25,
    }
    assert best["total"] == 73
    assert report.candidates[2]["score"]["parts"]["words"]["points"] < 0  # names another model
    [attempt] = sqlite_catalog.attempts(pid)
    assert attempt.candidates == [dict(c) for c in report.candidates]
    assert report.status is ProductStatus.STORED, report.reason
    first = details(sqlite_catalog, pid)[0]
    assert sqlite_catalog.images(pid)[0].source_url == brand
    assert (first.source_kind, first.provider, first.provider_rank, first.rank_score) == ("search", "brave", 2, 73)
    assert first.rank_parts is not None
    assert first.rank_parts["domain"]["points"] == 30


def test_fallback_provider_answers_when_the_primary_is_out_of_quota(
    sqlite_catalog: Catalog, web: ImageWeb, remover, image_root, httpserver: HTTPServer
):
    first, second = sqlite_catalog.add_product("QF500"), sqlite_catalog.add_product("QF501")
    names = web.add("fallback-photos", 2)
    web.search_status = 402
    web.search_body = {"type": "ErrorResponse", "error": {"code": "QUOTA_LIMITED", "detail": "quota exceeded"}}
    page = httpserver.url_for("/p/1")
    httpserver.expect_request("/search.json").respond_with_json(
        serpapi_payload([serpapi_result(i + 1, web.url(n), page) for i, n in enumerate(names)], next_page=False)
    )
    settings = replace(
        Settings.from_env(),
        search_endpoint=web.search_endpoint,
        brave_api_key=API_KEY,
        search_fallback="serpapi",
        search_fallback_endpoint=httpserver.url_for("/search.json"),
        serpapi_api_key="serpapi-test-key",
        image_search_count=2,  # two results fill the count: one call per search
    )
    search = build_search_service(settings, cache=SearchCache(sqlite_catalog.session_factory))
    assert search.fallback is not None
    search.retry = search.fallback.retry = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05)
    pipeline = make_pipeline(sqlite_catalog, web, remover, root=image_root, search=search)

    one = pipeline.process_product(first, "run-1")
    two = pipeline.process_product(second, "run-1")

    assert one.status is ProductStatus.STORED
    assert two.status is ProductStatus.STORED
    assert (one.provider, dict(one.search_calls_by_provider or {}), one.search_calls) == (
        "serpapi",
        {"brave": 1, "serpapi": 1},
        2,
    )
    # The quota will not come back within the run: the second product goes straight to the fallback.
    assert web.search_calls == 1
    assert (two.provider, dict(two.search_calls_by_provider or {})) == ("serpapi", {"serpapi": 1})
    [attempt] = sqlite_catalog.attempts(first)
    assert (attempt.provider, attempt.search_calls_by_provider, attempt.search_calls) == (
        "serpapi",
        {"brave": 1, "serpapi": 1},
        2,
    )
    assert {d.provider for d in details(sqlite_catalog, first)} == {"serpapi"}


def test_rate_limit_holds_with_six_products_in_flight(
    sqlite_catalog: Catalog, web: ImageWeb, remover, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("ML_IMAGES_SEARCH_RATE_LIMIT", "2")
    ids = []
    for i in range(20):
        model = f"RL{600 + i}"
        ids.append(sqlite_catalog.add_product(model))
        web.add(model, 1, seed=800 + i)
    pipeline = make_pipeline(
        sqlite_catalog,
        web,
        remover,
        root=tmp_path / "images",
        max_images=1,
        concurrency=BatchConcurrency(products_in_flight=6, cpu_workers=2),
    )

    batch = pipeline.process_batch(ids, "run-1")

    assert batch.abort_error is None
    assert batch.counts()["stored"] == 20
    times = sorted(web.search_times)
    assert len(times) == 20
    busiest = max(bisect.bisect_left(times, t + 1.0) - i for i, t in enumerate(times))
    assert busiest <= 2, f"{busiest} search requests within one second"
