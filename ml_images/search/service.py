"""``ImageSearchService``: one product query → up to ``count`` usable candidates, at the lowest cost.

Cache first (a hit costs no call). Otherwise pages are fetched one at a time, retried on 429/5xx, and a
next page is asked for only while the usable candidates are fewer than ``count``. Candidates are filtered
before anything is downloaded: bad URLs, duplicates, blocked domains (subdomains included), Google
thumbnails, SVG/GIF by extension, and sizes under ``min_side`` when the provider reports a size. Each
filtered candidate becomes a ``Refusal(stage="search")`` in ``SearchOutcome.dropped``.

A *fallback* service (``ML_IMAGES_SEARCH_FALLBACK``) answers for a product when this one's provider is out of
quota, refuses the key (``SearchQuotaError``) or is still unavailable after its retries (``SearchUnavailableError``).
A quota error is remembered for the life of the service (one run): the quota will not come back within it, so
later products go to the fallback without paying a refused call first (their cached results are still used).
``SearchOutcome.provider`` names the provider that answered and ``calls_by_provider`` splits the calls.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import re
import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import urlsplit

from ml_images.errors import CatalogUnavailableError, SearchQuotaError, SearchUnavailableError
from ml_images.outcomes import ReasonCode, Refusal
from ml_images.search.blocklist import DEFAULT_BLOCKED_DOMAINS, DomainBlocklist, host_of
from ml_images.search.cache import SearchCache
from ml_images.search.candidates import ImageCandidate, SearchOutcome
from ml_images.search.providers import ImageSearchProvider, ProviderPage
from ml_images.search.retry import RetryPolicy

log = logging.getLogger(__name__)

_UNSUPPORTED_EXTENSIONS = (".svg", ".svgz", ".gif")
# Google Images "originals" that are really its ~200 px thumbnails (reported by SerpApi users since 2025).
_THUMBNAIL_HOST = re.compile(r"^encrypted-tbn\d*\.gstatic\.com$")


_CALLS_ATTRIBUTE = "search_calls"
_CALLS_BY_PROVIDER_ATTRIBUTE = "search_calls_by_provider"


def search_calls_of(error: BaseException) -> int:
    """Provider requests made by the search that raised ``error`` (retries included); 0 for other errors."""
    calls = getattr(error, _CALLS_ATTRIBUTE, 0)
    return calls if isinstance(calls, int) and not isinstance(calls, bool) else 0


def search_calls_by_provider_of(error: BaseException) -> dict[str, int]:
    """``search_calls_of(error)`` split by provider (empty for other errors)."""
    found = getattr(error, _CALLS_BY_PROVIDER_ATTRIBUTE, None)
    return dict(found) if isinstance(found, Mapping) else {}


def _charge(error: BaseException, calls: Mapping[str, int]) -> None:
    """Attach the calls a failed search made to its error (the error classes are shared; the count is not)."""
    setattr(error, _CALLS_ATTRIBUTE, sum(calls.values()))
    setattr(error, _CALLS_BY_PROVIDER_ATTRIBUTE, {name: n for name, n in calls.items() if n})


def _url_key(url: str) -> tuple[str, str, str, str] | None:
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not host:
        return None
    netloc = host.lower() + (f":{port}" if port else "")
    return parts.scheme.lower(), netloc, parts.path or "/", parts.query


class ImageSearchService:
    def __init__(
        self,
        provider: ImageSearchProvider,
        *,
        cache: SearchCache | None = None,
        count: int = 5,
        blocked_domains: Iterable[str] = DEFAULT_BLOCKED_DOMAINS,
        min_side: int = 500,
        max_pages: int = 3,
        per_page: int = 20,
        retry: RetryPolicy | None = None,
        fallback: ImageSearchService | None = None,
    ) -> None:
        if count < 1 or max_pages < 1 or per_page < 1:
            raise ValueError("count, max_pages and per_page must be >= 1")
        self.provider = provider
        self.cache = cache
        self.count = count
        self.blocklist = DomainBlocklist(blocked_domains)
        self.min_side = min_side
        self.max_pages = max_pages
        self.per_page = per_page
        self.retry = retry or RetryPolicy()
        self.fallback = fallback
        self._refused: SearchQuotaError | None = None  # the primary's quota error, once the fallback took over
        self._lock = threading.Lock()

    @property
    def provider_name(self) -> str:
        return self.provider.name

    # filtering ------------------------------------------------------------------------------------------------
    def _refusal(self, candidate: ImageCandidate, seen: set[tuple[str, str, str, str]]) -> Refusal | None:
        url = candidate.image_url
        key = _url_key(url)
        if key is None:
            return Refusal("search", ReasonCode.BAD_URL, url, "not an absolute http(s) URL")
        if key in seen:
            return Refusal("search", ReasonCode.DUPLICATE, url, "same image URL as a better-ranked candidate")
        for label, host in (("image", host_of(url)), ("page", host_of(candidate.page_url))):
            blocked = self.blocklist.match(host)
            if blocked:
                return Refusal("search", ReasonCode.BLOCKED_DOMAIN, url, f"{label} host {host} is blocked ({blocked})")
        if _THUMBNAIL_HOST.match(key[1].split(":")[0]):
            return Refusal("search", ReasonCode.THUMBNAIL, url, "a Google thumbnail, not the original image")
        if key[2].lower().endswith(_UNSUPPORTED_EXTENSIONS):
            return Refusal("search", ReasonCode.UNSUPPORTED_FORMAT, url, "SVG/GIF by extension")
        sides = [s for s in (candidate.width, candidate.height) if s is not None]
        if sides and min(sides) < self.min_side:
            size = f"{candidate.width or '?'}x{candidate.height or '?'}"
            return Refusal("search", ReasonCode.TOO_SMALL, url, f"reported {size}, minimum side {self.min_side}")
        return None

    def filter(
        self, candidates: Sequence[ImageCandidate], seen: set[tuple[str, str, str, str]] | None = None
    ) -> tuple[list[ImageCandidate], list[Refusal]]:
        """Usable candidates (in order) and refusals for the rest; ``seen`` carries URLs across pages."""
        seen = set() if seen is None else seen
        usable: list[ImageCandidate] = []
        dropped: list[Refusal] = []
        for candidate in candidates:
            refusal = self._refusal(candidate, seen)
            if refusal is None:
                key = _url_key(candidate.image_url)
                assert key is not None  # _refusal returned None, so the URL parsed
                seen.add(key)
                usable.append(candidate)
            else:
                dropped.append(refusal)
        return usable, dropped

    @staticmethod
    def _ranked(candidates: Sequence[ImageCandidate]) -> list[ImageCandidate]:
        return [dataclasses.replace(c, rank=i) for i, c in enumerate(candidates)]

    # cache ----------------------------------------------------------------------------------------------------
    def _cached(self, query: str) -> list[ImageCandidate] | None:
        if self.cache is None:
            return None
        try:
            return self.cache.get(self.provider.name, query)
        except CatalogUnavailableError as exc:
            log.warning("search cache unavailable, searching anyway: %s", exc)
            return None

    def _store(self, query: str, candidates: list[ImageCandidate], calls: int) -> None:
        if self.cache is None:
            return
        try:
            self.cache.put(self.provider.name, query, candidates, calls)
        except CatalogUnavailableError as exc:
            log.warning("search results not cached: %s", exc)

    # search ---------------------------------------------------------------------------------------------------
    def search(self, query: str, *, refresh_cache: bool = False) -> SearchOutcome:
        """Up to ``count`` usable candidates for ``query``, ranked 0..n-1.

        Raises ``SearchQuotaError`` (quota/credentials: stop the run) and ``SearchUnavailableError`` (the
        provider kept failing); ``search_calls_of(error)`` tells how many requests the failed search made.
        An empty candidate list is a normal outcome: "no search results".
        ``refresh_cache``: ask the provider even if the cache holds results (they led nowhere last time); the
        fresh results replace the cached ones.
        """
        query = " ".join(query.split())
        if not query:
            return SearchOutcome(query="", candidates=[], calls=0)
        if self.fallback is None:
            return self._search_here(query, refresh_cache)
        try:
            return self._search_here(query, refresh_cache)
        except (SearchQuotaError, SearchUnavailableError) as exc:
            own = search_calls_by_provider_of(exc) or {self.provider.name: search_calls_of(exc)}
            if isinstance(exc, SearchQuotaError):
                with self._lock:
                    self._refused = self._refused or exc
            log.warning(
                "%s search failed (%s: %s); asking the fallback provider %s",
                self.provider.name,
                type(exc).__name__,
                exc,
                self.fallback.provider.name,
            )
        try:
            outcome = self.fallback.search(query, refresh_cache=refresh_cache)
        except (SearchQuotaError, SearchUnavailableError) as exc:
            _charge(exc, Counter(own) + Counter(search_calls_by_provider_of(exc)))
            raise
        calls = Counter(own) + Counter(outcome.calls_by_provider)
        return dataclasses.replace(
            outcome, calls=sum(calls.values()), calls_by_provider={name: n for name, n in calls.items() if n}
        )

    def _search_here(self, query: str, refresh_cache: bool) -> SearchOutcome:
        """The search with this service's own provider (and cache)."""
        name = self.provider.name
        cached = None if refresh_cache else self._cached(query)
        if cached is not None:
            usable, dropped = self.filter(cached)
            return SearchOutcome(
                query, self._ranked(usable[: self.count]), calls=0, cached=True, dropped=dropped, provider=name
            )
        refused = self._refused
        if refused is not None:
            error = SearchQuotaError(f"{refused} (earlier in this run)")
            _charge(error, {})
            raise error

        usable = []
        dropped = []
        seen: set[tuple[str, str, str, str]] = set()
        calls = 0

        def fetch(page: int) -> ProviderPage:
            nonlocal calls
            calls += 1  # every request sent counts, retries included (and those of a search that fails)
            return self.provider.fetch_page(query, page, self.per_page)

        for page in range(self.max_pages):
            try:
                result = self.retry.call(functools.partial(fetch, page), describe=f"{self.provider.name} image search")
            except (SearchUnavailableError, SearchQuotaError) as exc:
                _charge(exc, {self.provider.name: calls})
                raise
            dropped.extend(result.dropped)
            page_usable, page_dropped = self.filter(result.candidates, seen)
            usable.extend(page_usable)
            dropped.extend(page_dropped)
            if len(usable) >= self.count or not result.has_more:
                break
        candidates = self._ranked(usable[: self.count])
        self._store(query, candidates, calls)
        log.info(
            "%s search %r: %d usable, %d dropped, %d call(s)",
            self.provider.name,
            query,
            len(candidates),
            len(dropped),
            calls,
        )
        return SearchOutcome(
            query,
            candidates,
            calls,
            cached=False,
            dropped=dropped,
            provider=name,
            calls_by_provider={name: calls} if calls else {},
        )
