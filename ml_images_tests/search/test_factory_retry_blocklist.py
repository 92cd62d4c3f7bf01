from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
import requests
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from ml_images.errors import ConfigurationError, SearchUnavailableError
from ml_images.search.blocklist import DEFAULT_BLOCKED_DOMAINS, DomainBlocklist
from ml_images.search.factory import build_http_session, build_search_service
from ml_images.search.providers import BraveImageSearch, GoogleCseImageSearch, SearxngImageSearch, SerpApiImageSearch
from ml_images.search.rate_limit import RateLimitedProvider
from ml_images.search.retry import RetryableSearchError, RetryPolicy, parse_retry_after
from ml_images.search.service import ImageSearchService
from ml_images.settings import Settings

from .payloads import brave_payload, brave_result, wait_until_served

# --- factory ----------------------------------------------------------------------------------------------------


def settings(**env: str) -> Settings:
    return Settings.from_env({"ML_IMAGES_SEARCH_RATE_LIMIT": "1000", **env})


def unwrapped(service: ImageSearchService) -> object:
    """The provider behind the rate limiter."""
    assert isinstance(service.provider, RateLimitedProvider)
    return service.provider.inner


@pytest.mark.parametrize(
    ("env", "cls"),
    [
        ({"BRAVE_SEARCH_API_KEY": "k"}, BraveImageSearch),
        ({"ML_IMAGES_SEARCH_PROVIDER": "serpapi", "SERPAPI_API_KEY": "k"}, SerpApiImageSearch),
        (
            {"ML_IMAGES_SEARCH_PROVIDER": "google", "GOOGLE_API_KEY": "k", "GOOGLE_SEARCH_ENGINE_ID": "cx"},
            GoogleCseImageSearch,
        ),
        ({"ML_IMAGES_SEARCH_PROVIDER": "searxng", "SEARXNG_URL": "http://127.0.0.1:8888"}, SearxngImageSearch),
    ],
)
def test_factory_picks_the_provider(env: dict[str, str], cls: type) -> None:
    service = build_search_service(settings(**env, IMAGE_SEARCH_COUNT="3"))
    # Behind the process's shared rate limiter for that provider and endpoint (issue 13).
    assert isinstance(service.provider, RateLimitedProvider)
    assert isinstance(service.provider.inner, cls)
    assert service.provider.bucket.rate == 1000  # ML_IMAGES_SEARCH_RATE_LIMIT of the test environment
    assert service.count == 3


def test_default_endpoints_are_the_real_apis() -> None:
    brave = unwrapped(build_search_service(settings(BRAVE_SEARCH_API_KEY="k")))
    assert isinstance(brave, BraveImageSearch)
    assert brave.endpoint == "https://api.search.brave.com/res/v1/images/search"
    searx = unwrapped(
        build_search_service(settings(ML_IMAGES_SEARCH_PROVIDER="searxng", SEARXNG_URL="http://127.0.0.1:8888/"))
    )
    assert isinstance(searx, SearxngImageSearch)
    assert searx.endpoint == "http://127.0.0.1:8888/search"


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({}, "BRAVE_SEARCH_API_KEY"),
        ({"ML_IMAGES_SEARCH_PROVIDER": "serpapi"}, "SERPAPI_API_KEY"),
        ({"ML_IMAGES_SEARCH_PROVIDER": "google", "GOOGLE_SEARCH_ENGINE_ID": "cx"}, "GOOGLE_API_KEY"),
        ({"ML_IMAGES_SEARCH_PROVIDER": "google", "GOOGLE_API_KEY": "k"}, "GOOGLE_SEARCH_ENGINE_ID"),
        ({"ML_IMAGES_SEARCH_PROVIDER": "searxng"}, "SEARXNG_URL"),
    ],
)
def test_missing_credentials_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigurationError, match=variable):
        build_search_service(settings(**env))


def test_endpoint_override_end_to_end(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/proxy/brave").respond_with_json(
        brave_payload([brave_result("https://img.tienda.com.ar/1.jpg", "https://tienda.com.ar/p/1")])
    )
    service = build_search_service(
        settings(BRAVE_SEARCH_API_KEY="brave-key", ML_IMAGES_SEARCH_ENDPOINT=httpserver.url_for("/proxy/brave"))
    )
    outcome = service.search("Samsung Galaxy A15")
    assert [c.image_url for c in outcome.candidates] == ["https://img.tienda.com.ar/1.jpg"]
    request = httpserver.log[0][0]
    assert request.headers["X-Subscription-Token"] == "brave-key"
    assert request.headers["User-Agent"].startswith("ml_images/")


def test_searxng_endpoint_alone_is_enough(httpserver: HTTPServer) -> None:
    endpoint = httpserver.url_for("/search")
    service = build_search_service(settings(ML_IMAGES_SEARCH_PROVIDER="searxng", ML_IMAGES_SEARCH_ENDPOINT=endpoint))
    provider = unwrapped(service)
    assert isinstance(provider, SearxngImageSearch)
    assert provider.endpoint == endpoint


def test_http_session_applies_default_timeouts(httpserver: HTTPServer) -> None:
    def slow(request: Request) -> Response:
        time.sleep(0.6)
        return Response("{}")

    httpserver.expect_request("/slow").respond_with_handler(slow)
    with build_http_session(timeout=(1.0, 0.2)) as session, pytest.raises(requests.ReadTimeout):
        session.get(httpserver.url_for("/slow"))
    wait_until_served(httpserver, 1)


# --- retry ------------------------------------------------------------------------------------------------------


def test_exponential_backoff_without_jitter() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=8.0, jitter=False)
    assert [policy.delay(n) for n in range(1, 8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_jitter_stays_within_half_and_full_backoff() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=8.0, jitter=True)
    delays = [policy.delay(3) for _ in range(200)]
    assert all(2.0 <= d <= 4.0 for d in delays)
    assert len(set(delays)) > 1


def test_retry_after_is_honoured_and_bounded() -> None:
    policy = RetryPolicy(max_delay=8.0)
    assert policy.delay(1, retry_after=3.0) == 3.0
    assert policy.delay(1, retry_after=3600.0) == 8.0


def test_parse_retry_after() -> None:
    now = datetime(2026, 11, 2, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("Mon, 02 Nov 2026 12:00:30 GMT", now=lambda: now) == 30.0
    assert parse_retry_after("Mon, 02 Nov 2026 11:00:00 GMT", now=lambda: now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_call_retries_then_gives_up() -> None:
    slept: list[float] = []
    attempts: list[int] = []

    def always_busy() -> str:
        attempts.append(1)
        raise RetryableSearchError("HTTP 503")

    policy = RetryPolicy(max_attempts=3, jitter=False, sleep=slept.append)
    with pytest.raises(SearchUnavailableError, match="503"):
        policy.call(always_busy)
    assert len(attempts) == 3
    assert slept == [0.5, 1.0]


def test_no_retry_starts_past_max_elapsed() -> None:
    """Slow failures (each call running into its deadline) are retried while time is left, then given up."""
    now = [0.0]
    slept: list[float] = []
    attempts: list[float] = []

    def slow_failure() -> str:
        attempts.append(now[0])
        now[0] += 20.0  # this call took 20 s before failing
        raise RetryableSearchError("deadline")

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    policy = RetryPolicy(max_attempts=4, jitter=False, max_elapsed=30.0, sleep=sleep, clock=lambda: now[0])
    with pytest.raises(RetryableSearchError):
        policy.call(slow_failure)
    assert attempts == [0.0, 20.5]  # a retry at 20.5 s; none at 41.5 s, past the 30 s budget
    assert slept == [0.5]


def test_call_does_not_retry_other_errors() -> None:
    attempts: list[int] = []

    def broken() -> str:
        attempts.append(1)
        raise SearchUnavailableError("HTTP 400")

    with pytest.raises(SearchUnavailableError):
        RetryPolicy(sleep=lambda s: None).call(broken)
    assert len(attempts) == 1


def test_call_returns_the_first_success() -> None:
    failures = [RetryableSearchError("429")]

    def flaky() -> str:
        if failures:
            raise failures.pop()
        return "ok"

    assert RetryPolicy(sleep=lambda s: None).call(flaky) == "ok"


# --- blocklist --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "facebook.com",
        "www.facebook.com",
        "scontent.xx.fbcdn.net",
        "i.pinimg.com",
        "ar.pinterest.com",
        "www.pinterest.com.mx",
        "articulo.mercadolibre.com.ar",
        "http2.mlstatic.com",
        "www.mercadolivre.com.br",
        "www.amazon.com",
        "m.media-amazon.com",
        "www.amazon.co.uk",
        "image.shutterstock.com",
        "t4.ftcdn.net",
        "stock.adobe.com",
        "x.com",
        "WWW.INSTAGRAM.COM.",
    ],
)
def test_default_blocklist_matches(host: str) -> None:
    assert DomainBlocklist(DEFAULT_BLOCKED_DOMAINS).match(host) is not None


@pytest.mark.parametrize(
    "host",
    ["www.fravega.com", "box.com", "notamazon.com", "amazon.evil.example.com", "adobe.com", "www.hp.com", "", None],
)
def test_default_blocklist_leaves_others(host: str | None) -> None:
    assert DomainBlocklist(DEFAULT_BLOCKED_DOMAINS).match(host) is None


def test_custom_entries_are_normalised() -> None:
    blocklist = DomainBlocklist(["*.Competidor.com.ar", " .otro.com ", "", "marca.*"])
    assert blocklist.match("img.competidor.com.ar") == "competidor.com.ar"
    assert blocklist.match("otro.com") == "otro.com"
    assert blocklist.match("shop.marca.com.ar") == "marca.*"
    assert blocklist.match("marca") is None
