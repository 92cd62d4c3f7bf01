"""Download untrusted image URLs without letting them reach the inside of the network or hold a worker.

Per hop: http/https only → the host is resolved once and every address vetted (``AddressPolicy``) → the TCP
connection goes to a vetted address (urllib3 connection classes with a pinned IP; Host header, TLS SNI and
certificate check still use the hostname) → redirects are followed by hand and each hop is vetted the same
way. The body is streamed under a byte cap and a wall-clock deadline, and its magic bytes decide whether it
is an image. urllib3 is used directly: it never reads proxy settings from the environment (requests would,
unless ``trust_env=False``), so a ``HTTPS_PROXY`` cannot route these downloads around the address checks.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import logging
import re
import socket
import ssl
import threading
import time
from collections.abc import Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import certifi
from requests.utils import requote_uri
from urllib3 import BaseHTTPResponse, HTTPConnectionPool, HTTPSConnectionPool
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import (
    ConnectTimeoutError,
    DecodeError,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)
from urllib3.exceptions import SSLError as Urllib3SSLError
from urllib3.util import Timeout
from urllib3.util.connection import create_connection

from ml_images.download.address_policy import AddressPolicy, Resolver
from ml_images.download.results import DownloadedImage
from ml_images.download.sniff import SNIFF_BYTES, sniff_image_format
from ml_images.outcomes import ReasonCode, Refusal, Refused, http_status_reason
from ml_images.search.candidates import ImageCandidate

log = logging.getLogger(__name__)

DEFAULT_USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
_ACCEPT = "image/avif,image/webp,image/apng,image/png,image/jpeg,image/*;q=0.8,*/*;q=0.5"
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_CHUNK_BYTES = 16 * 1024
_MAX_URL_LENGTH = 4096
_HOSTNAME = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*$")


class _DeadlineGuard:
    """Ends a download at its deadline, even while a read is blocked inside a chunk.

    Read timeouts bound the gap between two packets, not the download: a server that sends one byte a
    second never trips them. At the deadline a timer shuts the download's sockets down, which wakes any
    blocked ``recv`` with EOF; ``expired`` then tells the downloader that the EOF was ours, not the server's.
    """

    def __init__(self, seconds: float) -> None:
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._fired = False
        self._closed = False
        self._ends_at = time.monotonic() + seconds
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()

    @property
    def expired(self) -> bool:
        return self._fired or time.monotonic() >= self._ends_at

    def remaining(self) -> float:
        return max(0.0, self._ends_at - time.monotonic())

    def register(self, sock: socket.socket) -> None:
        # A duplicate descriptor is kept, not the socket object: TLS wrapping detaches the original object,
        # and a descriptor we own can never be one the OS has meanwhile handed to another thread's download.
        with self._lock:
            if self._fired or self._closed:
                sock.close()
                raise TimeoutError("download deadline reached")
            self._sockets.append(sock.dup())

    def _fire(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._fired = True
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._timer.cancel()
        with self._lock:
            self._closed = True
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.close()
            self._sockets.clear()


def _open_pinned_socket(conn: HTTPConnection, pinned_ip: str, guard: _DeadlineGuard) -> socket.socket:
    """urllib3's ``_new_conn`` with the vetted address instead of a second DNS lookup of ``conn.host``."""
    try:
        sock = create_connection(
            (pinned_ip, conn.port or 0),
            conn.timeout,
            source_address=conn.source_address,
            socket_options=conn.socket_options,
        )
    except TimeoutError as exc:
        raise ConnectTimeoutError(conn, f"connection to {conn.host} ({pinned_ip}) timed out") from exc
    except OSError as exc:
        raise NewConnectionError(conn, f"failed to connect to {conn.host} ({pinned_ip}): {exc}") from exc
    try:
        guard.register(sock)
    except TimeoutError as exc:
        raise ConnectTimeoutError(conn, "download deadline reached") from exc
    return sock


class _PinnedHTTPConnection(HTTPConnection):
    def __init__(self, *args: Any, pinned_ip: str, guard: _DeadlineGuard, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pinned_ip = pinned_ip
        self._guard = guard

    def _new_conn(self) -> socket.socket:
        return _open_pinned_socket(self, self._pinned_ip, self._guard)


class _PinnedHTTPSConnection(HTTPSConnection):
    def __init__(self, *args: Any, pinned_ip: str, guard: _DeadlineGuard, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pinned_ip = pinned_ip
        self._guard = guard

    def _new_conn(self) -> socket.socket:
        return _open_pinned_socket(self, self._pinned_ip, self._guard)


class _PinnedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _PinnedHTTPConnection


class _PinnedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _PinnedHTTPSConnection


@dataclass(frozen=True)
class _Target:
    url: str  # canonical form: lower-case scheme and host, no fragment, no default port
    scheme: str
    host: str  # ASCII (IDNA) host, IPv6 without brackets
    port: int
    request_target: str  # path?query, percent-encoded


def _parse_target(url: str) -> _Target:
    url = url.strip()
    if not url or len(url) > _MAX_URL_LENGTH:
        raise Refused(ReasonCode.BAD_URL, "empty or longer than 4096 characters")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise Refused(ReasonCode.BAD_URL, "control characters in URL")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise Refused(ReasonCode.BAD_URL, str(exc)[:200]) from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise Refused(ReasonCode.BAD_SCHEME, f"scheme {scheme or '(none)'!r} is not http or https")
    if "@" in parts.netloc:
        raise Refused(ReasonCode.BAD_URL, "credentials in URL")
    raw_host = parts.hostname or ""
    try:
        ip = ipaddress.ip_address(raw_host)
        host = str(ip)
    except ValueError:
        try:
            host = raw_host.encode("idna").decode("ascii").lower() if raw_host else ""
        except UnicodeError:
            raise Refused(ReasonCode.BAD_URL, "host name is not valid IDNA") from None
        if not _HOSTNAME.match(host.rstrip(".")):
            raise Refused(ReasonCode.BAD_URL, "invalid host name") from None
        ip = None
    default_port = 443 if scheme == "https" else 80
    if port is None:
        port = default_port
    elif port == 0:  # never a destination; `port or default` would have fetched port 80 instead
        raise Refused(ReasonCode.BLOCKED_PORT, "port 0 is not a destination")
    netloc = f"[{host}]" if ip is not None and ip.version == 6 else host
    if port != default_port:
        netloc = f"{netloc}:{port}"
    path = parts.path or "/"
    request_target = requote_uri(path + (f"?{parts.query}" if parts.query else ""))
    canonical = urlunsplit((scheme, netloc, requote_uri(path), requote_uri(parts.query), ""))
    return _Target(canonical, scheme, host, port, request_target)


def _referer(page_url: str | None) -> str | None:
    if not page_url:
        return None
    try:
        target = _parse_target(page_url)
    except Refused:
        return None
    return target.url


def _content_length(response: BaseHTTPResponse) -> int | None:
    raw = response.headers.get("Content-Length")
    if raw is None or not raw.strip().isdigit():
        return None
    return int(raw.strip())


def _is_incomplete_read(exc: BaseException) -> bool:
    return any(isinstance(arg, http.client.IncompleteRead) for arg in exc.args)


def _refusal_for(exc: BaseException, guard: _DeadlineGuard) -> Refused:
    """Map a transport error to a machine-readable reason (detail without credentials: URLs carry none)."""
    detail = f"{type(exc).__name__}: {exc}"[:300]
    if guard.expired:
        return Refused(ReasonCode.DEADLINE, "total download deadline reached")
    if isinstance(exc, Urllib3SSLError | ssl.SSLError):
        return Refused(ReasonCode.TLS_ERROR, detail)
    if isinstance(exc, NewConnectionError):
        return Refused(ReasonCode.CONNECT_ERROR, detail)
    if isinstance(exc, ConnectTimeoutError | ReadTimeoutError | TimeoutError):
        return Refused(ReasonCode.TIMEOUT, detail)
    if isinstance(exc, DecodeError):
        return Refused(ReasonCode.NOT_AN_IMAGE, f"content encoding could not be decoded ({detail})")
    if isinstance(exc, ProtocolError) and _is_incomplete_read(exc):
        return Refused(ReasonCode.TRUNCATED, detail)
    return Refused(ReasonCode.CONNECT_ERROR, detail)


class SafeDownloader:
    """Fetches candidate images with SSRF, size, time and content checks. One instance is safe to share
    between threads: every download builds its own connection pools and deadline guard."""

    def __init__(
        self,
        *,
        allowed_private_hosts: Collection[str] = (),
        max_bytes: int = 15 * 1024 * 1024,
        deadline_seconds: float = 20.0,
        connect_timeout: float = 5.0,
        read_timeout: float = 10.0,
        max_redirects: int = 5,
        max_workers: int = 5,
        user_agent: str = DEFAULT_USER_AGENT,
        resolver: Resolver | None = None,
        ca_certs: str | None = None,
    ) -> None:
        if max_bytes < 1 or max_workers < 1 or max_redirects < 0:
            raise ValueError("max_bytes and max_workers must be >= 1, max_redirects >= 0")
        if min(deadline_seconds, connect_timeout, read_timeout) <= 0:
            raise ValueError("deadline and timeouts must be positive")
        self.max_bytes = max_bytes
        self.deadline_seconds = deadline_seconds
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_redirects = max_redirects
        self.max_workers = max_workers
        self.user_agent = user_agent
        self.ca_certs = ca_certs or certifi.where()  # a private CA bundle for tests or corporate TLS inspection
        self.policy = AddressPolicy(allowed_private_hosts, resolver)

    def download(self, candidate: ImageCandidate) -> DownloadedImage:
        """The candidate's image bytes, or Refused with a machine-readable ``reason``."""
        guard = _DeadlineGuard(self.deadline_seconds)
        try:
            return self._download(candidate, guard)
        except Refused as refused:
            log.info("download refused (%s): %s", refused.reason, refused.detail)
            if refused.url is None:
                raise Refused(refused.reason, refused.detail, candidate.image_url) from None
            raise
        finally:
            guard.close()

    def download_all(self, candidates: Sequence[ImageCandidate]) -> list[DownloadedImage | Refusal]:
        """Every candidate's result (the image or its ``Refusal``) in input order; downloads run concurrently, at most
        ``max_workers``."""
        items = list(candidates)
        if not items:
            return []
        workers = min(self.max_workers, len(items))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ml-images-download") as executor:
            futures = [executor.submit(self._download_or_refusal, c) for c in items]
            return [f.result() for f in futures]

    def _download_or_refusal(self, candidate: ImageCandidate) -> DownloadedImage | Refusal:
        try:
            return self.download(candidate)
        except Refused as refused:
            return refused.at("download", candidate.image_url)

    def _headers(self, candidate: ImageCandidate) -> dict[str, str]:
        headers = {
            "User-Agent": self.user_agent,
            "Accept": _ACCEPT,
            "Accept-Language": "es-AR,es;q=0.9,en;q=0.8",
            # Identity: the byte cap then measures what we store, and no decompression bomb is possible.
            "Accept-Encoding": "identity",
        }
        referer = _referer(candidate.page_url)
        if referer:
            headers["Referer"] = referer  # hotlink protection checks it
        return headers

    def _download(self, candidate: ImageCandidate, guard: _DeadlineGuard) -> DownloadedImage:
        headers = self._headers(candidate)
        target = _parse_target(candidate.image_url)
        visited = {target.url}
        redirects = 0
        while True:
            try:
                addresses = self.policy.vet(target.host, target.port)
            except Refused as refused:
                if redirects:
                    detail = f"{refused.detail} (after redirect to {target.url})"
                    raise Refused(refused.reason, detail, refused.url) from None
                raise
            response, pool = self._open(target, addresses, headers, guard)
            try:
                if response.status in _REDIRECT_STATUSES:
                    location = (response.headers.get("Location") or "").strip()
                    if not location:
                        raise Refused(http_status_reason(response.status), "redirect without a Location header")
                    next_target = _parse_target(urljoin(target.url, location))
                    if next_target.url in visited:
                        raise Refused(ReasonCode.REDIRECT_LOOP, f"{next_target.url} was already visited")
                    if redirects >= self.max_redirects:
                        raise Refused(ReasonCode.TOO_MANY_REDIRECTS, f"more than {self.max_redirects} redirects")
                    redirects += 1
                    visited.add(next_target.url)
                    target = next_target
                    continue
                if response.status != 200:
                    raise Refused(http_status_reason(response.status), f"{target.url} answered {response.status}")
                data, fmt = self._read_body(response, guard)
                return DownloadedImage(candidate=candidate, final_url=target.url, data=data, format=fmt)
            except (HTTPError, OSError, http.client.HTTPException) as exc:
                raise _refusal_for(exc, guard) from None
            finally:
                response.close()
                pool.close()

    def _open(
        self, target: _Target, addresses: list[str], headers: dict[str, str], guard: _DeadlineGuard
    ) -> tuple[BaseHTTPResponse, HTTPConnectionPool]:
        """Send the request to the first vetted address that accepts a connection."""
        last_error: BaseException | None = None
        for address in addresses:
            if guard.expired:
                break
            timeout = Timeout(
                connect=max(0.001, min(self.connect_timeout, guard.remaining())),
                read=max(0.001, min(self.read_timeout, guard.remaining())),
            )
            pool: HTTPConnectionPool
            if target.scheme == "https":
                pool = _PinnedHTTPSPool(
                    target.host,
                    target.port,
                    maxsize=1,
                    retries=False,
                    cert_reqs="CERT_REQUIRED",
                    ca_certs=self.ca_certs,
                    pinned_ip=address,
                    guard=guard,
                )
            else:
                pool = _PinnedHTTPPool(
                    target.host, target.port, maxsize=1, retries=False, pinned_ip=address, guard=guard
                )
            try:
                response = pool.urlopen(
                    "GET",
                    target.request_target,
                    headers=headers,
                    retries=False,
                    redirect=False,
                    assert_same_host=False,
                    timeout=timeout,
                    preload_content=False,
                    decode_content=True,
                    release_conn=False,
                )
            except ConnectTimeoutError as exc:  # refused, unreachable or silent: try the host's next vetted address
                pool.close()
                last_error = exc
                continue
            except (HTTPError, OSError, http.client.HTTPException) as exc:
                pool.close()
                raise _refusal_for(exc, guard) from None
            return response, pool
        if last_error is None or guard.expired:
            raise Refused(ReasonCode.DEADLINE, "total download deadline reached")
        raise _refusal_for(last_error, guard)

    def _read_body(self, response: BaseHTTPResponse, guard: _DeadlineGuard) -> tuple[bytes, str]:
        declared = _content_length(response)
        if declared is not None and declared > self.max_bytes:
            raise Refused(ReasonCode.TOO_LARGE, f"Content-Length {declared} exceeds {self.max_bytes} bytes")
        chunks: list[bytes] = []
        total = 0
        # Counted as it streams: Content-Length may be absent or wrong, and the guard stops drip-feeding.
        for chunk in response.stream(_CHUNK_BYTES, decode_content=True):
            total += len(chunk)
            if total > self.max_bytes:
                raise Refused(ReasonCode.TOO_LARGE, f"body exceeds {self.max_bytes} bytes")
            if guard.expired:
                raise Refused(ReasonCode.DEADLINE, f"total download deadline reached after {total} bytes")
            chunks.append(chunk)
        if guard.expired:  # a socket shut down by the guard reads as a clean EOF: the body may be cut short
            raise Refused(ReasonCode.DEADLINE, f"total download deadline reached after {total} bytes")
        data = b"".join(chunks)
        if not data:
            raise Refused(ReasonCode.EMPTY_BODY, "the response body is empty")
        fmt = sniff_image_format(data[:SNIFF_BYTES])
        if fmt is None:
            head = data[:16].hex(" ")
            raise Refused(ReasonCode.NOT_AN_IMAGE, f"magic bytes {head} are not JPEG, PNG, WebP, GIF or AVIF")
        return data, fmt
