"""Build the configured search service from ``Settings`` (one place that knows which env var feeds what)."""

from __future__ import annotations

import requests

from ml_images.errors import ConfigurationError
from ml_images.search import bounded_http
from ml_images.search.bounded_http import DEFAULT_TIMEOUT
from ml_images.search.cache import SearchCache
from ml_images.search.providers import (
    BraveImageSearch,
    GoogleCseImageSearch,
    ImageSearchProvider,
    SearxngImageSearch,
    SerpApiImageSearch,
)
from ml_images.search.service import ImageSearchService
from ml_images.settings import Settings

USER_AGENT = "ml_images/0.1 (product image search)"


def build_http_session(timeout: tuple[float, float] = DEFAULT_TIMEOUT) -> requests.Session:
    """The one session every search call goes through: default timeouts, calls a deadline can cut, JSON Accept,
    an honest User-Agent."""
    return bounded_http.build_http_session(timeout, user_agent=USER_AGENT)


def _require(value: str | None, variable: str, provider: str) -> str:
    if not value:
        raise ConfigurationError(f"{variable} is not set; it is required for ML_IMAGES_SEARCH_PROVIDER={provider}")
    return value


def build_provider(settings: Settings, session: requests.Session) -> ImageSearchProvider:
    provider = settings.search_provider
    endpoint = settings.search_endpoint
    if provider == "brave":
        return BraveImageSearch(_require(settings.brave_api_key, "BRAVE_SEARCH_API_KEY", provider), session, endpoint)
    if provider == "serpapi":
        return SerpApiImageSearch(_require(settings.serpapi_api_key, "SERPAPI_API_KEY", provider), session, endpoint)
    if provider == "google":
        return GoogleCseImageSearch(
            _require(settings.google_api_key, "GOOGLE_API_KEY", provider),
            _require(settings.google_search_engine_id, "GOOGLE_SEARCH_ENGINE_ID", provider),
            session,
            endpoint,
        )
    if provider == "searxng":
        # SearXNG needs no credential: ML_IMAGES_SEARCH_ENDPOINT alone is enough to reach an instance.
        base_url = settings.searxng_url or (endpoint and endpoint.rsplit("/", 1)[0])
        return SearxngImageSearch(_require(base_url, "SEARXNG_URL", provider), session, endpoint)
    raise ConfigurationError(
        f"ML_IMAGES_SEARCH_PROVIDER must be one of brave, serpapi, google, searxng, got {provider!r}"
    )


def build_search_service(
    settings: Settings, *, session: requests.Session | None = None, cache: SearchCache | None = None
) -> ImageSearchService:
    """The search service ``settings`` describe; ConfigurationError names the missing variable."""
    provider = build_provider(settings, session or build_http_session())
    return ImageSearchService(provider, cache=cache, count=settings.image_search_count)
