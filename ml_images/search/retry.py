"""Bounded retries with exponential backoff and jitter for search-provider calls."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

from ml_images.errors import SearchUnavailableError

log = logging.getLogger(__name__)

T = TypeVar("T")


class RetryableSearchError(SearchUnavailableError):
    """A failure worth another try (429 rate limit, 5xx, connection error, timeout).

    It is a ``SearchUnavailableError``, so once the retries are spent the caller sees the family it expects.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def parse_retry_after(value: str | None, *, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date); None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now()).total_seconds())


@dataclass
class RetryPolicy:
    """``max_attempts`` tries in all; waits ``base_delay * 2**n`` (capped at ``max_delay``) with jitter, or
    the server's ``Retry-After`` when it sent one, also capped at ``max_delay``: a run must not sleep for an
    hour because a quota resets at midnight (that case is a ``SearchQuotaError`` anyway, never retried).

    No retry starts more than ``max_elapsed`` seconds after the first attempt did: a provider that answers
    slowly (each call running into its 30 s deadline) costs a product one or two calls, not four."""

    max_attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    jitter: bool = True
    max_elapsed: float = 30.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if self.base_delay < 0 or self.max_delay < 0 or self.max_elapsed < 0:
            raise ValueError("delays must be >= 0")

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_delay)
        backoff = min(self.base_delay * (2 ** (attempt - 1)), self.max_delay)
        if self.jitter:
            # "Equal jitter": half fixed, half random, so concurrent workers spread out but never retry at once.
            return backoff / 2 + random.uniform(0, backoff / 2)
        return backoff

    def call(self, fn: Callable[[], T], *, describe: str = "search call") -> T:
        """Run ``fn``; retry on ``RetryableSearchError``; re-raise the last one when the attempts (or the
        time) are spent."""
        started = self.clock()
        attempt = 1
        while True:
            try:
                return fn()
            except RetryableSearchError as exc:
                if attempt >= self.max_attempts:
                    log.warning("%s failed after %d attempts: %s", describe, attempt, exc)
                    raise
                wait = self.delay(attempt, exc.retry_after)
                elapsed = self.clock() - started
                if elapsed + wait > self.max_elapsed:
                    log.warning(
                        "%s failed after %d attempts in %.1fs (no retry past %gs): %s",
                        describe,
                        attempt,
                        elapsed,
                        self.max_elapsed,
                        exc,
                    )
                    raise
                log.info("%s failed (%s); retry %d/%d in %.2fs", describe, exc, attempt, self.max_attempts - 1, wait)
                self.sleep(wait)
                attempt += 1
