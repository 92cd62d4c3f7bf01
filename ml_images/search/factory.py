"""Build the configured search service from ``Settings`` (one place that knows which env var feeds what).

Every provider is wrapped in the process's shared token bucket for its endpoint (``ml_images.search.rate_limit``):
whatever builds a search service — a Dagster run, the CLI, a test — and however many threads use it, the
provider sees at most ``ML_IMAGES_SEARCH_RATE_LIMIT`` requests per second (its documented default when unset).
``ML_IMAGES_SEARCH_FALLBACK`` adds a second provider, with its own bucket, for when the primary one fails.
"""

from __future__ import annotations

import requests

from ml_images.errors import ConfigurationError
from ml_images.search import bounded_http
from ml_images.search.bounded_http import DEFAULT_LIMITS, DEFAULT_TIMEOUT, HttpLimits
from ml_images.search.cache import SearchCache
from ml_images.search.providers import (
    BraveImageSearch,
    GoogleCseImageSearch,
    ImageSearchProvider,
    SearxngImageSearch,
    SerpApiImageSearch,
)
from ml_images.search.rate_limit import rate_limited
from ml_images.search.service import ImageSearchService
from ml_images.settings import Settings

USER_AGENT = "ml_images/0.1 (product image search)"


def build_http_session(timeout: tuple[float, float] = DEFAULT_TIMEOUT) -> requests.Session:
    """The one session every search call goes through: default timeouts, calls a deadline can cut, JSON Accept,
    an honest User-Agent."""
    return bounded_http.build_http_session(timeout, user_agent=USER_AGENT)


def _require_for(value: str | None, variable: str, provider: str, role: str) -> str:
    if not value:
        raise ConfigurationError(f"{variable} is not set; it is required for {role}={provider}")
    return value


def build_provider(
    settings: Settings,
    session: requests.Session,
    *,
    provider: str | None = None,
    endpoint: str | None = None,
    role: str = "ML_IMAGES_SEARCH_PROVIDER",
    limits: HttpLimits = DEFAULT_LIMITS,
) -> ImageSearchProvider:
    """The provider ``provider`` (default: the primary one) at ``endpoint`` (default: the primary's override),
    with its usual credential variables and its calls bounded by ``limits``; ``role`` names the variable that
    chose it, for error messages."""
    if provider is None:
        provider, endpoint = settings.search_provider, settings.search_endpoint

    def _require(value: str | None, variable: str, provider: str) -> str:
        return _require_for(value, variable, provider, role)

    if provider == "brave":
        return BraveImageSearch(
            _require(settings.brave_api_key, "BRAVE_SEARCH_API_KEY", provider), session, endpoint, limits=limits
        )
    if provider == "serpapi":
        return SerpApiImageSearch(
            _require(settings.serpapi_api_key, "SERPAPI_API_KEY", provider), session, endpoint, limits=limits
        )
    if provider == "google":
        return GoogleCseImageSearch(
            _require(settings.google_api_key, "GOOGLE_API_KEY", provider),
            _require(settings.google_search_engine_id, "GOOGLE_SEARCH_ENGINE_ID", provider),
            session,
            endpoint,
            limits=limits,
        )
    if provider == "searxng":
        # SearXNG needs no credential: ML_IMAGES_SEARCH_ENDPOINT alone is enough to reach an instance.
        base_url = settings.searxng_url or (endpoint and endpoint.rsplit("/", 1)[0])
        return SearxngImageSearch(_require(base_url, "SEARXNG_URL", provider), session, endpoint, limits=limits)
    raise ConfigurationError(f"{role} must be one of brave, serpapi, google, searxng, got {provider!r}")


def build_search_service(
    settings: Settings, *, session: requests.Session | None = None, cache: SearchCache | None = None
) -> ImageSearchService:
    """The search service ``settings`` describe, rate-limited, with its fallback when one is configured;
    ConfigurationError names the missing variable."""
    session = session or build_http_session()
    primary = build_provider(settings, session)
    fallback = None
    if settings.search_fallback is not None:
        backup = build_provider(
            settings,
            session,
            provider=settings.search_fallback,
            endpoint=settings.search_fallback_endpoint,
            role="ML_IMAGES_SEARCH_FALLBACK",
        )
        fallback = ImageSearchService(
            rate_limited(backup, settings.rate_limit_for(backup.name)), cache=cache, count=settings.image_search_count
        )
    return ImageSearchService(
        rate_limited(primary, settings.rate_limit_for(primary.name)),
        cache=cache,
        count=settings.image_search_count,
        fallback=fallback,
    )
