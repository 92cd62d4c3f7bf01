"""What the selection needs: read-only queries and the query builder (no search, no writes).

Returned by ``CatalogDatabaseResource.selection()``; used by the selection assets, the sensor, the coverage report
and the image pipeline's wiring.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ml_images.catalog.models import ProductMaster
from ml_images.catalog.selection import ImageCandidateSelector, MercadoLibreFilter
from ml_images.orchestration.metadata import PREVIEW_ROWS
from ml_images.search.query import QueryConstructor


@dataclass(frozen=True)
class SelectionServices:
    product_filter: MercadoLibreFilter
    selector: ImageCandidateSelector
    queries: QueryConstructor

    def select_ids(self, *, limit: int | None = None, product_ids: Sequence[int] | None = None) -> list[int]:
        """The pending products a selection takes (oldest first), restricted by ``limit`` / ``product_ids``.

        Explicitly named products skip the cooldown (asking for them is the reason to try again); the other
        rules still apply. Ids only: a selection may hold most of a large catalog.
        """
        ids = list(dict.fromkeys(product_ids)) if product_ids else None
        return self.selector.pending_product_ids(limit, product_ids=ids, ignore_cooldown=ids is not None)

    def preview(self, product_ids: Sequence[int]) -> list[ProductMaster]:
        """The products (rows) of the first ``PREVIEW_ROWS`` selected ids, in the same order."""
        ids = list(product_ids)[:PREVIEW_ROWS]
        if not ids:
            return []
        found = {p.id: p for p in self.selector.get_pending_image_products(product_ids=ids, ignore_cooldown=True)}
        return [found[i] for i in ids if i in found]
