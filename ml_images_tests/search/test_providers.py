"""Each provider against a real HTTP server on 127.0.0.1 speaking that provider's JSON."""

from __future__ import annotations

import json
import logging
import socket
import time
from typing import Any

import pytest
import requests
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from ml_images.errors import SearchQuotaError, SearchUnavailableError
from ml_images.search.bounded_http import HttpLimits
from ml_images.search.providers import (
    BraveImageSearch,
    GoogleCseImageSearch,
    ImageSearchProvider,
    SearxngImageSearch,
    SerpApiImageSearch,
    redact_url,
)
from ml_images.search.providers.fields import resolution
from ml_images.search.retry import RetryableSearchError

from .payloads import (
    BRAVE_INVALID_TOKEN,
    BRAVE_QUOTA_EXHAUSTED,
    BRAVE_RATE_LIMITED,
    GOOGLE_DAILY_LIMIT_403,
    GOOGLE_DAILY_QUOTA_429,
    SERPAPI_NO_RESULTS,
    brave_payload,
    brave_result,
    google_item,
    google_payload,
    searxng_payload,
    searxng_result,
    serpapi_payload,
    serpapi_result,
    wait_until_served,
)

BRAVE_KEY = "BSA-secret-brave-token-0001"
SERPAPI_KEY = "serp-secret-key-0002"
GOOGLE_KEY = "AIza-secret-google-key-0003"
GOOGLE_CX = "0123456789abcdef0"


@pytest.fixture
def session() -> requests.Session:
    return requests.Session()


def brave(httpserver: HTTPServer, session: requests.Session) -> BraveImageSearch:
    return BraveImageSearch(BRAVE_KEY, session, endpoint=httpserver.url_for("/res/v1/images/search"))


def serpapi(httpserver: HTTPServer, session: requests.Session) -> SerpApiImageSearch:
    return SerpApiImageSearch(SERPAPI_KEY, session, endpoint=httpserver.url_for("/search.json"))


def google(httpserver: HTTPServer, session: requests.Session) -> GoogleCseImageSearch:
    return GoogleCseImageSearch(GOOGLE_KEY, GOOGLE_CX, session, endpoint=httpserver.url_for("/customsearch/v1"))


def searxng(httpserver: HTTPServer, session: requests.Session) -> SearxngImageSearch:
    return SearxngImageSearch(httpserver.url_for("/"), session)


def json_response(payload: Any) -> Response:
    return Response(json.dumps(payload), content_type="application/json")


def only_request(httpserver: HTTPServer) -> Request:
    assert len(httpserver.log) == 1
    return httpserver.log[0][0]


def test_every_provider_satisfies_the_protocol(httpserver: HTTPServer, session: requests.Session) -> None:
    for build in (brave, serpapi, google, searxng):
        provider = build(httpserver, session)
        assert isinstance(provider, ImageSearchProvider)
        assert provider.name in ("brave", "serpapi", "google", "searxng")


# --- Brave ------------------------------------------------------------------------------------------------------


def test_brave_json_shape(httpserver: HTTPServer, session: requests.Session) -> None:
    httpserver.expect_request("/res/v1/images/search").respond_with_json(
        brave_payload(
            [
                brave_result("https://images.fravega.com/f1000/a15-azul.jpg", "https://www.fravega.com/p/a15-azul/"),
                brave_result(
                    "https://cdn.example.com.ar/a15.png", "https://example.com.ar/a15", width=None, height=None
                ),
                {"type": "image_result", "title": "no properties", "url": "https://x.example/"},
            ]
        )
    )
    page = brave(httpserver, session).fetch_page("Samsung Galaxy A15 128GB", 0, 20)

    request = only_request(httpserver)
    assert request.headers["X-Subscription-Token"] == BRAVE_KEY
    assert request.args["q"] == "Samsung Galaxy A15 128GB"
    assert request.args["country"] == "AR"
    assert request.args["search_lang"] == "es"
    assert request.args["safesearch"] == "strict"
    assert request.args["count"] == "50"  # one call costs the same for 20 or 50 results
    assert BRAVE_KEY not in request.query_string.decode()

    first, second = page.candidates
    assert first.image_url == "https://images.fravega.com/f1000/a15-azul.jpg"
    assert (first.width, first.height) == (1200, 1200)
    assert first.page_url == "https://www.fravega.com/p/a15-azul/"
    assert first.source == "www.fravega.com"
    assert first.title == "Celular Samsung Galaxy A15 128GB Azul"
    assert (second.width, second.height) == (None, None)  # Brave reports null sizes for some images
    assert [d.reason for d in page.dropped] == ["bad_url"]
    assert page.has_more is False


def test_brave_has_a_single_page(httpserver: HTTPServer, session: requests.Session) -> None:
    page = brave(httpserver, session).fetch_page("anything", 1, 20)
    assert page.candidates == []
    assert page.has_more is False
    assert httpserver.log == []  # no paid call for a page that cannot exist


def test_brave_rate_limit_is_retryable_and_honours_retry_after(
    httpserver: HTTPServer, session: requests.Session
) -> None:
    httpserver.expect_request("/res/v1/images/search").respond_with_json(
        BRAVE_RATE_LIMITED, status=429, headers={"Retry-After": "2"}
    )
    with pytest.raises(RetryableSearchError) as info:
        brave(httpserver, session).fetch_page("q", 0, 20)
    assert info.value.retry_after == 2.0
    assert "RATE_LIMITED" in str(info.value)


def test_brave_monthly_quota_is_a_quota_error(httpserver: HTTPServer, session: requests.Session) -> None:
    httpserver.expect_request("/res/v1/images/search").respond_with_json(BRAVE_QUOTA_EXHAUSTED, status=429)
    with pytest.raises(SearchQuotaError, match="QUOTA_LIMITED"):
        brave(httpserver, session).fetch_page("q", 0, 20)


@pytest.mark.parametrize("status", [401, 403])
def test_brave_auth_errors_are_quota_errors(httpserver: HTTPServer, session: requests.Session, status: int) -> None:
    httpserver.expect_request("/res/v1/images/search").respond_with_json(BRAVE_INVALID_TOKEN, status=status)
    with pytest.raises(SearchQuotaError) as info:
        brave(httpserver, session).fetch_page("q", 0, 20)
    assert BRAVE_KEY not in str(info.value)


# --- SerpApi ----------------------------------------------------------------------------------------------------


def test_serpapi_json_shape(httpserver: HTTPServer, session: requests.Session) -> None:
    httpserver.expect_request("/search.json").respond_with_json(
        serpapi_payload(
            [
                serpapi_result(1, "https://www.fravega.com/img/cafetera.jpg", "https://www.fravega.com/p/cafetera"),
                serpapi_result(2, "https://static.garbarino.com/c30.webp", "https://www.garbarino.com/c30", width=800),
            ]
        )
    )
    page = serpapi(httpserver, session).fetch_page("Cafetera Nespresso Essenza Mini C30", 0, 20)

    request = only_request(httpserver)
    assert request.args["engine"] == "google_images"
    assert request.args["q"] == "Cafetera Nespresso Essenza Mini C30"
    assert (request.args["gl"], request.args["hl"], request.args["ijn"]) == ("ar", "es", "0")
    assert request.args["api_key"] == SERPAPI_KEY  # SerpApi wants the key as a query parameter
    assert [c.image_url for c in page.candidates] == [
        "https://www.fravega.com/img/cafetera.jpg",
        "https://static.garbarino.com/c30.webp",
    ]
    assert (page.candidates[1].width, page.candidates[1].height) == (800, 1000)
    assert page.candidates[0].page_url == "https://www.fravega.com/p/cafetera"
    assert page.candidates[0].source == "www.fravega.com"  # the domain, not SerpApi's display name
    assert page.has_more is True


def test_serpapi_pagination_uses_ijn(httpserver: HTTPServer, session: requests.Session) -> None:
    seen: list[str] = []

    def handler(request: Request) -> Response:
        seen.append(request.args["ijn"])
        return json_response(serpapi_payload([], ijn=2, next_page=False))

    httpserver.expect_request("/search.json").respond_with_handler(handler)
    page = serpapi(httpserver, session).fetch_page("q", 2, 20)
    assert seen == ["2"]
    assert page.has_more is False


def test_serpapi_empty_result_is_not_an_error(httpserver: HTTPServer, session: requests.Session) -> None:
    httpserver.expect_request("/search.json").respond_with_json(SERPAPI_NO_RESULTS)
    page = serpapi(httpserver, session).fetch_page("zzqx 99 no existe", 0, 20)
    assert page.candidates == []
    assert page.has_more is False


def test_serpapi_out_of_searches_is_a_quota_error(httpserver: HTTPServer, session: requests.Session) -> None:
    httpserver.expect_request("/search.json").respond_with_json(
        {"error": "Your account has run out of searches."}, status=429
    )
    with pytest.raises(SearchQuotaError) as info:
        serpapi(httpserver, session).fetch_page("q", 0, 20)
    assert SERPAPI_KEY not in str(info.value)


def test_serpapi_hourly_throughput_limit_is_retryable(httpserver: HTTPServer, session: requests.Session) -> None:
    httpserver.expect_request("/search.json").respond_with_json(
        {"error": "Your searches for the past hour have exceeded the hourly throughput limit."}, status=429
    )
    with pytest.raises(RetryableSearchError):
        serpapi(httpserver, session).fetch_page("q", 0, 20)


def test_serpapi_invalid_key(httpserver: HTTPServer, session: requests.Session) -> None:
    httpserver.expect_request("/search.json").respond_with_json(
        {"error": f"Invalid API key. Your API key should be here: {SERPAPI_KEY}"}, status=401
    )
    with pytest.raises(SearchQuotaError) as info:
        serpapi(httpserver, session).fetch_page("q", 0, 20)
    assert SERPAPI_KEY not in str(info.value)  # scrubbed even when the provider echoes it
    assert "***" in str(info.value)


# --- Google CSE -------------------------------------------------------------------------------------------------


def test_google_json_shape_and_next_page_start(httpserver: HTTPServer, session: requests.Session) -> None:
    starts: list[tuple[str, str]] = []
    pages = {
        "1": google_payload(
            [
                google_item("https://www.hp.com/ar/15-fd0011la.png", "https://www.hp.com/ar-es/shop/15-fd0011la"),
                google_item(
                    "https://tienda.example.com.ar/spin.gif", "https://tienda.example.com.ar/", mime="image/gif"
                ),
            ],
            start=1,
            next_start=11,
        ),
        "11": google_payload(
            [google_item("https://tienda.example.com.ar/hp15.jpg", "https://tienda.example.com.ar/hp15")],
            start=11,
            next_start=None,
        ),
    }

    def handler(request: Request) -> Response:
        starts.append((request.args["start"], request.args["num"]))
        assert request.args["key"] == GOOGLE_KEY
        assert request.args["cx"] == GOOGLE_CX
        assert request.args["searchType"] == "image"
        return json_response(pages[request.args["start"]])

    httpserver.expect_request("/customsearch/v1").respond_with_handler(handler)
    provider = google(httpserver, session)

    first = provider.fetch_page("Notebook HP 15-fd0011la", 0, 20)
    assert [c.image_url for c in first.candidates] == ["https://www.hp.com/ar/15-fd0011la.png"]
    assert first.candidates[0].page_url == "https://www.hp.com/ar-es/shop/15-fd0011la"
    assert (first.candidates[0].width, first.candidates[0].height) == (1200, 1200)
    assert [(d.reason, d.url) for d in first.dropped] == [
        ("unsupported_format", "https://tienda.example.com.ar/spin.gif")
    ]
    assert first.has_more is True

    second = provider.fetch_page("Notebook HP 15-fd0011la", 1, 20)
    assert [c.image_url for c in second.candidates] == ["https://tienda.example.com.ar/hp15.jpg"]
    assert second.has_more is False
    assert starts == [("1", "10"), ("11", "10")]  # num capped at 10; page 2 starts at nextPage.startIndex


def test_google_never_asks_past_result_100(httpserver: HTTPServer, session: requests.Session) -> None:
    asked: list[tuple[int, int]] = []

    def handler(request: Request) -> Response:
        start, num = int(request.args["start"]), int(request.args["num"])
        asked.append((start, num))
        payload = google_payload(
            [google_item(f"https://img.example.com/{start}.jpg", "https://img.example.com/")],
            start=start,
            next_start=95,
        )
        return json_response(payload)

    httpserver.expect_request("/customsearch/v1").respond_with_handler(handler)
    provider = google(httpserver, session)
    provider.fetch_page("q", 0, 10)
    provider.fetch_page("q", 1, 10)
    assert asked == [(1, 10), (95, 5)]  # start + num <= 100
    assert provider.fetch_page("q", 10, 10).candidates == []  # start 101: no call at all
    assert len(asked) == 2


def test_google_daily_quota_429_is_a_quota_error(httpserver: HTTPServer, session: requests.Session) -> None:
    httpserver.expect_request("/customsearch/v1").respond_with_json(GOOGLE_DAILY_QUOTA_429, status=429)
    with pytest.raises(SearchQuotaError, match="rateLimitExceeded") as info:
        google(httpserver, session).fetch_page("q", 0, 10)
    assert GOOGLE_KEY not in str(info.value)


def test_google_daily_limit_403_is_a_quota_error(httpserver: HTTPServer, session: requests.Session) -> None:
    httpserver.expect_request("/customsearch/v1").respond_with_json(GOOGLE_DAILY_LIMIT_403, status=403)
    with pytest.raises(SearchQuotaError, match="dailyLimitExceeded"):
        google(httpserver, session).fetch_page("q", 0, 10)


def test_google_bad_request_is_not_retried(httpserver: HTTPServer, session: requests.Session) -> None:
    httpserver.expect_request("/customsearch/v1").respond_with_json(
        {"error": {"code": 400, "message": "Request contains an invalid argument.", "status": "INVALID_ARGUMENT"}},
        status=400,
    )
    with pytest.raises(SearchUnavailableError) as info:
        google(httpserver, session).fetch_page("q", 0, 10)
    assert not isinstance(info.value, RetryableSearchError)


def test_google_empty_result_has_no_items_key(httpserver: HTTPServer, session: requests.Session) -> None:
    httpserver.expect_request("/customsearch/v1").respond_with_json(google_payload([], next_start=None))
    page = google(httpserver, session).fetch_page("q", 0, 10)
    assert page.candidates == []
    assert page.has_more is False


# --- SearXNG ----------------------------------------------------------------------------------------------------


def test_searxng_json_shape(httpserver: HTTPServer, session: requests.Session) -> None:
    httpserver.expect_request("/search").respond_with_json(
        searxng_payload(
            [
                searxng_result("https://www.example.com.ar/img/rt38.jpg", "https://www.example.com.ar/rt38"),
                searxng_result("https://img.example.net/rt38.png", "https://example.net/p", resolution="800×600"),
                searxng_result("https://img.example.net/x.jpg", "https://example.net/x", resolution="unknown"),
                searxng_result("https://img.example.net/anim", "https://example.net/a", img_format="GIF 480x270"),
                {"url": "https://example.net/article", "title": "not an image result", "category": "general"},
            ]
        )
    )
    page = searxng(httpserver, session).fetch_page("Heladera Samsung RT38", 1, 20)

    request = only_request(httpserver)
    assert request.args["format"] == "json"
    assert request.args["categories"] == "images"
    assert request.args["pageno"] == "2"  # 1-based on SearXNG
    assert request.args["q"] == "Heladera Samsung RT38"
    sizes = [(c.width, c.height) for c in page.candidates]
    assert sizes == [(1200, 1200), (800, 600), (None, None)]
    assert page.candidates[0].page_url == "https://www.example.com.ar/rt38"
    assert sorted(d.reason for d in page.dropped) == ["bad_url", "unsupported_format"]
    assert page.has_more is True


def test_searxng_json_format_disabled_is_403(httpserver: HTTPServer, session: requests.Session) -> None:
    httpserver.expect_request("/search").respond_with_data("Forbidden", status=403, content_type="text/html")
    with pytest.raises(SearchQuotaError):
        searxng(httpserver, session).fetch_page("q", 0, 20)


def test_searxng_empty(httpserver: HTTPServer, session: requests.Session) -> None:
    httpserver.expect_request("/search").respond_with_json(searxng_payload([]))
    page = searxng(httpserver, session).fetch_page("q", 0, 20)
    assert (page.candidates, page.has_more) == ([], False)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1920 x 1080", (1920, 1080)), ("1920×1080", (1920, 1080)), ("640X480 px", (640, 480)), ("", (None, None))],
)
def test_searxng_resolution_is_free_text(text: str, expected: tuple[int | None, int | None]) -> None:
    assert resolution(text) == expected


# --- transport failures, for every provider ---------------------------------------------------------------------


def all_providers(httpserver: HTTPServer, session: requests.Session) -> list[Any]:
    return [
        brave(httpserver, session),
        serpapi(httpserver, session),
        google(httpserver, session),
        searxng(httpserver, session),
    ]


def test_5xx_is_retryable(httpserver: HTTPServer, session: requests.Session) -> None:
    for path in ("/res/v1/images/search", "/search.json", "/customsearch/v1", "/search"):
        httpserver.expect_request(path).respond_with_data("upstream error", status=503)
    for provider in all_providers(httpserver, session):
        with pytest.raises(RetryableSearchError, match="503"):
            provider.fetch_page("q", 0, 10)


def test_non_json_200_is_unavailable(httpserver: HTTPServer, session: requests.Session) -> None:
    httpserver.expect_request("/search").respond_with_data("<html>captive portal</html>", content_type="text/html")
    with pytest.raises(SearchUnavailableError, match="not JSON"):
        searxng(httpserver, session).fetch_page("q", 0, 10)


def test_redirects_are_not_followed(httpserver: HTTPServer, session: requests.Session) -> None:
    # Following would hand the X-Subscription-Token header to whatever host the Location names.
    httpserver.expect_request("/res/v1/images/search").respond_with_data(
        "", status=302, headers={"Location": httpserver.url_for("/elsewhere")}
    )
    with pytest.raises(SearchUnavailableError, match="302"):
        brave(httpserver, session).fetch_page("q", 0, 10)
    assert [r.path for r, _ in httpserver.log] == ["/res/v1/images/search"]


def test_connection_refused_is_retryable_and_leaks_no_key(
    session: requests.Session, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    provider = SerpApiImageSearch(SERPAPI_KEY, session, endpoint=f"http://127.0.0.1:{port}/search.json")
    caplog.set_level(logging.DEBUG)
    with pytest.raises(RetryableSearchError) as info:
        provider.fetch_page("q", 0, 10)
    assert SERPAPI_KEY not in str(info.value)
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__  # requests' message (full URL with api_key) is not chained
    assert SERPAPI_KEY not in caplog.text
    assert SERPAPI_KEY not in repr(provider)


def test_read_timeout_is_retryable(httpserver: HTTPServer, session: requests.Session) -> None:
    def slow(request: Request) -> Response:
        time.sleep(0.6)
        return Response("{}", content_type="application/json")

    httpserver.expect_request("/search").respond_with_handler(slow)
    provider = SearxngImageSearch(httpserver.url_for("/"), session, limits=HttpLimits(timeout=(1.0, 0.2)))
    with pytest.raises(RetryableSearchError, match="ReadTimeout"):
        provider.fetch_page("q", 0, 10)
    wait_until_served(httpserver, 1)


def test_redact_url_drops_the_query_string() -> None:
    assert redact_url("https://serpapi.com/search.json?api_key=secret&q=x") == "https://serpapi.com/search.json"
    assert redact_url("http://user:pw@127.0.0.1:8080/p?key=k#f") == "http://127.0.0.1:8080/p"
