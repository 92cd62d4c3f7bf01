"""What the pipeline recorded about the images it stored, read for the asset check ``stored_images_are_valid``.

Plain values, detached from any session: the check verifies them and the objects from several threads.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session

from ml_images.catalog.layout import layout_of
from ml_images.errors import CatalogUnavailableError

_CHUNK = 500  # stays below SQLite's bound-parameter limit whatever the batch size


@dataclass(frozen=True)
class StoredImageRecord:
    """One ``product_image`` row as written with its object: the key, the canvas size and the JPEG's sha256."""

    product_id: int
    order: int
    storage_key: str | None
    width: int | None
    height: int | None
    content_hash: str | None


class StoredImages:
    def __init__(self, session_factory: Callable[[], Session]) -> None:
        self._session_factory = session_factory

    def recently_stored_products(self, limit: int) -> list[int]:
        """The ``limit`` products whose images were stored most recently, newest first."""
        pictures = layout_of(self._session_factory).picture_rows().subquery()
        query = (
            sa.select(pictures.c.product_id)
            .group_by(pictures.c.product_id)
            .order_by(sa.func.max(pictures.c.created_at).desc())
            .limit(limit)
        )
        try:
            with self._session_factory() as session:
                return list(session.scalars(query))
        except (OperationalError, PoolTimeoutError) as exc:
            raise CatalogUnavailableError(
                f"catalog database unavailable while reading stored images ({type(exc).__name__})"
            ) from exc

    def by_product(self, product_ids: Sequence[int]) -> dict[int, list[StoredImageRecord]]:
        """Each product's rows ordered by ``order``; a product without rows maps to an empty list."""
        unique = list(dict.fromkeys(product_ids))
        found: dict[int, list[StoredImageRecord]] = {pid: [] for pid in unique}
        # The picture rows on either catalog layout (on a Django catalog the recorded figures are the project's).
        pictures = layout_of(self._session_factory).picture_rows().subquery()
        columns = (
            pictures.c.product_id,
            pictures.c.order,
            pictures.c.storage_key,
            pictures.c.width,
            pictures.c.height,
            pictures.c.content_hash,
        )
        try:
            with self._session_factory() as session:
                for start in range(0, len(unique), _CHUNK):
                    chunk = unique[start : start + _CHUNK]
                    rows = session.execute(
                        sa.select(*columns)
                        .where(pictures.c.product_id.in_(chunk))
                        .order_by(pictures.c.product_id, pictures.c.order)
                    )
                    for row in rows:
                        found[row.product_id].append(StoredImageRecord(*row))
        except (OperationalError, PoolTimeoutError) as exc:
            raise CatalogUnavailableError(
                f"catalog database unavailable while reading stored images ({type(exc).__name__})"
            ) from exc
        return found
