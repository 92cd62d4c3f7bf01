"""Google Custom Search JSON API with ``searchType=image``."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import requests

from ml_images.outcomes import Refusal
from ml_images.search.bounded_http import DEFAULT_LIMITS, HttpLimits
from ml_images.search.candidates import ImageCandidate
from ml_images.search.providers.base import JsonApiProvider, ProviderPage
from ml_images.search.providers.fields import (
    candidate,
    items,
    mapping,
    no_image_url,
    positive_int,
    result_list,
    text,
    unsupported_format,
)

GOOGLE_CSE_ENDPOINT = "https://www.googleapis.com/customsearch/v1"


class GoogleCseImageSearch(JsonApiProvider):
    """Google Custom Search JSON API with ``searchType=image`` (closed to new customers; ends 2027-01-01).

    ``num`` is at most 10 and ``start + num`` at most 100. The next page starts at
    ``queries.nextPage[0].startIndex``, remembered per (query, page size) for the following call.
    """

    name = "google"
    MAX_NUM = 10
    MAX_RESULTS = 100
    _QUOTA_REASONS = frozenset(
        {"dailylimitexceeded", "ratelimitexceeded", "rate_limit_exceeded", "quotaexceeded", "userratelimitexceeded"}
    )

    def __init__(
        self,
        api_key: str,
        cx: str,
        session: requests.Session,
        endpoint: str | None = None,
        *,
        limits: HttpLimits = DEFAULT_LIMITS,
    ) -> None:
        super().__init__(session, endpoint or GOOGLE_CSE_ENDPOINT, secrets=[api_key, cx], limits=limits)
        self._api_key = api_key
        self._cx = cx
        self._next_start: OrderedDict[tuple[str, int, int], int] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _reasons(body: Mapping[str, Any]) -> list[str]:
        error = mapping(body.get("error"))
        reasons = [str(e.get("reason", "")) for e in items(error.get("errors"))]
        reasons.extend(str(d.get("reason", "")) for d in items(error.get("details")))
        if isinstance(error.get("status"), str):
            reasons.append(error["status"])
        return [r for r in reasons if r]

    def _error_detail(self, body: Mapping[str, Any]) -> str:
        return self._scrub(", ".join(self._reasons(body))[:200])

    def _is_quota(self, status: int, body: Mapping[str, Any]) -> bool:
        # Daily quota: 429 RESOURCE_EXHAUSTED / rateLimitExceeded (older keys: 403 dailyLimitExceeded).
        # It resets at midnight Pacific, so retrying within a run only burns time.
        reasons = {r.lower() for r in self._reasons(body)}
        return bool(reasons & self._QUOTA_REASONS) or "resource_exhausted" in reasons

    def _remember(self, key: tuple[str, int, int], start: int) -> None:
        with self._lock:
            self._next_start[key] = start
            self._next_start.move_to_end(key)
            while len(self._next_start) > 1024:
                self._next_start.popitem(last=False)

    def _results(self, data: Mapping[str, Any], page: int) -> list[Mapping[str, Any] | None]:
        """``items``; Google omits it when nothing matched (``totalResults`` "0") and past the last page."""
        if "items" not in data:
            info = data.get("searchInformation")
            total = mapping(info).get("totalResults")
            if isinstance(info, Mapping) and (str(total).strip() == "0" or page > 0):
                return []
        return result_list(self.name, data.get("items"), "items")

    def fetch_page(self, query: str, page: int, per_page: int) -> ProviderPage:
        num = max(1, min(per_page, self.MAX_NUM))
        with self._lock:
            start = self._next_start.get((query, num, page), 1 + page * num)
        num = min(num, self.MAX_RESULTS - start)
        if num < 1:
            return ProviderPage([], has_more=False)
        data = self._get_json(
            {"key": self._api_key, "cx": self._cx, "q": query, "searchType": "image", "num": num, "start": start}
        )
        next_pages = items(mapping(data.get("queries")).get("nextPage"))
        next_start = positive_int(next_pages[0].get("startIndex")) if next_pages else None
        has_more = next_start is not None and next_start < self.MAX_RESULTS
        if has_more and next_start is not None:
            self._remember((query, max(1, min(per_page, self.MAX_NUM)), page + 1), next_start)
        return self._page(self._results(data, page), has_more=has_more)

    def _read(self, rank: int, item: Mapping[str, Any]) -> ImageCandidate | Refusal:
        image = mapping(item.get("image"))
        url = text(item.get("link"))
        refused = unsupported_format(url, item.get("mime"), item.get("fileFormat"))
        if refused is not None:
            return refused
        found = candidate(
            url,
            width=image.get("width"),
            height=image.get("height"),
            page_url=image.get("contextLink"),
            title=item.get("title"),
            rank=rank,
        )
        return found or no_image_url(None, "a link")
