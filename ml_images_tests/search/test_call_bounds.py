"""Every search call is bounded in total time and in size, against real servers on 127.0.0.1 that misbehave.

The servers are raw sockets, so they can do what no well-behaved framework does: drip a byte at a time (in the
headers or in the body) without ever letting a read timeout fire, keep a connection alive and drip on the second
request, or send a body far over the cap with or without a Content-Length.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
import requests

from ml_images.search.bounded_http import CallDeadline, HttpLimits
from ml_images.search.factory import build_http_session
from ml_images.search.providers import BraveImageSearch, SerpApiImageSearch
from ml_images.search.retry import RetryableSearchError, RetryPolicy
from ml_images.search.service import ImageSearchService, search_calls_of

from .payloads import brave_payload, brave_result

BODY = json.dumps(
    brave_payload(
        [brave_result(f"https://img.example.com.ar/{i}.jpg", f"https://example.com.ar/{i}") for i in range(3)]
    )
).encode()
DRIP_SECONDS = 0.2  # far below the read timeout: only a total deadline can stop the call


def _head(*lines: str, status: str = "200 OK") -> bytes:
    return ("\r\n".join([f"HTTP/1.1 {status}", "Content-Type: application/json", *lines]) + "\r\n\r\n").encode()


def _length(data: bytes) -> str:
    return f"Content-Length: {len(data)}"


@dataclass
class RawServer:
    """Serves each accepted connection with ``answer(conn, request_number)``; stops when the test ends."""

    answer: Callable[[socket.socket, int], None]
    sock: socket.socket = field(default_factory=lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    stop: threading.Event = field(default_factory=threading.Event)
    calls: int = 0

    def __post_init__(self) -> None:
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/res/v1/images/search"

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._connection, args=(conn,), daemon=True).start()

    def _connection(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            conn.settimeout(10)
            while not self.stop.is_set():
                request = b""
                while b"\r\n\r\n" not in request:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    request += chunk
                self.calls += 1
                self.answer(conn, self.calls)

    def drip(self, conn: socket.socket, data: bytes) -> None:
        """One byte every ``DRIP_SECONDS`` until done, the client hangs up or the test ends."""
        for i in range(len(data)):
            if self.stop.wait(DRIP_SECONDS):
                return
            conn.sendall(data[i : i + 1])


Answer = Callable[["RawServer", socket.socket, int], None]
StartServer = Callable[[Answer], "RawServer"]


@pytest.fixture
def raw_server() -> Iterator[StartServer]:
    servers: list[RawServer] = []

    def start(answer: Answer) -> RawServer:
        holder: list[RawServer] = []
        server = RawServer(lambda conn, n: answer(holder[0], conn, n))
        holder.append(server)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop.set()
        server.sock.close()


def brave(url: str, session: requests.Session | None = None, **bounds: float) -> BraveImageSearch:
    """Brave at ``url``, its calls bounded by the ``HttpLimits`` fields ``bounds`` names."""
    limits = HttpLimits(**bounds)  # type: ignore[arg-type]
    return BraveImageSearch("brave-key", session or build_http_session(), url, limits=limits)


def elapsed(fn: Callable[[], object]) -> tuple[float, BaseException | None]:
    start = time.monotonic()
    try:
        fn()
    except Exception as exc:
        return time.monotonic() - start, exc
    return time.monotonic() - start, None


# --- the total deadline -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("session_kind", ["built", "plain"])
def test_a_body_dripped_byte_by_byte_is_cut_at_the_deadline(raw_server: StartServer, session_kind: str) -> None:
    def answer(server: RawServer, conn: socket.socket, _n: int) -> None:
        conn.sendall(_head(_length(BODY)))
        server.drip(conn, BODY)  # would take len(BODY) * 0.2 s ≈ 2 minutes

    server = raw_server(answer)
    # A caller's own requests.Session works too: the provider mounts a bounded adapter for its endpoint.
    session = build_http_session() if session_kind == "built" else requests.Session()
    provider = brave(server.url, session, deadline_seconds=1.0)

    took, error = elapsed(lambda: provider.fetch_page("q", 0, 20))

    assert isinstance(error, RetryableSearchError)
    assert "within the 1 s deadline" in str(error)
    assert took < 5.0  # 1 s deadline, not the ~2 minutes the drip would take


def test_headers_dripped_byte_by_byte_are_cut_at_the_deadline(raw_server: StartServer) -> None:
    def answer(server: RawServer, conn: socket.socket, _n: int) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\n")
        server.drip(conn, b"X-Slow: " + b"a" * 2000 + b"\r\n\r\n")

    server = raw_server(answer)
    took, error = elapsed(lambda: brave(server.url, deadline_seconds=1.0).fetch_page("q", 0, 20))
    assert isinstance(error, RetryableSearchError)
    assert "deadline" in str(error)
    assert took < 5.0


def test_a_kept_alive_connection_is_bounded_too(raw_server: StartServer) -> None:
    def answer(server: RawServer, conn: socket.socket, number: int) -> None:
        conn.sendall(_head(_length(BODY)))
        if number == 1:
            conn.sendall(BODY)  # the first call is answered at once; the connection goes back to the pool
        else:
            server.drip(conn, BODY)

    server = raw_server(answer)
    provider = brave(server.url, deadline_seconds=1.0)
    assert len(provider.fetch_page("q", 0, 20).candidates) == 3
    took, error = elapsed(lambda: provider.fetch_page("q", 0, 20))
    assert server.calls == 2
    assert isinstance(error, RetryableSearchError)
    assert "deadline" in str(error)
    assert took < 5.0


def test_a_dripping_provider_costs_a_product_one_deadline_not_four(raw_server: StartServer) -> None:
    def answer(server: RawServer, conn: socket.socket, _n: int) -> None:
        conn.sendall(_head(_length(BODY)))
        server.drip(conn, BODY)

    server = raw_server(answer)
    retry = RetryPolicy(max_attempts=4, base_delay=0.05, max_delay=0.1, max_elapsed=1.5)
    search = ImageSearchService(brave(server.url, deadline_seconds=1.0), retry=retry)

    took, error = elapsed(lambda: search.search("Acme ZX1 MONITOR"))

    assert isinstance(error, RetryableSearchError)  # a SearchUnavailableError: the product stays pending
    assert search_calls_of(error) == 2  # retried once; the next retry would start past max_elapsed
    assert took < 6.0


def test_a_fast_answer_is_untouched_by_the_deadline(raw_server: StartServer) -> None:
    def answer(server: RawServer, conn: socket.socket, _n: int) -> None:
        conn.sendall(_head(_length(BODY)) + BODY)

    server = raw_server(answer)
    provider = brave(server.url, deadline_seconds=0.5)
    for _ in range(3):  # the deadline of one call never leaks into the next one on the same connection
        assert len(provider.fetch_page("q", 0, 20).candidates) == 3
        time.sleep(0.3)


def test_a_deadline_shuts_down_only_its_own_sockets() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        mine = socket.create_connection(listener.getsockname())
        other = socket.create_connection(listener.getsockname())
        with mine, other, CallDeadline(0.2) as deadline:
            deadline.watch(mine)
            time.sleep(0.5)
            assert deadline.expired
            mine.settimeout(1)
            assert mine.recv(1) == b""  # shut down: EOF at once
            other.settimeout(0.2)
            with pytest.raises(TimeoutError):
                other.recv(1)  # untouched: still waiting for data


# --- the body cap -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "no-length"])
def test_a_body_over_the_cap_is_a_retryable_failure(raw_server: StartServer, declared: bool) -> None:
    big = b'{"type": "images", "results": [' + b'{"url": "https://example.com/x.jpg"},' * 200 + b"{}]}"

    def answer(server: RawServer, conn: socket.socket, _n: int) -> None:
        if declared:
            conn.sendall(_head(_length(big)) + big)
        else:  # no length: the body ends when the connection closes, and is counted as it streams
            conn.sendall(_head("Connection: close") + big)
            conn.shutdown(socket.SHUT_WR)

    server = raw_server(answer)
    _, error = elapsed(lambda: brave(server.url, max_body_bytes=1024).fetch_page("q", 0, 20))
    assert isinstance(error, RetryableSearchError)
    assert "more than the 1024 bytes allowed" in str(error)


def test_a_gzip_bomb_counts_at_its_decoded_size(raw_server: StartServer) -> None:
    bomb = gzip.compress(b'{"results": [' + b" " * 200_000 + b"]}")

    def answer(server: RawServer, conn: socket.socket, _n: int) -> None:
        conn.sendall(_head(_length(bomb), "Content-Encoding: gzip") + bomb)

    server = raw_server(answer)
    assert len(bomb) < 1024
    _, error = elapsed(lambda: brave(server.url, max_body_bytes=64 * 1024).fetch_page("q", 0, 20))
    assert isinstance(error, RetryableSearchError)
    assert "more than the 65536 bytes allowed" in str(error)


def test_an_error_answer_over_the_cap_keeps_its_status(raw_server: StartServer) -> None:
    huge = b"x" * 300_000

    def answer(server: RawServer, conn: socket.socket, _n: int) -> None:
        conn.sendall(_head(_length(huge), status="403 Forbidden") + huge)

    server = raw_server(answer)
    _, error = elapsed(lambda: SerpApiImageSearch("k", build_http_session(), server.url).fetch_page("q", 0, 20))
    assert error is not None
    assert "HTTP 403" in str(error)  # the first 64 KB are read for a detail; the status decides
