"""SerpApi's ``google_images`` engine: Google Images results through SerpApi."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests

from ml_images.errors import SearchUnavailableError
from ml_images.outcomes import Refusal
from ml_images.search.bounded_http import DEFAULT_LIMITS, HttpLimits
from ml_images.search.candidates import ImageCandidate
from ml_images.search.providers.base import JsonApiProvider, ProviderPage
from ml_images.search.providers.fields import candidate, mapping, no_image_url, result_list, text

SERPAPI_ENDPOINT = "https://serpapi.com/search.json"


class SerpApiImageSearch(JsonApiProvider):
    """SerpApi ``google_images`` engine: Google Images results, about 100 per page (``ijn`` 0..99)."""

    name = "serpapi"
    MAX_PAGE = 99

    def __init__(
        self,
        api_key: str,
        session: requests.Session,
        endpoint: str | None = None,
        gl: str = "ar",
        hl: str = "es",
        *,
        google_domain: str = "google.com.ar",
        limits: HttpLimits = DEFAULT_LIMITS,
    ) -> None:
        super().__init__(session, endpoint or SERPAPI_ENDPOINT, secrets=[api_key], limits=limits)
        self._api_key = api_key
        self.gl = gl
        self.hl = hl
        self.google_domain = google_domain

    def _is_quota(self, status: int, body: Mapping[str, Any]) -> bool:
        # SerpApi answers 429 both for the hourly throughput limit (retry) and an exhausted plan (stop).
        error = body.get("error")
        return isinstance(error, str) and "run out of searches" in error.lower()

    def fetch_page(self, query: str, page: int, per_page: int) -> ProviderPage:
        if page > self.MAX_PAGE:
            return ProviderPage([], has_more=False)
        data = self._get_json(
            {
                "engine": "google_images",
                "q": query,
                "gl": self.gl,
                "hl": self.hl,
                "google_domain": self.google_domain,
                "ijn": page,
                "api_key": self._api_key,
            }
        )
        error = data.get("error")
        if isinstance(error, str):
            if "hasn't returned any results" in error or "no results" in error.lower():
                return ProviderPage([], has_more=False)  # SerpApi reports an empty result as an error string
            raise SearchUnavailableError(f"serpapi: {self._scrub(error[:200])}")
        state = mapping(data.get("search_information")).get("image_results_state")
        if "images_results" not in data and isinstance(state, str) and "empty" in state.lower():
            return ProviderPage([], has_more=False)  # "Fully empty": the other way SerpApi says "no results"
        results = result_list(self.name, data.get("images_results"), "images_results")
        pagination = data.get("serpapi_pagination")
        has_more = bool(mapping(pagination).get("next")) if pagination is not None else bool(results)
        return self._page(results, has_more=has_more and page < self.MAX_PAGE)

    def _read(self, rank: int, item: Mapping[str, Any]) -> ImageCandidate | Refusal:
        found = candidate(
            item.get("original"),
            width=item.get("original_width"),
            height=item.get("original_height"),
            page_url=item.get("link"),
            title=item.get("title"),
            rank=rank,
        )
        return found or no_image_url(text(item.get("link")), "an original URL")
