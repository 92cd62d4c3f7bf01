"""Search rate limits respected, not discovered: one token bucket per provider endpoint, shared by every thread.

Search providers limit requests per second (Brave's free plan: 1 per second over a sliding window) and answer the
excess with 429. With several products in flight, each thread backing off on its own only collects 429s; the
limit has to be enforced before the request leaves, by one limiter the threads share. ``shared_bucket`` keeps one
``TokenBucket`` per (provider, endpoint) for the whole process, and ``RateLimitedProvider`` takes a token before
each provider call.

**Burst: one token.** A bucket holding ``ceil(rate)`` tokens lets a full bucket plus a second of refill through in
one second — up to ``2 * rate`` requests in a one-second window, exactly what a provider's sliding window
refuses. With one token, consecutive requests are at least ``1 / rate`` seconds apart, so no one-second window
holds more than ``rate`` of them (``ceil(rate)`` for a fractional rate). The cost is no bursting at the start of a
run, which a per-second limit would not allow anyway.

**Headroom.** The provider counts arrivals, not departures: a request delayed a few milliseconds on the way (a
thread descheduled, a slower TCP connect) lands closer to the next one than they left. The spacing is therefore
``(1 / rate) * (1 + headroom)`` (25 % by default: the effective rate is 80 % of the configured one; with 10 %,
a CPU-starved 2-core machine delayed requests enough to land three in one second at rate 2). Tokens are
taken at the time the caller actually proceeds, not at a pre-booked slot, so a late waker never pushes the next
request closer.

**Retry-After.** A 429 (or 503) whose ``Retry-After`` the provider module parsed pauses the bucket — every thread
— until then, capped at ``max_pause`` (a quota that resets at midnight is a ``SearchQuotaError``, not a pause).

**Fairness.** Waiters are served in arrival order, so a product does not starve while others keep winning.

Default rates (``DEFAULT_RATES``, the default of ``ML_IMAGES_SEARCH_RATE_LIMIT``), each matching the provider's
free plan; quotas per day or month are not rates (they end in ``SearchQuotaError``):

* ``brave`` 1/s — the free plan's limit (1 request per second, 1-second sliding window; paid plans allow 50/s).
* ``serpapi`` 50/hour — SerpApi limits throughput per hour at 20 % of the plan's monthly searches (its Account
  API reports ``account_rate_limit_per_hour``: 1,000/month → 200/hour, 30,000/month → 6,000/hour). Its free plan
  is 250 searches a month in current price lists (100 in older ones): 50 an hour (20 with 100). Paid plans should
  set the variable (Developer, 5,000/month: 1,000/hour ≈ 0.27/s).
* ``google`` 1/s — Google APIs' usual per-user rate quota is 100 requests per 100 seconds (not checked for
  Custom Search specifically); its 100 free queries a day are a quota.
* ``searxng`` 0.25/s — a self-hosted instance (the JSON API needs its limiter off) scrapes Google/Bing/DuckDuckGo,
  which block bots; SearXNG's own limiter treats more than 150 requests in 10 minutes from one client (0.25/s)
  as a bot, the pace it considers human.
"""

from __future__ import annotations

import collections
import logging
import math
import threading
import time
from collections.abc import Mapping
from types import MappingProxyType
from typing import Generic, Protocol, TypeVar
from urllib.parse import urlsplit

from ml_images.errors import ConfigurationError, SearchUnavailableError
from ml_images.search.retry import RetryableSearchError

log = logging.getLogger(__name__)

RATE_LIMIT_ENV_VAR = "ML_IMAGES_SEARCH_RATE_LIMIT"

DEFAULT_RATES: Mapping[str, float] = MappingProxyType(
    {
        "brave": 1.0,
        "serpapi": 50 / 3600,
        "google": 1.0,
        "searxng": 0.25,
    }
)
DEFAULT_HEADROOM = 0.25
DEFAULT_MAX_PAUSE = 60.0  # seconds; a longer Retry-After is a quota, not a rate limit


def _positive_finite(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


class TokenBucket:
    """A one-token bucket refilled at ``rate`` tokens per second, shared by threads; see the module docstring."""

    def __init__(
        self, rate: float, *, headroom: float = DEFAULT_HEADROOM, max_pause: float = DEFAULT_MAX_PAUSE
    ) -> None:
        if not math.isfinite(headroom) or headroom < 0:
            raise ValueError(f"headroom must be >= 0, got {headroom!r}")
        self._headroom = headroom
        self._max_pause = _positive_finite(max_pause, "max_pause")
        self._cond = threading.Condition()
        self._waiters: collections.deque[object] = collections.deque()
        self._next_free = -math.inf  # monotonic time at which the token is back
        self._paused_until = -math.inf
        self.set_rate(rate)

    @property
    def rate(self) -> float:
        return self._rate

    @property
    def interval(self) -> float:
        """Seconds between two requests."""
        return self._interval

    def set_rate(self, rate: float) -> None:
        rate = _positive_finite(rate, "rate")
        with self._cond:
            self._rate = rate
            self._interval = (1.0 / rate) * (1.0 + self._headroom)
            self._cond.notify_all()

    def paused_for(self) -> float:
        """Seconds left of a Retry-After pause (0 when none)."""
        with self._cond:
            return max(0.0, self._paused_until - time.monotonic())

    def pause(self, seconds: float) -> float:
        """Hold every thread for ``seconds`` (capped at ``max_pause``) from now; returns the pause applied.

        Pauses never shorten one already running: two 429s in a row keep the later end."""
        if not math.isfinite(seconds) or seconds <= 0:
            return 0.0
        applied = min(seconds, self._max_pause)
        with self._cond:
            self._paused_until = max(self._paused_until, time.monotonic() + applied)
            self._cond.notify_all()
        return applied

    def acquire(self, timeout: float | None = None) -> bool:
        """Wait for the token (in arrival order); False when ``timeout`` seconds passed first."""
        started = time.monotonic()
        ticket = object()
        with self._cond:
            self._waiters.append(ticket)
            try:
                while True:
                    now = time.monotonic()
                    wait: float | None = None
                    if self._waiters[0] is ticket:
                        ready_at = max(self._next_free, self._paused_until)
                        if now >= ready_at:
                            # Taken at the time the caller proceeds: a late waker cannot crowd the next request.
                            self._next_free = now + self._interval
                            return True
                        wait = ready_at - now
                    if timeout is not None:
                        remaining = started + timeout - now
                        if remaining <= 0:
                            return False
                        wait = remaining if wait is None else min(wait, remaining)
                    self._cond.wait(wait)
            finally:
                self._waiters.remove(ticket)
                self._cond.notify_all()  # the next in line becomes the head


def endpoint_key(endpoint: str | None) -> str:
    """The part of an endpoint that names the service: scheme, host, port and path (no query: keys live there)."""
    if not endpoint:
        return ""
    try:
        parts = urlsplit(endpoint.strip())
        host = (parts.hostname or "").lower()
        port = parts.port
    except ValueError:
        return endpoint.strip().split("?", 1)[0]
    netloc = f"{host}:{port}" if port else host
    return f"{parts.scheme.lower()}://{netloc}{parts.path.rstrip('/')}"


_REGISTRY: dict[tuple[str, str], TokenBucket] = {}
_REGISTRY_LOCK = threading.Lock()


def shared_bucket(
    provider: str,
    endpoint: str | None,
    rate: float,
    *,
    headroom: float = DEFAULT_HEADROOM,
    max_pause: float = DEFAULT_MAX_PAUSE,
) -> TokenBucket:
    """The process's one bucket for ``provider`` at ``endpoint`` (None: the provider's own endpoint).

    Every service, resource and thread that talks to the same provider endpoint gets the same bucket, so the
    limit holds for the process whatever builds the search service. A different ``rate`` for an existing bucket
    replaces its rate (the latest configuration wins; there is one limit per endpoint, never two side by side);
    ``headroom`` and ``max_pause`` are those of the bucket's creation.
    """
    key = (provider.strip().lower(), endpoint_key(endpoint))
    with _REGISTRY_LOCK:
        bucket = _REGISTRY.get(key)
        if bucket is None:
            bucket = TokenBucket(rate, headroom=headroom, max_pause=max_pause)
            _REGISTRY[key] = bucket
            return bucket
    if bucket.rate != rate:
        log.info("search rate limit for %s %s changed from %g/s to %g/s", key[0], key[1] or "", bucket.rate, rate)
        bucket.set_rate(rate)
    return bucket


def default_rate(provider: str) -> float:
    """The documented default for ``provider`` (see the module docstring)."""
    try:
        return DEFAULT_RATES[provider.strip().lower()]
    except KeyError:
        names = ", ".join(DEFAULT_RATES)
        raise ConfigurationError(f"no default search rate limit for provider {provider!r} (known: {names})") from None


def parse_rate_limit(raw: str | None, provider: str, variable: str = RATE_LIMIT_ENV_VAR) -> float:
    """Requests per second from the variable's text, or the provider's default when unset or blank."""
    if raw is None or not raw.strip():
        return default_rate(provider)
    try:
        value = float(raw.strip())
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise ConfigurationError(f"{variable} must be a positive number of requests per second, got {raw!r}")
    return value


PageT = TypeVar("PageT", covariant=True)


class PageProvider(Protocol[PageT]):
    """The shape of ``ImageSearchProvider`` the limiter needs (kept structural, so it wraps any provider)."""

    @property
    def name(self) -> str: ...

    def fetch_page(self, query: str, page: int, per_page: int) -> PageT: ...


class RateLimitedProvider(Generic[PageT]):
    """A provider whose every call first takes a token from ``bucket``; a Retry-After pauses the bucket.

    ``max_wait``: give up waiting for a token after that many seconds with ``SearchUnavailableError`` (the step
    fails, products stay pending) instead of blocking without bound; None waits as long as it takes.
    """

    def __init__(self, inner: PageProvider[PageT], bucket: TokenBucket, *, max_wait: float | None = None) -> None:
        self.inner = inner
        self.bucket = bucket
        self.max_wait = max_wait

    @property
    def name(self) -> str:
        return self.inner.name

    def fetch_page(self, query: str, page: int, per_page: int) -> PageT:
        if not self.bucket.acquire(self.max_wait):
            raise SearchUnavailableError(
                f"{self.name}: no search slot within {self.max_wait:g} s under the rate limit "
                f"({self.bucket.rate:g}/s, paused {self.bucket.paused_for():.1f} s more)"
            )
        try:
            return self.inner.fetch_page(query, page, per_page)
        except RetryableSearchError as exc:
            if exc.retry_after is not None:
                applied = self.bucket.pause(exc.retry_after)
                log.info(
                    "%s asked to wait %.1f s (Retry-After); every search thread pauses %.1f s",
                    self.name,
                    exc.retry_after,
                    applied,
                )
            raise

    def __repr__(self) -> str:
        return f"RateLimitedProvider({self.inner!r}, {self.bucket.rate:g}/s)"


def rate_limited(
    inner: PageProvider[PageT], rate: float, *, endpoint: str | None = None, max_wait: float | None = None
) -> RateLimitedProvider[PageT]:
    """``inner`` behind the process's shared bucket for its name and endpoint (``inner.endpoint`` when not given)."""
    if endpoint is None:
        found = getattr(inner, "endpoint", None)
        endpoint = found if isinstance(found, str) else None
    return RateLimitedProvider(inner, shared_bucket(inner.name, endpoint, rate), max_wait=max_wait)
