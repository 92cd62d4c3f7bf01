"""Loading the products a batch is about, detached from their session so worker threads can read them."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import sqlalchemy as sa
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session

from ml_images.catalog.layout import models_of
from ml_images.catalog.models import ProductMaster
from ml_images.errors import CatalogUnavailableError

_CHUNK = 500  # stays below SQLite's bound-parameter limit whatever the batch size


class CatalogProducts:
    def __init__(self, session_factory: Callable[[], Session]) -> None:
        self._session_factory = session_factory

    def load(self, product_ids: Sequence[int]) -> dict[int, ProductMaster]:
        """The products that exist among ``product_ids``; missing ids are simply absent from the result."""
        found: dict[int, ProductMaster] = {}
        unique = list(dict.fromkeys(product_ids))
        try:
            with self._session_factory() as session:
                for start in range(0, len(unique), _CHUNK):
                    chunk = unique[start : start + _CHUNK]
                    product = models_of(session).ProductMaster
                    rows = session.scalars(sa.select(product).where(product.id.in_(chunk))).all()
                    found.update((row.id, row) for row in rows)
                # Column attributes are loaded; detaching lets other threads read them without this session.
                session.expunge_all()
        except (OperationalError, PoolTimeoutError) as exc:
            raise CatalogUnavailableError(
                f"catalog database unavailable while loading products ({type(exc).__name__})"
            ) from exc
        return found
