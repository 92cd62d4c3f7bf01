"""A SearXNG instance's JSON API (self-hosted metasearch)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests

from ml_images.outcomes import Refusal
from ml_images.redaction import url_secrets
from ml_images.search.bounded_http import DEFAULT_LIMITS, HttpLimits
from ml_images.search.candidates import ImageCandidate
from ml_images.search.providers.base import JsonApiProvider, ProviderPage
from ml_images.search.providers.fields import candidate, no_image_url, resolution, result_list, text, unsupported_format
from ml_images.search.retry import RetryableSearchError


class SearxngImageSearch(JsonApiProvider):
    """A SearXNG instance's JSON API (``format=json`` must be enabled in its settings.yml, else 403)."""

    name = "searxng"

    def __init__(
        self,
        base_url: str,
        session: requests.Session,
        endpoint: str | None = None,
        *,
        language: str = "es-AR",
        safesearch: int = 1,
        limits: HttpLimits = DEFAULT_LIMITS,
    ) -> None:
        search_url = endpoint or base_url.rstrip("/") + "/search"
        # An instance behind basic auth or a token parameter has secrets in its URL.
        super().__init__(session, search_url, secrets=url_secrets(base_url), limits=limits)
        self.language = language
        self.safesearch = safesearch

    def fetch_page(self, query: str, page: int, per_page: int) -> ProviderPage:
        data = self._get_json(
            {
                "q": query,
                "format": "json",
                "categories": "images",
                "pageno": page + 1,
                "language": self.language,
                "safesearch": self.safesearch,
            }
        )
        results = result_list(self.name, data.get("results"), "results")
        unresponsive = data.get("unresponsive_engines")
        if not results and isinstance(unresponsive, list) and unresponsive:
            # Every engine that could have answered failed (CAPTCHA, timeout): that is not "no results".
            engines = ", ".join(str(e[0]) for e in unresponsive if isinstance(e, list) and e)[:200]
            raise RetryableSearchError(f"searxng: no results and engines unresponsive ({self._scrub(engines)})")
        return self._page(results, has_more=bool(results))

    def _read(self, rank: int, item: Mapping[str, Any]) -> ImageCandidate | Refusal:
        url = text(item.get("img_src"))
        refused = unsupported_format(url, item.get("img_format"))
        if refused is not None:
            return refused
        width, height = resolution(item.get("resolution"))
        found = candidate(url, width=width, height=height, page_url=item.get("url"), title=item.get("title"), rank=rank)
        return found or no_image_url(text(item.get("url")), "img_src")
