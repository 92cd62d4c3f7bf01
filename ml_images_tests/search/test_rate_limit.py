"""The process-wide search rate limit, with real threads, the real clock and a real loopback HTTP server that
records when each request arrived (the provider's point of view, where a sliding-window limit is counted)."""

from __future__ import annotations

import itertools
import json
import math
import queue
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ml_images.errors import ConfigurationError, SearchUnavailableError
from ml_images.search.bounded_http import build_http_session
from ml_images.search.providers import BraveImageSearch, ProviderPage
from ml_images.search.rate_limit import (
    DEFAULT_RATES,
    RATE_LIMIT_ENV_VAR,
    RateLimitedProvider,
    TokenBucket,
    default_rate,
    endpoint_key,
    parse_rate_limit,
    rate_limited,
    shared_bucket,
)
from ml_images.search.retry import RetryableSearchError

from .payloads import BRAVE_RATE_LIMITED, brave_payload, brave_result

BRAVE_KEY = "BSA-secret-brave-token-rate-0001"
Reply = tuple[int, dict[str, str], str]
OK: Reply = (200, {}, json.dumps(brave_payload([brave_result("http://127.0.0.1:9/a.jpg", "http://127.0.0.1:9/p")])))


class RecordingServer:
    """A threaded HTTP server on 127.0.0.1 that notes the arrival time of every request (``time.monotonic``, the
    clock the limiter uses) and answers request number *n* with ``reply(n)``."""

    def __init__(self, reply: Callable[[int], Reply]) -> None:
        self.arrivals: list[float] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                arrived = time.monotonic()
                with server._lock:
                    index = len(server.arrivals)
                    server.arrivals.append(arrived)
                status, headers, body = reply(index)
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:  # quiet test output
                return

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        host, port = self._httpd.server_address[:2]
        self.endpoint = f"http://{host!s}:{port}/res/v1/images/search"

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def recording_server() -> Iterator[Callable[[Callable[[int], Reply]], RecordingServer]]:
    servers: list[RecordingServer] = []

    def start(reply: Callable[[int], Reply]) -> RecordingServer:
        server = RecordingServer(reply)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def brave_at(server: RecordingServer) -> BraveImageSearch:
    return BraveImageSearch(BRAVE_KEY, build_http_session(), server.endpoint)


def busiest_second(arrivals: list[float]) -> int:
    """The most requests any closed one-second window holds (a window's count peaks when it opens at an arrival)."""
    return max(sum(1 for later in arrivals if start <= later <= start + 1.0) for start in arrivals)


def run_threads(threads: int, work: Callable[[], None], *, timeout: float) -> None:
    workers = [threading.Thread(target=work, name=f"product-{i}") for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout)
    assert not any(worker.is_alive() for worker in workers), "a search thread is still running"


# --- the limit at the server ---------------------------------------------------------------------------------------


def test_limit_2_holds_at_the_server_for_20_requests_from_6_threads(recording_server) -> None:
    """~10 s: 20 requests at 2 per second cannot take less."""
    server = recording_server(lambda n: OK)
    provider = rate_limited(brave_at(server), 2.0)
    jobs: queue.Queue[int] = queue.Queue()
    for product in range(20):
        jobs.put(product)
    failures: list[BaseException] = []

    def work() -> None:
        while True:
            try:
                product = jobs.get_nowait()
            except queue.Empty:
                return
            try:
                page = provider.fetch_page(f"notebook {product}", 0, 20)
                assert isinstance(page, ProviderPage)
                assert len(page.candidates) == 1
            except BaseException as exc:
                failures.append(exc)

    started = time.monotonic()
    run_threads(6, work, timeout=30)
    elapsed = time.monotonic() - started

    assert failures == []
    assert len(server.arrivals) == 20
    arrivals = sorted(server.arrivals)
    assert busiest_second(arrivals) <= 2
    # One token: never two requests together, not even at the start (a two-token bucket sends the first two at
    # once). Departures are 0.625 s apart; the margin is for the way from the client's thread to the server's.
    assert min(b - a for a, b in itertools.pairwise(arrivals)) > 0.4
    # The limit is a pace, not a stall: 19 intervals of 0.625 s (25 % headroom) plus scheduling slack.
    assert elapsed < 19 * 0.625 + 3.0


def test_retry_after_pauses_every_thread(recording_server) -> None:
    limited = (429, {"Retry-After": "2"}, json.dumps(BRAVE_RATE_LIMITED))
    server = recording_server(lambda n: limited if n == 0 else OK)
    provider = rate_limited(brave_at(server), 2.0)
    outcomes: list[str] = []
    lock = threading.Lock()

    def work() -> None:
        try:
            provider.fetch_page("notebook", 0, 20)
            result = "ok"
        except RetryableSearchError as exc:
            result = f"retry after {exc.retry_after}"
            provider.fetch_page("notebook", 0, 20)  # the retry waits like everyone else
        with lock:
            outcomes.append(result)

    run_threads(6, work, timeout=20)

    assert sorted(outcomes) == ["ok"] * 5 + ["retry after 2.0"]
    assert len(server.arrivals) == 7
    refused, *after = sorted(server.arrivals)
    # Without the pause the next request would have left 0.625 s after the 429; five threads were waiting.
    assert min(after) >= refused + 2.0
    assert busiest_second(sorted(after)) <= 2


def test_a_retry_after_beyond_the_cap_pauses_only_up_to_the_cap(recording_server) -> None:
    midnight = (429, {"Retry-After": "3600"}, json.dumps(BRAVE_RATE_LIMITED))
    server = recording_server(lambda n: midnight if n == 0 else OK)
    brave = brave_at(server)
    provider = RateLimitedProvider(brave, TokenBucket(5.0, max_pause=1.0))

    with pytest.raises(RetryableSearchError):
        provider.fetch_page("notebook", 0, 20)
    assert 0.5 < provider.bucket.paused_for() <= 1.0
    provider.fetch_page("notebook", 0, 20)

    refused, second = server.arrivals
    assert 1.0 <= second - refused < 3.0


def test_waiting_is_bounded_when_asked(recording_server) -> None:
    server = recording_server(lambda n: OK)
    brave = brave_at(server)
    bucket = TokenBucket(1.0)  # not the shared one: its pause must not outlive this test
    provider = RateLimitedProvider(brave, bucket, max_wait=0.3)
    assert bucket.pause(30) == 30

    started = time.monotonic()
    with pytest.raises(SearchUnavailableError, match=r"no search slot within 0.3 s"):
        provider.fetch_page("notebook", 0, 20)
    assert time.monotonic() - started < 2.0
    assert server.arrivals == []
    assert BRAVE_KEY not in repr(provider)


# --- the bucket and the registry -----------------------------------------------------------------------------------


def test_one_token_then_one_per_interval() -> None:
    bucket = TokenBucket(4.0)
    assert bucket.interval == pytest.approx(0.3125)  # 1/4 s and the 25 % headroom
    started = time.monotonic()
    assert bucket.acquire()
    first = time.monotonic()
    assert bucket.acquire()
    second = time.monotonic()
    assert first - started < 0.1  # the first request does not wait
    assert second - first >= 0.3125
    assert not bucket.acquire(timeout=0.05)  # the next token is 0.3125 s away


@pytest.mark.parametrize("rate", [0, -1.0, math.nan, math.inf, True])
def test_a_bucket_needs_a_positive_finite_rate(rate: float) -> None:
    with pytest.raises(ValueError, match="rate"):
        TokenBucket(rate)


def test_one_bucket_per_provider_and_endpoint_for_the_whole_process() -> None:
    endpoint = "http://127.0.0.1:1/res/v1/images/search"
    found: list[TokenBucket] = []

    def get() -> None:
        found.append(shared_bucket("brave", endpoint, 1.0))

    run_threads(8, get, timeout=5)
    assert len({id(bucket) for bucket in found}) == 1
    bucket = found[0]
    assert shared_bucket("Brave", endpoint + "?key=secret", 1.0) is bucket  # the query string is not the service
    assert shared_bucket("serpapi", endpoint, 1.0) is not bucket
    assert shared_bucket("brave", "http://127.0.0.1:2/res/v1/images/search", 1.0) is not bucket
    assert shared_bucket("brave", endpoint, 3.0) is bucket
    assert bucket.rate == 3.0  # one limit per endpoint: the latest configuration wins


def test_rate_limited_keys_on_the_providers_own_endpoint(recording_server) -> None:
    server = recording_server(lambda n: OK)
    brave = brave_at(server)
    provider = rate_limited(brave, 2.0)
    assert provider.name == "brave"
    assert provider.bucket is shared_bucket("brave", server.endpoint, 2.0)
    assert endpoint_key(server.endpoint + "?q=1") == server.endpoint
    assert endpoint_key(None) == ""


# --- defaults and ML_IMAGES_SEARCH_RATE_LIMIT ----------------------------------------------------------------------


def test_every_provider_has_a_documented_default() -> None:
    assert set(DEFAULT_RATES) == {"brave", "serpapi", "google", "searxng"}
    assert default_rate("brave") == 1.0  # Brave's free plan: 1 request per second
    assert default_rate("serpapi") * 3600 == pytest.approx(50)  # 50 per hour on SerpApi's free plan
    assert default_rate("google") == 1.0
    assert default_rate("searxng") == 0.25
    with pytest.raises(ConfigurationError, match="bing"):
        default_rate("bing")


@pytest.mark.parametrize(
    ("raw", "provider", "rate"), [(None, "brave", 1.0), ("", "searxng", 0.25), (" 2.5 ", "brave", 2.5)]
)
def test_rate_limit_variable(raw: str | None, provider: str, rate: float) -> None:
    assert parse_rate_limit(raw, provider) == rate


@pytest.mark.parametrize("raw", ["0", "-1", "fast", "nan", "inf"])
def test_a_bad_rate_limit_names_the_variable(raw: str) -> None:
    with pytest.raises(ConfigurationError, match=RATE_LIMIT_ENV_VAR):
        parse_rate_limit(raw, "brave")
