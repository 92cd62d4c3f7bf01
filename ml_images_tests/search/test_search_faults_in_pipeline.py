"""Search faults seen from a product: a real pipeline (catalog on SQLite and PostgreSQL, rembg, a local store) whose
search provider is a real HTTP server on 127.0.0.1 that fails, answers a malformed 200, or mixes malformed results
with good ones.

* A failed search records the calls it made (retries included) on the product's attempt and in its report.
* A malformed 200 leaves the product pending (``search_unavailable``), caches nothing and marks no listing ERROR:
  once the provider is healthy again the product gets its images.
* One malformed result never costs the product the good ones.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from ml_images.catalog.models import ListingStatus, SearchCacheEntry
from ml_images.outcomes import ProductStatus
from ml_images.pipeline.product_pipeline import ProductImagePipeline
from ml_images.processing.background import BackgroundRemover
from ml_images.search.cache import SearchCache
from ml_images.search.factory import build_http_session
from ml_images.search.providers import BraveImageSearch
from ml_images.search.retry import RetryPolicy
from ml_images.search.service import ImageSearchService
from ml_images_tests.pipeline.builders import make_pipeline, pending_ids
from ml_images_tests.pipeline.fixtures import catalog, image_root, remover, web
from ml_images_tests.pipeline.support import Catalog, ImageWeb

__all__ = ["catalog", "image_root", "remover", "web"]  # fixtures

SEARCH_PATH = "/res/v1/images/search"


class Provider:
    """Brave's API on the test's HTTP server; ``answer`` decides what the next calls get."""

    def __init__(self, httpserver: HTTPServer, web: ImageWeb) -> None:
        self.web = web
        self.status = 200
        self.body: Any = None  # a payload to send as is (malformed on purpose), else good results
        self.calls = 0
        self.images = [web.url(name) for name in web.add("ZX9000", 2)]
        httpserver.expect_request(SEARCH_PATH).respond_with_handler(self._answer)
        self.endpoint = httpserver.url_for(SEARCH_PATH)

    def good_results(self) -> list[dict[str, Any]]:
        return [
            {"url": f"http://127.0.0.1/p/{i}", "title": f"photo {i}", "properties": {"url": url, "width": 640}}
            for i, url in enumerate(self.images)
        ]

    def _answer(self, _request: Request) -> Response:
        self.calls += 1
        body = self.body if self.body is not None else {"type": "images", "results": self.good_results()}
        text = body if isinstance(body, str) else json.dumps(body)
        return Response(text, status=self.status, content_type="application/json")


def build_pipeline(
    catalog: Catalog, provider: Provider, remover: BackgroundRemover, root: Path
) -> ProductImagePipeline:
    search = ImageSearchService(
        BraveImageSearch("brave-key", build_http_session(), provider.endpoint),
        cache=SearchCache(catalog.session_factory),
        retry=RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05),
    )
    return make_pipeline(catalog, None, remover, root=root, search=search)


def cache_rows(catalog: Catalog) -> int:
    with catalog.session_factory() as session:
        return int(session.scalar(sa.select(sa.func.count()).select_from(SearchCacheEntry)) or 0)


@pytest.mark.parametrize(
    ("status", "body", "code", "calls"),
    [
        (503, {"error": {"code": "UNAVAILABLE"}}, "search_unavailable", 3),
        (403, {"error": {"code": "SUBSCRIPTION_TOKEN_INVALID"}}, "search_quota", 1),
        (200, {"type": "images"}, "search_unavailable", 3),  # "results" missing: malformed, not "no results"
        (200, {"type": "images", "results": "none"}, "search_unavailable", 3),
        (200, "<html>maintenance</html>", "search_unavailable", 3),
    ],
    ids=["503", "403", "results-missing", "results-not-a-list", "not-json"],
)
def test_a_failed_search_counts_its_calls_and_leaves_the_product_pending(
    catalog: Catalog,
    web: ImageWeb,
    httpserver: HTTPServer,
    remover: BackgroundRemover,
    image_root: Path,
    status: int,
    body: Any,
    code: str,
    calls: int,
) -> None:
    pid = catalog.add_product("ZX9000")
    catalog.add_listing(pid, status=ListingStatus.PENDING.value)
    provider = Provider(httpserver, web)
    provider.status, provider.body = status, body
    pipeline = build_pipeline(catalog, provider, remover, image_root)

    batch = pipeline.process_batch([pid], "run-1")

    [report] = batch.reports
    assert (report.status, report.reason_code) == (ProductStatus.FAILED, code)
    assert report.search_calls == calls == provider.calls  # every call made, retries included
    assert batch.search_calls == calls
    [attempt] = catalog.attempts(pid)
    assert (attempt.outcome, attempt.reason_code, attempt.search_calls) == ("failed", code, calls)
    listing = catalog.listing(pid)
    assert listing is not None
    assert (listing.status, listing.sync_error) == (ListingStatus.PENDING, None)
    assert cache_rows(catalog) == 0  # nothing cached, least of all "no results"
    assert pending_ids(catalog) == [pid]

    # The provider recovers: the product is searched afresh and gets its images.
    provider.status, provider.body = 200, None
    retried = pipeline.process_batch([pid], "run-2")
    assert [r.status for r in retried.reports] == [ProductStatus.STORED], retried.reports[0].refusals
    assert len(catalog.images(pid)) == 2, retried.reports[0].refusals


def test_one_malformed_result_does_not_cost_the_product_its_images(
    catalog: Catalog, web: ImageWeb, httpserver: HTTPServer, remover: BackgroundRemover, image_root: Path
) -> None:
    pid = catalog.add_product("ZX9000")
    provider = Provider(httpserver, web)
    good = provider.good_results()
    text = json.dumps(
        {
            "type": "images",
            "results": [
                {"url": "http://127.0.0.1/p/x", "properties": {"url": web.url("missing.jpg"), "width": "@@INF@@"}},
                good[0],
                "a result that is a string",
                {"url": ["a", "list"], "title": {"an": "object"}, "properties": {"url": good[1]["properties"]["url"]}},
            ],
        }
    ).replace('"@@INF@@"', "1e400")
    provider.body = text
    pipeline = build_pipeline(catalog, provider, remover, image_root)

    report = pipeline.process_product(pid, "run-1")

    assert report.status is ProductStatus.STORED, report.reason
    assert len(catalog.images(pid)) == 2
    assert report.search_calls == 1
    assert "bad_url" in [r.reason for r in report.refusals]  # the string result, refused on its own
