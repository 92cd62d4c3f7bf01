"""Which products the pipeline is done with: their pictures are stored and old enough, or they left the catalog.

Used to keep the number of Dagster partitions bounded (``ml-images partitions prune``): a done product's partition
can go, its pictures and rows stay.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from ml_images.catalog.db import translate_connection_errors
from ml_images.catalog.layout import layout_of
from ml_images.outcomes import ProductStatus

_CHUNK = 500  # ids per IN (...) list: below SQLite's bound-parameter limit


@dataclass(frozen=True)
class DoneProducts:
    stored: list[int]  # pictures stored, the last time before the cut-off
    gone: list[int]  # no longer in the catalog


class DoneProductFinder:
    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.session_factory = session_factory

    def _url(self) -> sa.URL | None:
        bind = self.session_factory.kw.get("bind")
        return getattr(bind, "url", None)

    @staticmethod
    def _newest_query(layout: Any, created: Any) -> sa.Select[Any]:
        m = layout.models
        query = sa.select(m.ProductImage.product_id, sa.func.max(created))
        if layout.is_django:
            query = query.outerjoin(m.ImageDetail, m.ImageDetail.product_image_id == m.ProductImage.id)
        return query

    def find(self, product_ids: Iterable[int], stored_before: datetime) -> DoneProducts:
        """Of ``product_ids``: those with pictures whose last storing is before ``stored_before``, and those gone.

        The last storing is the last ``stored`` attempt's end, or the newest picture row when no attempt recorded
        it (pictures that came from elsewhere)."""
        layout = layout_of(self.session_factory)
        m = layout.models
        ProductMaster, ProductImage, ImageFetchAttempt = m.ProductMaster, m.ProductImage, m.ImageFetchAttempt
        # A Django picture row has no time of its own: the project's detail row (when it wrote it) stands in.
        created = m.ImageDetail.created_at if layout.is_django else ProductImage.created_at
        wanted = sorted(set(product_ids))
        stored: list[int] = []
        gone: list[int] = []
        with translate_connection_errors(self._url()), self.session_factory() as session:
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start : start + _CHUNK]
                present = set(session.scalars(sa.select(ProductMaster.id).where(ProductMaster.id.in_(chunk))))
                gone.extend(pid for pid in chunk if pid not in present)
                newest_picture: dict[int, datetime | None] = dict(
                    session.execute(
                        self._newest_query(layout, created)
                        .where(ProductImage.product_id.in_(chunk))
                        .group_by(ProductImage.product_id)
                    ).all()
                )
                last_stored: dict[int, datetime | None] = dict(
                    session.execute(
                        sa.select(ImageFetchAttempt.product_id, sa.func.max(ImageFetchAttempt.finished_at))
                        .where(
                            ImageFetchAttempt.product_id.in_(list(newest_picture)),
                            ImageFetchAttempt.outcome == ProductStatus.STORED.value,
                        )
                        .group_by(ImageFetchAttempt.product_id)
                    ).all()
                )
                for pid, newest in newest_picture.items():
                    when = last_stored.get(pid) or newest
                    if when is not None and when < stored_before:
                        stored.append(pid)
        return DoneProducts(stored=sorted(stored), gone=gone)
