"""Brave Search API, image endpoint: the default provider."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests

from ml_images.outcomes import Refusal
from ml_images.search.bounded_http import DEFAULT_LIMITS, HttpLimits
from ml_images.search.candidates import ImageCandidate
from ml_images.search.providers.base import JsonApiProvider, ProviderPage
from ml_images.search.providers.fields import candidate, mapping, no_image_url, result_list, text

BRAVE_ENDPOINT = "https://api.search.brave.com/res/v1/images/search"


class BraveImageSearch(JsonApiProvider):
    """Brave Search API, image endpoint (the default provider).

    The image endpoint has no offset parameter and a call costs the same for 1 or 200 results, so the
    first page asks for at least 50 results and there is never a second page.
    """

    name = "brave"
    MAX_COUNT = 200
    MIN_COUNT = 50

    def __init__(
        self,
        api_key: str,
        session: requests.Session,
        endpoint: str | None = None,
        country: str = "AR",
        search_lang: str = "es",
        safesearch: str = "strict",
        *,
        limits: HttpLimits = DEFAULT_LIMITS,
    ) -> None:
        super().__init__(session, endpoint or BRAVE_ENDPOINT, secrets=[api_key], limits=limits)
        self._api_key = api_key
        self.country = country
        self.search_lang = search_lang
        self.safesearch = safesearch

    def _error_detail(self, body: Mapping[str, Any]) -> str:
        error = mapping(body.get("error"))
        parts = [str(error.get(k)) for k in ("code", "detail") if isinstance(error.get(k), str)]
        return self._scrub(" ".join(parts)[:200])

    def _is_quota(self, status: int, body: Mapping[str, Any]) -> bool:
        # 429 is both the per-second rate limit (retry) and the monthly quota (stop): tell them apart.
        error = mapping(body.get("error"))
        if str(error.get("code", "")).upper() in ("QUOTA_LIMITED", "QUOTA_EXCEEDED"):
            return True
        meta = mapping(error.get("meta"))
        limit, current = meta.get("quota_limit"), meta.get("quota_current")
        return isinstance(limit, int) and isinstance(current, int) and 0 < limit <= current

    def fetch_page(self, query: str, page: int, per_page: int) -> ProviderPage:
        if page > 0:
            return ProviderPage([], has_more=False)
        count = min(self.MAX_COUNT, max(per_page, self.MIN_COUNT))
        data = self._get_json(
            {
                "q": query,
                "country": self.country,
                "search_lang": self.search_lang,
                "count": count,
                "safesearch": self.safesearch,
                "spellcheck": "false",  # product names and SKUs must not be "corrected"
            },
            headers={"X-Subscription-Token": self._api_key, "Accept": "application/json"},
        )
        # Brave answers a query without matches with an empty ``results`` list.
        return self._page(result_list(self.name, data.get("results"), "results"), has_more=False)

    def _read(self, rank: int, item: Mapping[str, Any]) -> ImageCandidate | Refusal:
        props = mapping(item.get("properties"))
        found = candidate(
            props.get("url"),
            width=props.get("width"),
            height=props.get("height"),
            page_url=item.get("url"),
            title=item.get("title"),
            rank=rank,
        )
        return found or no_image_url(text(item.get("url")), "an image URL")
