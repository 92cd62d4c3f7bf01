"""How far the catalog's Mercado Libre products are covered with pictures: the numbers of the ``image_coverage``
report, read from the catalog with a handful of aggregate queries (no per-product work in Python)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from ml_images.catalog.db import translate_connection_errors
from ml_images.catalog.models import ListingStatus
from ml_images.catalog.selection import ImageCandidateSelector
from ml_images.outcomes import ProductStatus

#: Products listed in the "needs attention" table (the counts cover them all).
ATTENTION_ROWS = 50
#: Listings in ERROR that this pipeline did not set (no attempt of ours explains them).
OTHER_ERROR = "other"


@dataclass(frozen=True)
class AttentionRow:
    product_id: int
    code: str
    name: str
    reason: str
    since: datetime | None


@dataclass(frozen=True)
class CoverageReport:
    eligible: int
    with_pictures: int
    pending: int
    in_cooldown: int
    errors_by_reason: dict[str, int]
    search_calls_day: int
    search_calls_week: int
    pictures_stored_day: int
    pictures_stored_week: int
    needing_attention: int
    attention: list[AttentionRow] = field(default_factory=list)

    @property
    def without_pictures(self) -> int:
        return self.eligible - self.with_pictures

    @property
    def listings_in_error(self) -> int:
        return sum(self.errors_by_reason.values())


class CoverageReporter:
    """Computes a ``CoverageReport`` with the selection's own rules (eligibility, cooldown)."""

    def __init__(self, selector: ImageCandidateSelector, now: Callable[[], datetime] | None = None) -> None:
        self.selector = selector
        self.now = now or selector.product_filter.now

    def report(self) -> CoverageReport:
        m = self.selector.models
        ProductMaster, ImageFetchAttempt, MercadoLibreListing = (
            m.ProductMaster,
            m.ImageFetchAttempt,
            m.MercadoLibreListing,
        )
        eligible = self.selector.product_filter.eligible_condition()
        no_images = self.selector.has_no_images_condition()
        cooling = ~self.selector.not_cooling_down_condition()
        now = self.now()
        day, week = now - timedelta(days=1), now - timedelta(days=7)
        latest = self._latest_attempts(ImageFetchAttempt)

        def count(*conditions: sa.ColumnElement[bool]) -> sa.ScalarSelect[int]:
            return sa.select(sa.func.count()).select_from(ProductMaster).where(*conditions).scalar_subquery()

        counts = sa.select(
            count(eligible),
            count(eligible, ~no_images),
            count(eligible, no_images, cooling),
            sa.select(sa.func.coalesce(sa.func.sum(ImageFetchAttempt.search_calls), 0))
            .where(ImageFetchAttempt.started_at >= day)
            .scalar_subquery(),
            sa.select(sa.func.coalesce(sa.func.sum(ImageFetchAttempt.search_calls), 0))
            .where(ImageFetchAttempt.started_at >= week)
            .scalar_subquery(),
            self._stored_since(day),
            self._stored_since(week),
        )
        reason = sa.func.coalesce(latest.c.reason_code, OTHER_ERROR)
        errors = (
            sa.select(reason, sa.func.count())
            .select_from(MercadoLibreListing)
            .outerjoin(latest, latest.c.product_id == MercadoLibreListing.product_master_id)
            .where(MercadoLibreListing.status == ListingStatus.ERROR)
            .group_by(reason)
        )
        # Eligible products still without pictures whose latest attempt found nothing usable or could not reach
        # a candidate: what a person can act on (a better description, a distributor photo, a manual upload).
        needs_attention = [
            eligible,
            no_images,
            latest.c.outcome.in_([ProductStatus.NO_IMAGES.value, ProductStatus.FAILED.value]),
        ]
        attention = (
            sa.select(
                ProductMaster.id,
                ProductMaster.code,
                ProductMaster.description,
                latest.c.reason_code,
                latest.c.outcome,
                latest.c.finished_at,
            )
            .join(latest, latest.c.product_id == ProductMaster.id)
            .where(*needs_attention)
            .order_by(latest.c.finished_at.desc(), ProductMaster.id)
            .limit(ATTENTION_ROWS)
        )
        attention_count = (
            sa.select(sa.func.count())
            .select_from(ProductMaster)
            .join(latest, latest.c.product_id == ProductMaster.id)
            .where(*needs_attention)
        )
        with translate_connection_errors(self.selector.product_filter.engine.url), self.selector.session_factory() as s:
            (n_eligible, n_with, n_cooling, calls_day, calls_week, stored_day, stored_week) = s.execute(counts).one()
            pending = self.selector.count_pending()
            errors_by_reason = {str(r): int(n) for r, n in s.execute(errors)}
            rows = [
                AttentionRow(
                    product_id=int(pid),
                    code=code or "",
                    name=" ".join((description or "").split())[:120],
                    reason=reason_code or outcome,
                    since=finished,
                )
                for pid, code, description, reason_code, outcome, finished in s.execute(attention)
            ]
            n_attention = int(s.scalar(attention_count) or 0)
        return CoverageReport(
            eligible=int(n_eligible),
            with_pictures=int(n_with),
            pending=pending,
            in_cooldown=int(n_cooling),
            errors_by_reason=dict(sorted(errors_by_reason.items(), key=lambda item: (-item[1], item[0]))),
            search_calls_day=int(calls_day),
            search_calls_week=int(calls_week),
            pictures_stored_day=int(stored_day),
            pictures_stored_week=int(stored_week),
            needing_attention=n_attention,
            attention=rows,
        )

    def _stored_since(self, since: datetime) -> sa.ScalarSelect[int]:
        """Pictures stored since then: on a Django catalog, those the project recorded whose row still exists."""
        m = self.selector.models
        if not self.selector.product_filter.layout.is_django:
            return sa.select(sa.func.count()).where(m.ProductImage.created_at >= since).scalar_subquery()
        return (
            sa.select(sa.func.count())
            .select_from(m.ImageDetail)
            .join(m.ProductImage, m.ProductImage.id == m.ImageDetail.product_image_id)
            .where(m.ImageDetail.created_at >= since)
            .scalar_subquery()
        )

    @staticmethod
    def _latest_attempts(ImageFetchAttempt: Any) -> sa.Subquery:
        """Each product's latest finished attempt (outcome, reason, when)."""
        attempt = aliased(ImageFetchAttempt)
        newest = sa.select(sa.func.max(attempt.id)).where(attempt.finished_at.is_not(None)).group_by(attempt.product_id)
        return (
            sa.select(
                ImageFetchAttempt.product_id,
                ImageFetchAttempt.outcome,
                ImageFetchAttempt.reason_code,
                ImageFetchAttempt.finished_at,
            )
            .where(ImageFetchAttempt.id.in_(newest))
            .subquery("latest_attempt")
        )
