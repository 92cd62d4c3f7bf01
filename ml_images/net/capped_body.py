"""A response body read in chunks under a ``SocketDeadline`` and a byte cap, whatever the server does.

The cap is checked as the body streams (Content-Length may be absent or wrong) and the deadline between chunks and
after the last one: a socket the deadline shut down reads as a clean EOF, so the body may be cut short.
"""

from __future__ import annotations

import http.client
from collections.abc import Iterable, Mapping

from urllib3.exceptions import HTTPError

from ml_images.net.socket_deadline import SocketDeadline

#: What a request or the reading of its body raises when the connection breaks (requests' exceptions are OSErrors).
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (HTTPError, OSError, http.client.HTTPException)


class DeadlineExceeded(Exception):
    """The body did not arrive within the deadline; ``received`` bytes had."""

    def __init__(self, received: int) -> None:
        super().__init__(f"deadline reached after {received} bytes")
        self.received = received


class BodyTooLarge(Exception):
    """The response body is larger than allowed."""


def declared_length(headers: Mapping[str, str]) -> int | None:
    """The Content-Length the server declares, when it is a plain number."""
    raw = headers.get("Content-Length")
    if raw is None or not raw.strip().isdigit():
        return None
    return int(raw.strip())


def read_capped(
    chunks: Iterable[bytes],
    deadline: SocketDeadline,
    max_bytes: int,
    *,
    declared: int | None = None,
    truncate: bool = False,
) -> bytes:
    """The body streamed as ``chunks``, at most ``max_bytes``, before ``deadline``.

    Raises ``BodyTooLarge`` (a ``declared`` length or the bytes read over the cap; with ``truncate`` the first
    ``max_bytes`` are returned instead), ``DeadlineExceeded`` (also when the connection broke because the deadline
    shut it down), or one of ``CONNECTION_ERRORS`` when the connection breaks on its own.
    """
    if declared is not None and declared > max_bytes and not truncate:
        raise BodyTooLarge(f"Content-Length {declared} exceeds {max_bytes} bytes")
    parts: list[bytes] = []
    total = 0
    try:
        for chunk in chunks:
            if deadline.expired:
                raise DeadlineExceeded(total)
            total += len(chunk)
            if total > max_bytes:
                if truncate:
                    parts.append(chunk[: max_bytes - (total - len(chunk))])
                    break
                raise BodyTooLarge(f"body exceeds {max_bytes} bytes")
            parts.append(chunk)
    except CONNECTION_ERRORS:
        if deadline.expired:  # the EOF or reset was ours: the deadline shut the socket down
            raise DeadlineExceeded(total) from None
        raise
    if deadline.expired:
        raise DeadlineExceeded(total)
    return b"".join(parts)
