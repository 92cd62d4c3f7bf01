"""How many search calls a selection will cost, before anything is searched (shown by the selection asset).

A product is expected to pay one search call (a second page is asked for only when the first gives too few usable
results) unless:

* ``ML_IMAGES_SEARCH_MODE=never`` — nothing is ever searched;
* ``fallback`` and the product has a distributor photo (``image_url``) — the search is paid for only if that photo
  is refused, which cannot be known before it is judged, so it counts zero;
* its search results are cached and unexpired for the provider and the query the pipeline will send;
* it has nothing to search for (no query).

It is an estimate: a product whose last attempt found nothing searches afresh (its cache entry is not replayed),
and a fallback provider's calls are not foreseen.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ml_images.catalog.layout import models_of
from ml_images.catalog.models import utcnow
from ml_images.search.distributor import SearchMode
from ml_images.search.query import QueryConstructor

_CHUNK = 500  # ids per IN (...) list: below SQLite's bound-parameter limit


@dataclass(frozen=True)
class SearchCallEstimate:
    products: int
    search_calls: int  # products expected to pay for a search (at least one call each)
    distributor_photos: int  # products whose distributor photo spares the search (fallback/never)
    cached: int  # products whose results are already cached
    no_query: int
    mode: str
    provider: str

    def metadata(self) -> dict[str, Any]:
        """Metadata entries for the selection asset."""
        return {
            "estimated_search_calls": self.search_calls,
            "estimate_distributor_photos": self.distributor_photos,
            "estimate_cached_searches": self.cached,
            "search_mode": self.mode,
            "search_provider": self.provider,
        }


class SearchCostEstimator:
    def __init__(
        self,
        session_factory: Callable[[], Session],
        queries: QueryConstructor,
        *,
        mode: SearchMode,
        provider: str,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self._session_factory = session_factory
        self._queries = queries
        self._mode = mode
        self._provider = provider
        self._now = now

    def estimate(self, product_ids: Sequence[int]) -> SearchCallEstimate:
        ids = list(dict.fromkeys(product_ids))
        calls = distributor = cached = no_query = 0
        if self._mode is SearchMode.NEVER:
            return SearchCallEstimate(len(ids), 0, 0, 0, 0, self._mode.value, self._provider)
        now = self._now()
        with self._session_factory() as session:
            ProductMaster = models_of(session).ProductMaster  # the catalog layout's table
            for start in range(0, len(ids), _CHUNK):
                products = session.scalars(
                    sa.select(ProductMaster).where(ProductMaster.id.in_(ids[start : start + _CHUNK]))
                )
                to_search: dict[int, str] = {}
                for product in products:
                    if self._mode is SearchMode.FALLBACK and (product.image_url or "").strip():
                        distributor += 1
                        continue
                    query = " ".join(self._queries.build(product).split())
                    if not query:
                        no_query += 1
                        continue
                    to_search[product.id] = query
                hits = self._cached_queries(session, set(to_search.values()), now)
                for query in to_search.values():
                    if query in hits:
                        cached += 1
                    else:
                        calls += 1
        return SearchCallEstimate(len(ids), calls, distributor, cached, no_query, self._mode.value, self._provider)

    def _cached_queries(self, session: Session, queries: set[str], now: datetime) -> set[str]:
        if not queries:
            return set()
        SearchCacheEntry = models_of(session).SearchCacheEntry  # the catalog layout's table
        rows = session.scalars(
            sa.select(SearchCacheEntry.query).where(
                SearchCacheEntry.provider == self._provider,
                SearchCacheEntry.query.in_(sorted(queries)),
                SearchCacheEntry.expires_at > now,
            )
        )
        return set(rows)
