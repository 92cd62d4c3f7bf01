"""Search API calls bounded in total time and in size, whatever the server does.

requests' read timeout bounds the gap between two packets, not the call: a server that sends one byte every
few seconds, in its headers or its body, never trips it. Each call therefore runs under a ``CallDeadline``: a
timer that, at the deadline, shuts down the sockets the call is reading from, which wakes a blocked ``recv``
with EOF; ``expired`` then tells the caller that the EOF was ours. The sockets reach the deadline through the
connections of ``BoundedHTTPAdapter`` (they register themselves just before reading the response), so reused
keep-alive connections are covered as well as new ones. The body is read in small chunks under a byte cap
(decoded bytes, so a gzip bomb counts at its real size). The deadline and the capped read are ``ml_images.net``'s,
shared with the downloads; ``HttpLimits`` holds the three bounds of a provider's calls, with their defaults.
"""

from __future__ import annotations

import contextvars
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from ml_images.net.capped_body import declared_length, read_capped
from ml_images.net.socket_deadline import SocketDeadline

DEFAULT_TIMEOUT: tuple[float, float] = (5.0, 30.0)  # (connect, read); Brave recommends allowing 30 s
_CHUNK_BYTES = 8 * 1024

_current: contextvars.ContextVar[CallDeadline | None] = contextvars.ContextVar("search_call_deadline", default=None)


@dataclass(frozen=True)
class HttpLimits:
    """The bounds of every call a provider makes: requests' (connect, read) ``timeout``, the total
    ``deadline_seconds`` of a call and ``max_body_bytes``, the cap on the (decoded) body of an answer."""

    timeout: tuple[float, float] = DEFAULT_TIMEOUT
    deadline_seconds: float = 30.0
    max_body_bytes: int = 5 * 1024 * 1024

    def __post_init__(self) -> None:
        if self.deadline_seconds <= 0 or self.max_body_bytes < 1:
            raise ValueError("deadline_seconds and max_body_bytes must be positive")


DEFAULT_LIMITS = HttpLimits()


class CallDeadline(SocketDeadline):
    """A wall-clock limit on one HTTP call, enforced on the sockets the call reads from (``SocketDeadline``).

    Used as a context manager around the call; connections made or reused by ``BoundedHTTPAdapter`` inside the
    ``with`` block register their socket. Other sessions are still checked between chunks, not inside one.
    """

    def __init__(self, seconds: float) -> None:
        super().__init__(seconds)
        self._token: contextvars.Token[CallDeadline | None] | None = None

    def __enter__(self) -> CallDeadline:
        self._token = _current.set(self)
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._token is not None:
            _current.reset(self._token)
        self.close()

    def watch(self, sock: Any) -> None:
        """Shut ``sock`` down at the deadline (at once if it has passed)."""
        try:
            duplicate = socket.socket(fileno=socket.dup(sock.fileno()))
        except (OSError, ValueError, AttributeError):
            return  # a socket we cannot see (a proxy tunnel...): the chunk loop still checks the deadline
        self.track(duplicate)


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


def read_body(response: requests.Response, deadline: CallDeadline, max_bytes: int, *, truncate: bool = False) -> bytes:
    """The body of a ``stream=True`` response, at most ``max_bytes`` (decoded), before ``deadline``
    (``ml_images.net.capped_body.read_capped``: ``BodyTooLarge``, ``DeadlineExceeded`` or ``CONNECTION_ERRORS``)."""
    return read_capped(
        response.iter_content(_CHUNK_BYTES),
        deadline,
        max_bytes,
        declared=declared_length(response.headers),
        truncate=truncate,
    )


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
