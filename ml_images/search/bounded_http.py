"""Search API calls bounded in total time and in size, whatever the server does.

requests' read timeout bounds the gap between two packets, not the call: a server that sends one byte every
few seconds, in its headers or its body, never trips it. Each call therefore runs under a ``CallDeadline``: a
timer that, at the deadline, shuts down the sockets the call is reading from, which wakes a blocked ``recv``
with EOF; ``expired`` then tells the caller that the EOF was ours. The sockets reach the deadline through the
connections of ``BoundedHTTPAdapter`` (they register themselves just before reading the response), so reused
keep-alive connections are covered as well as new ones. The body is read in small chunks under a byte cap
(decoded bytes, so a gzip bomb counts at its real size).
"""

from __future__ import annotations

import contextlib
import contextvars
import http.client
import socket
import threading
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import HTTPError

DEFAULT_TIMEOUT: tuple[float, float] = (5.0, 30.0)  # (connect, read); Brave recommends allowing 30 s
DEFAULT_DEADLINE_SECONDS = 30.0
DEFAULT_MAX_BODY_BYTES = 5 * 1024 * 1024
_CHUNK_BYTES = 8 * 1024

_current: contextvars.ContextVar[CallDeadline | None] = contextvars.ContextVar("search_call_deadline", default=None)


class DeadlineExceeded(Exception):
    """The call did not finish within its deadline."""


class BodyTooLarge(Exception):
    """The response body is larger than allowed."""


class CallDeadline:
    """A wall-clock limit on one HTTP call, enforced on the sockets the call reads from.

    Used as a context manager around the call; connections made or reused by ``BoundedHTTPAdapter`` inside the
    ``with`` block register their socket. Other sessions are still checked between chunks, not inside one.
    """

    def __init__(self, seconds: float) -> None:
        if seconds <= 0:
            raise ValueError("a deadline must be positive")
        self.seconds = seconds
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._fired = False
        self._closed = False
        self._ends_at = time.monotonic() + seconds
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self._token: contextvars.Token[CallDeadline | None] | None = None

    def __enter__(self) -> CallDeadline:
        self._token = _current.set(self)
        self._timer.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._token is not None:
            _current.reset(self._token)
        self.close()

    @property
    def expired(self) -> bool:
        return self._fired or time.monotonic() >= self._ends_at

    def watch(self, sock: Any) -> None:
        """Shut ``sock`` down at the deadline (at once if it has passed).

        A duplicate descriptor is kept, not the socket object: a TLS socket cannot be ``dup()``-ed, and a
        descriptor we own can never be one the OS has meanwhile handed to another thread's connection.
        """
        try:
            fileno = sock.fileno()
            duplicate = socket.socket(fileno=socket.dup(fileno))
        except (OSError, ValueError, AttributeError):
            return  # a socket we cannot see (a proxy tunnel...): the chunk loop still checks the deadline
        with self._lock:
            if self._closed:
                duplicate.close()
                return
            self._sockets.append(duplicate)
            if self._fired:
                self._shutdown(duplicate)

    @staticmethod
    def _shutdown(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)

    def _fire(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._fired = True
            for sock in self._sockets:
                self._shutdown(sock)

    def close(self) -> None:
        self._timer.cancel()
        with self._lock:
            self._closed = True
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.close()
            self._sockets.clear()


def _watch_current(sock: Any) -> None:
    deadline = _current.get()
    if deadline is not None and sock is not None:
        deadline.watch(sock)


class _WatchedHTTPConnection(HTTPConnection):
    def getresponse(self) -> Any:  # the request is sent; from here on the server can make us wait
        _watch_current(self.sock)
        return super().getresponse()


class _WatchedHTTPSConnection(HTTPSConnection):
    def getresponse(self) -> Any:
        _watch_current(self.sock)
        return super().getresponse()


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_WATCHED_POOLS: dict[str, type[HTTPConnectionPool]] = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}
_STANDARD_POOLS: dict[str, type[HTTPConnectionPool]] = {"http": HTTPConnectionPool, "https": HTTPSConnectionPool}


class BoundedHTTPAdapter(HTTPAdapter):
    """A default (connect, read) timeout on every request, and connections a ``CallDeadline`` can cut.

    requests has no default timeout and would otherwise wait forever on a stalled provider. No retries here:
    they are the search service's ``RetryPolicy``, with backoff and accounting.
    """

    def __init__(self, timeout: tuple[float, float] = DEFAULT_TIMEOUT) -> None:
        self.timeout = timeout
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(_WATCHED_POOLS)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        # An HTTP(S) proxy uses urllib3's own pools: watch them too. A SOCKS proxy has pools of its own, kept
        # as they are (its calls are then checked against the deadline between chunks only).
        if getattr(manager, "pool_classes_by_scheme", None) == _STANDARD_POOLS:
            manager.pool_classes_by_scheme = dict(_WATCHED_POOLS)
        return manager

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | tuple[float, None] | None = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        return super().send(
            request,
            stream=stream,
            timeout=self.timeout if timeout is None else timeout,
            verify=verify,
            cert=cert,
            proxies=proxies,
        )


def _declared_length(response: requests.Response) -> int | None:
    raw = response.headers.get("Content-Length")
    if raw is None or not raw.strip().isdigit():
        return None
    return int(raw.strip())


READ_ERRORS: tuple[type[BaseException], ...] = (
    requests.RequestException,
    HTTPError,
    OSError,
    http.client.HTTPException,
)


def read_body(response: requests.Response, deadline: CallDeadline, max_bytes: int, *, truncate: bool = False) -> bytes:
    """The body of a ``stream=True`` response, at most ``max_bytes`` (decoded), before ``deadline``.

    Raises ``BodyTooLarge`` (unless ``truncate``: then the first ``max_bytes`` are returned), ``DeadlineExceeded``,
    or one of ``READ_ERRORS`` when the connection breaks.
    """
    declared = _declared_length(response)
    if declared is not None and declared > max_bytes and not truncate:
        raise BodyTooLarge(f"Content-Length {declared} exceeds {max_bytes} bytes")
    chunks: list[bytes] = []
    total = 0
    try:
        for chunk in response.iter_content(_CHUNK_BYTES):
            if deadline.expired:
                raise DeadlineExceeded(f"deadline reached after {total} bytes")
            total += len(chunk)
            if total > max_bytes:
                if truncate:
                    chunks.append(chunk[: max_bytes - (total - len(chunk))])
                    break
                raise BodyTooLarge(f"body exceeds {max_bytes} bytes")
            chunks.append(chunk)
    except READ_ERRORS:
        if deadline.expired:  # the EOF or reset was ours: the deadline shut the socket down
            raise DeadlineExceeded(f"deadline reached after {total} bytes") from None
        raise
    if deadline.expired:  # a socket shut down by the deadline reads as a clean EOF: the body may be cut short
        raise DeadlineExceeded(f"deadline reached after {total} bytes")
    return b"".join(chunks)


def build_http_session(
    timeout: tuple[float, float] = DEFAULT_TIMEOUT, user_agent: str | None = None
) -> requests.Session:
    """A session whose every call has a default timeout and can be cut by a ``CallDeadline``."""
    session = requests.Session()
    adapter = BoundedHTTPAdapter(timeout)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["Accept"] = "application/json"
    if user_agent:
        session.headers["User-Agent"] = user_agent
    return session


def ensure_bounded(session: requests.Session, url: str, timeout: tuple[float, float] = DEFAULT_TIMEOUT) -> None:
    """Make the calls ``session`` sends to ``url`` go through a ``BoundedHTTPAdapter``.

    Mounted for that URL's origin only (requests picks the longest matching prefix), so the rest of a session
    handed in by a caller keeps its own adapters.
    """
    try:
        if isinstance(session.get_adapter(url), BoundedHTTPAdapter):
            return
    except requests.exceptions.InvalidSchema:
        return
    try:
        parts = urlsplit(url)
    except ValueError:
        return
    if parts.scheme in ("http", "https") and parts.netloc:
        session.mount(f"{parts.scheme}://{parts.netloc}/", BoundedHTTPAdapter(timeout))
