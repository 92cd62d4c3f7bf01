"""The connection a download runs over: pinned to a vetted address, and ended at its deadline.

The host is resolved once and every address vetted (``AddressPolicy``) before this module is used; the TCP
connection then goes to a vetted address (urllib3 connection classes with a pinned IP; Host header, TLS SNI and
certificate check still use the hostname), so a second DNS answer cannot redirect it. urllib3 is used directly:
it never reads proxy settings from the environment (requests would, unless ``trust_env=False``), so a
``HTTPS_PROXY`` cannot route these downloads around the address checks. Transport errors become reason codes here
(``refusal_for``).
"""

from __future__ import annotations

import http.client
import socket
import ssl
from typing import Any

from urllib3 import BaseHTTPResponse, HTTPConnectionPool, HTTPSConnectionPool
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import (
    ConnectTimeoutError,
    DecodeError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)
from urllib3.exceptions import SSLError as Urllib3SSLError
from urllib3.util import Timeout
from urllib3.util.connection import create_connection

from ml_images.download.target import Target
from ml_images.net.capped_body import CONNECTION_ERRORS
from ml_images.net.socket_deadline import SocketDeadline
from ml_images.outcomes import ReasonCode, Refused


class DeadlineGuard(SocketDeadline):
    """Ends a download at its deadline, even while a read is blocked inside a chunk (``SocketDeadline``); the
    clock runs from the moment the guard is made."""

    def __init__(self, seconds: float) -> None:
        super().__init__(seconds)
        self.start()

    def register(self, sock: socket.socket) -> None:
        """Track a new connection's socket; ``TimeoutError`` (and ``sock`` closed) once the deadline has passed."""
        if not self.track(sock.dup()):
            sock.close()
            raise TimeoutError("download deadline reached")


def _open_pinned_socket(conn: HTTPConnection, pinned_ip: str, guard: DeadlineGuard) -> socket.socket:
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
    def __init__(self, *args: Any, pinned_ip: str, guard: DeadlineGuard, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pinned_ip = pinned_ip
        self._guard = guard

    def _new_conn(self) -> socket.socket:
        return _open_pinned_socket(self, self._pinned_ip, self._guard)


class _PinnedHTTPSConnection(HTTPSConnection):
    def __init__(self, *args: Any, pinned_ip: str, guard: DeadlineGuard, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pinned_ip = pinned_ip
        self._guard = guard

    def _new_conn(self) -> socket.socket:
        return _open_pinned_socket(self, self._pinned_ip, self._guard)


class _PinnedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _PinnedHTTPConnection


class _PinnedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _PinnedHTTPSConnection


def _is_incomplete_read(exc: BaseException) -> bool:
    return any(isinstance(arg, http.client.IncompleteRead) for arg in exc.args)


def refusal_for(exc: BaseException, guard: DeadlineGuard) -> Refused:
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


def open_pinned(
    target: Target,
    addresses: list[str],
    headers: dict[str, str],
    guard: DeadlineGuard,
    *,
    connect_timeout: float,
    read_timeout: float,
    ca_certs: str,
) -> tuple[BaseHTTPResponse, HTTPConnectionPool]:
    """Send the request to the first vetted address that accepts a connection."""
    last_error: BaseException | None = None
    for address in addresses:
        if guard.expired:
            break
        timeout = Timeout(
            connect=max(0.001, min(connect_timeout, guard.remaining())),
            read=max(0.001, min(read_timeout, guard.remaining())),
        )
        pool: HTTPConnectionPool
        if target.scheme == "https":
            pool = _PinnedHTTPSPool(
                target.host,
                target.port,
                maxsize=1,
                retries=False,
                cert_reqs="CERT_REQUIRED",
                ca_certs=ca_certs,
                pinned_ip=address,
                guard=guard,
            )
        else:
            pool = _PinnedHTTPPool(target.host, target.port, maxsize=1, retries=False, pinned_ip=address, guard=guard)
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
        except CONNECTION_ERRORS as exc:
            pool.close()
            raise refusal_for(exc, guard) from None
        return response, pool
    if last_error is None or guard.expired:
        raise Refused(ReasonCode.DEADLINE, "total download deadline reached")
    raise refusal_for(last_error, guard)
