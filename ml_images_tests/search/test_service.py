"""ImageSearchService end to end over real providers and a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from ml_images.catalog.db import create_catalog_engine, make_session_factory, upgrade_schema
from ml_images.errors import SearchQuotaError, SearchUnavailableError
from ml_images.search.cache import SearchCache
from ml_images.search.providers import BraveImageSearch, GoogleCseImageSearch, SearxngImageSearch
from ml_images.search.retry import RetryPolicy
from ml_images.search.service import ImageSearchService

from .payloads import (
    BRAVE_INVALID_TOKEN,
    BRAVE_RATE_LIMITED,
    GOOGLE_DAILY_QUOTA_429,
    brave_payload,
    brave_result,
    searxng_payload,
    searxng_result,
)


class Sleeps:
    """A RetryPolicy ``sleep`` that records instead of waiting: tests stay fast, delays stay checkable."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def retry(sleeps: Sleeps) -> RetryPolicy:
    return RetryPolicy(max_attempts=4, base_delay=0.5, max_delay=8.0, jitter=False, sleep=sleeps)


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(payload), status=status, headers=headers, content_type="application/json")


def serve_searxng_pages(httpserver: HTTPServer, pages: dict[int, list[dict[str, Any]]]) -> list[int]:
    """SearXNG answering ``pageno`` from ``pages`` (missing pages are empty); returns the pagenos asked."""
    asked: list[int] = []

    def handler(request: Request) -> Response:
        pageno = int(request.args["pageno"])
        asked.append(pageno)
        return json_response(searxng_payload(pages.get(pageno, [])))

    httpserver.expect_request("/search").respond_with_handler(handler)
    return asked


def searxng_service(httpserver: HTTPServer, session: requests.Session, **kwargs: Any) -> ImageSearchService:
    return ImageSearchService(SearxngImageSearch(httpserver.url_for("/"), session), **kwargs)


def img(n: int, host: str = "tienda.example.com.ar", **kwargs: Any) -> dict[str, Any]:
    return searxng_result(f"https://{host}/img/{n}.jpg", f"https://{host}/p/{n}", **kwargs)


def test_blocked_domains_including_subdomains(httpserver: HTTPServer, session: requests.Session) -> None:
    serve_searxng_pages(
        httpserver,
        {
            1: [
                searxng_result("https://i.pinimg.com/originals/ab/cd.jpg", "https://www.pinterest.com.mx/pin/1/"),
                searxng_result(
                    "https://http2.mlstatic.com/D_NQ_NP_123-MLA.webp", "https://articulo.mercadolibre.com.ar/MLA-1"
                ),
                searxng_result(
                    "https://www.shutterstock.com/image-photo/fridge-260nw.jpg", "https://www.shutterstock.com/"
                ),
                searxng_result("https://cdn.tienda.com.ar/heladera.jpg", "https://www.facebook.com/tienda/photos/1"),
                img(1),
            ]
        },
    )
    outcome = searxng_service(httpserver, session, max_pages=1).search("Heladera Samsung RT38")
    assert [c.image_url for c in outcome.candidates] == ["https://tienda.example.com.ar/img/1.jpg"]
    assert [d.reason for d in outcome.dropped] == ["blocked_domain"] * 4
    assert all(d.stage == "search" for d in outcome.dropped)
    assert "facebook.com" in outcome.dropped[3].detail  # the page host counts too


def test_custom_blocklist(httpserver: HTTPServer, session: requests.Session) -> None:
    serve_searxng_pages(httpserver, {1: [img(1, host="img.competidor.com.ar"), img(2)]})
    service = searxng_service(httpserver, session, blocked_domains=["competidor.com.ar"], max_pages=1)
    outcome = service.search("q")
    assert [c.image_url for c in outcome.candidates] == ["https://tienda.example.com.ar/img/2.jpg"]


def test_small_svg_gif_thumbnails_and_duplicates_are_dropped(httpserver: HTTPServer, session: requests.Session) -> None:
    serve_searxng_pages(
        httpserver,
        {
            1: [
                img(1, resolution="300 x 300"),  # reported too small
                img(2, resolution=""),  # size unknown: kept, processing will check
                searxng_result("https://tienda.example.com.ar/logo.svg", "https://tienda.example.com.ar/"),
                searxng_result("https://tienda.example.com.ar/spin.GIF", "https://tienda.example.com.ar/"),
                searxng_result("https://encrypted-tbn0.gstatic.com/images?q=tbn:ANd9Gc", "https://shop.example/"),
                img(3, resolution="1600 x 900"),
                searxng_result("https://TIENDA.example.com.ar/img/3.jpg#zoom", "https://tienda.example.com.ar/p/3"),
                searxng_result("data:image/jpeg;base64,/9j/4AAQ", "https://shop.example/"),
            ]
        },
    )
    outcome = searxng_service(httpserver, session, max_pages=1).search("q")
    assert [c.image_url for c in outcome.candidates] == [
        "https://tienda.example.com.ar/img/2.jpg",
        "https://tienda.example.com.ar/img/3.jpg",
    ]
    assert [c.rank for c in outcome.candidates] == [0, 1]
    assert [d.reason for d in outcome.dropped] == [
        "too_small",
        "unsupported_format",
        "unsupported_format",
        "thumbnail",
        "duplicate",
        "bad_url",
    ]


def test_stops_at_count_without_asking_another_page(httpserver: HTTPServer, session: requests.Session) -> None:
    asked = serve_searxng_pages(httpserver, {1: [img(i) for i in range(8)], 2: [img(i) for i in range(10, 18)]})
    outcome = searxng_service(httpserver, session, count=5).search("q")
    assert len(outcome.candidates) == 5
    assert [c.rank for c in outcome.candidates] == [0, 1, 2, 3, 4]
    assert outcome.calls == 1
    assert asked == [1]


def test_asks_the_next_page_only_when_the_first_is_not_enough(
    httpserver: HTTPServer, session: requests.Session
) -> None:
    first = [img(1), img(2), img(3, host="pinterest.com"), img(4, resolution="200 x 200")]
    second = [img(2), img(5), img(6), img(7)]  # img 2 repeats across pages
    asked = serve_searxng_pages(httpserver, {1: first, 2: second, 3: [img(9)]})
    outcome = searxng_service(httpserver, session, count=5).search("q")
    assert [c.image_url.rsplit("/", 1)[1] for c in outcome.candidates] == ["1.jpg", "2.jpg", "5.jpg", "6.jpg", "7.jpg"]
    assert outcome.calls == 2
    assert asked == [1, 2]
    assert "duplicate" in [d.reason for d in outcome.dropped]


def test_pages_are_bounded(httpserver: HTTPServer, session: requests.Session) -> None:
    asked = serve_searxng_pages(httpserver, {n: [img(n)] for n in range(1, 10)})
    outcome = searxng_service(httpserver, session, count=5, max_pages=3).search("q")
    assert asked == [1, 2, 3]
    assert outcome.calls == 3
    assert len(outcome.candidates) == 3


def test_empty_result_is_a_normal_outcome(httpserver: HTTPServer, session: requests.Session) -> None:
    asked = serve_searxng_pages(httpserver, {})
    outcome = searxng_service(httpserver, session).search("zzqx no existe")
    assert outcome.candidates == []
    assert outcome.dropped == []
    assert outcome.calls == 1
    assert outcome.cached is False
    assert asked == [1]


def test_empty_query_makes_no_call(httpserver: HTTPServer, session: requests.Session) -> None:
    outcome = searxng_service(httpserver, session).search("   ")
    assert (outcome.query, outcome.candidates, outcome.calls) == ("", [], 0)
    assert httpserver.log == []


def brave_service(httpserver: HTTPServer, session: requests.Session, **kwargs: Any) -> ImageSearchService:
    provider = BraveImageSearch("brave-key", session, endpoint=httpserver.url_for("/res/v1/images/search"))
    return ImageSearchService(provider, **kwargs)


OK_PAYLOAD = brave_payload(
    [brave_result(f"https://images.tienda.com.ar/{i}.jpg", f"https://www.tienda.com.ar/p/{i}") for i in range(6)]
)


def test_429_then_success(
    httpserver: HTTPServer, session: requests.Session, retry: RetryPolicy, sleeps: Sleeps
) -> None:
    path = "/res/v1/images/search"
    httpserver.expect_ordered_request(path).respond_with_json(
        BRAVE_RATE_LIMITED, status=429, headers={"Retry-After": "1"}
    )
    httpserver.expect_ordered_request(path).respond_with_json(BRAVE_RATE_LIMITED, status=429)
    httpserver.expect_ordered_request(path).respond_with_json(OK_PAYLOAD)
    outcome = brave_service(httpserver, session, retry=retry).search("Samsung Galaxy A15")
    assert len(outcome.candidates) == 5
    assert outcome.calls == 3  # every request sent counts, the rate-limited ones too
    assert sleeps.calls == [1.0, 1.0]  # Retry-After honoured, then exponential backoff (0.5 * 2)
    assert len(httpserver.log) == 3
    httpserver.check_assertions()


def test_5xx_exhausted_raises_unavailable(
    httpserver: HTTPServer, session: requests.Session, retry: RetryPolicy, sleeps: Sleeps
) -> None:
    httpserver.expect_request("/res/v1/images/search").respond_with_data("bad gateway", status=502)
    with pytest.raises(SearchUnavailableError, match="502"):
        brave_service(httpserver, session, retry=retry).search("q")
    assert len(httpserver.log) == 4  # bounded
    assert sleeps.calls == [0.5, 1.0, 2.0]


def test_quota_403_stops_at_once(
    httpserver: HTTPServer, session: requests.Session, retry: RetryPolicy, sleeps: Sleeps
) -> None:
    httpserver.expect_request("/res/v1/images/search").respond_with_json(BRAVE_INVALID_TOKEN, status=403)
    with pytest.raises(SearchQuotaError):
        brave_service(httpserver, session, retry=retry).search("q")
    assert len(httpserver.log) == 1
    assert sleeps.calls == []


def test_google_rate_limit_exceeded_is_not_retried(
    httpserver: HTTPServer, session: requests.Session, retry: RetryPolicy, sleeps: Sleeps
) -> None:
    httpserver.expect_request("/customsearch/v1").respond_with_json(GOOGLE_DAILY_QUOTA_429, status=429)
    provider = GoogleCseImageSearch("g-key", "cx", session, endpoint=httpserver.url_for("/customsearch/v1"))
    with pytest.raises(SearchQuotaError):
        ImageSearchService(provider, retry=retry).search("q")
    assert len(httpserver.log) == 1
    assert sleeps.calls == []


@pytest.fixture
def search_cache(sqlite_url: str) -> Iterator[SearchCache]:
    upgrade_schema(sqlite_url)
    engine = create_catalog_engine(sqlite_url)
    try:
        yield SearchCache(make_session_factory(engine))
    finally:
        engine.dispose()


def test_cache_hit_costs_no_call(httpserver: HTTPServer, session: requests.Session, search_cache: SearchCache) -> None:
    httpserver.expect_request("/res/v1/images/search").respond_with_json(OK_PAYLOAD)
    first = brave_service(httpserver, session, cache=search_cache).search("Samsung  Galaxy A15")
    assert (first.calls, first.cached) == (1, False)

    # A retried run: a new service (new process), same database.
    second = brave_service(httpserver, session, cache=search_cache).search("Samsung Galaxy A15")
    assert (second.calls, second.cached) == (0, True)
    assert second.candidates == first.candidates
    assert len(httpserver.log) == 1


def test_cached_empty_result_is_a_hit(
    httpserver: HTTPServer, session: requests.Session, search_cache: SearchCache
) -> None:
    httpserver.expect_request("/res/v1/images/search").respond_with_json(brave_payload([]))
    assert brave_service(httpserver, session, cache=search_cache).search("zzqx").calls == 1
    again = brave_service(httpserver, session, cache=search_cache).search("zzqx")
    assert (again.candidates, again.calls, again.cached) == ([], 0, True)
    assert len(httpserver.log) == 1


def test_cache_is_per_provider(httpserver: HTTPServer, session: requests.Session, search_cache: SearchCache) -> None:
    httpserver.expect_request("/res/v1/images/search").respond_with_json(OK_PAYLOAD)
    serve_searxng_pages(httpserver, {1: [img(i) for i in range(5)]})
    brave_service(httpserver, session, cache=search_cache).search("q")
    outcome = searxng_service(httpserver, session, cache=search_cache).search("q")
    assert outcome.cached is False
    assert outcome.calls == 1


def test_unreachable_cache_does_not_cost_results(httpserver: HTTPServer, session: requests.Session) -> None:
    engine = sa.create_engine("sqlite:////nonexistent-dir/for/sure/catalog.db")
    cache = SearchCache(make_session_factory(engine))
    httpserver.expect_request("/res/v1/images/search").respond_with_json(OK_PAYLOAD)
    try:
        outcome = brave_service(httpserver, session, cache=cache).search("q")
    finally:
        engine.dispose()
    assert len(outcome.candidates) == 5
    assert outcome.calls == 1
