"""Which products are eligible for Mercado Libre, and which of those still need images.

Both selections are single SQL queries (no per-row filtering in Python) so they stay fast on a catalog of a
million products: the partial index ``ix_product_master_ml_candidates`` serves the flag, freshness and ordering
conditions, and the anti-joins on ``product_image`` / ``image_fetch_attempt`` use their ``product_id`` indexes.
The same queries run on a Django catalog's tables (``layout.py``): the classes come from the engine's layout.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Sequence
from datetime import datetime, timedelta
from typing import Any, TypedDict, Unpack

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import QueryableAttribute, Session, aliased, joinedload, selectinload, sessionmaker
from sqlalchemy.orm.attributes import set_committed_value

from ml_images.catalog.claims_defaults import DEFAULT_CLAIM_LEASE_SECONDS
from ml_images.catalog.db import translate_connection_errors
from ml_images.catalog.layout import CatalogLayout, CatalogModels, layout_of
from ml_images.catalog.models import ProductMaster, utcnow
from ml_images.catalog.rules import PublicationRules
from ml_images.outcomes import ProductStatus, ReasonCode

# Up to this many ids are sent as plain bound parameters; beyond it one array/JSON parameter is used
# (SQLite refuses statements with more than 32766 parameters).
_INLINE_ID_LIMIT = 500


def _engine(session_factory: sessionmaker[Session]) -> sa.Engine:
    bind = session_factory.kw.get("bind")
    if not isinstance(bind, sa.Engine):
        raise ValueError("the session factory must be bound to an engine (make_session_factory does that)")
    return bind


def _id_membership(column: QueryableAttribute[int], ids: Collection[int], dialect: str) -> sa.ColumnElement[bool]:
    values = sorted({int(i) for i in ids})
    if len(values) <= _INLINE_ID_LIMIT:
        return column.in_(values)
    if dialect == "postgresql":
        return column == sa.any_(sa.literal(values, postgresql.ARRAY(sa.BigInteger)))
    if dialect == "sqlite":
        listed = sa.func.json_each(sa.literal(json.dumps(values))).table_valued("value")
        return column.in_(sa.select(listed.c.value))
    return column.in_(values)


class MercadoLibreFilter:
    """Eligibility for Mercado Libre: flagged, active, priced, categorised, fresh, and matching a publication rule.

    ``is_eligible`` (Python, for one loaded product) and ``eligible_condition`` (SQL) implement the same rules.
    """

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        rules: PublicationRules,
        freshness_hours: float = 24.0,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        if freshness_hours < 0:
            raise ValueError(f"freshness_hours must be >= 0, got {freshness_hours}")
        self.session_factory = session_factory
        self.layout: CatalogLayout = layout_of(session_factory)
        self.models: CatalogModels = self.layout.models
        self.rules = rules
        self.freshness_hours = freshness_hours
        self.now = now

    @property
    def engine(self) -> sa.Engine:
        return _engine(self.session_factory)

    @property
    def dialect_name(self) -> str:
        return str(self.engine.dialect.name)

    @property
    def _url(self) -> sa.URL:
        return self.engine.url

    def freshness_cutoff(self) -> datetime:
        return self.now() - timedelta(hours=self.freshness_hours)

    def is_eligible(self, product: ProductMaster) -> bool:
        last_updated = product.last_updated
        return bool(
            product.is_for_mercadolibre
            and product.is_active
            and product.price is not None
            and product.category is not None
            and last_updated is not None
            and last_updated >= self.freshness_cutoff()
            and self.rules.matches(product.category, product.price)
        )

    def eligible_condition(self) -> sa.ColumnElement[bool]:
        """The eligibility rules as one SQL boolean expression over ``ProductMaster``."""
        pm = self.models.ProductMaster
        return sa.and_(
            # The flags are written as the partial index's predicate so the planner can use that index.
            pm.is_for_mercadolibre == sa.true(),
            pm.is_active == sa.true(),
            pm.price.is_not(None),
            pm.category.is_not(None),
            pm.last_updated >= self.freshness_cutoff(),
            self.rules.sql_condition(pm.category, pm.price),
        )

    def eligible_query(self, limit: int | None = None) -> sa.Select[Any]:
        pm = self.models.ProductMaster
        query = (
            sa.select(pm)
            .where(self.eligible_condition())
            .order_by(pm.last_updated, pm.id)
            .options(joinedload(pm.listing), selectinload(pm.images))
        )
        return query if limit is None else query.limit(limit)

    def get_eligible_products(self, limit: int | None = None) -> list[ProductMaster]:
        """Eligible products, oldest ``last_updated`` first; detached, with ``listing`` and ``images`` loaded."""
        _check_limit(limit)
        with translate_connection_errors(self._url), self.session_factory() as session:
            return list(session.scalars(self.eligible_query(limit)).unique())

    def count_eligible(self) -> int:
        query = sa.select(sa.func.count()).select_from(self.models.ProductMaster).where(self.eligible_condition())
        with translate_connection_errors(self._url), self.session_factory() as session:
            return int(session.scalar(query) or 0)


def _check_limit(limit: int | None) -> None:
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")


class PendingScope(TypedDict, total=False):
    """Which pending products a selection covers (every key optional, the rules always apply): ``product_ids``
    narrows it to those products; ``exclude_ids`` drops some (e.g. partitions already registered);
    ``exclude_in_flight`` drops products another run has claimed; ``ignore_cooldown`` lets an explicit request
    retry a product whose last attempt found nothing."""

    product_ids: Sequence[int] | None
    exclude_ids: Collection[int]
    exclude_in_flight: bool
    ignore_cooldown: bool


class ImageCandidateSelector:
    """Eligible products that have no ``product_image`` rows and are not cooling down after a fruitless attempt.

    ``claim_lease_seconds``: a claim whose heartbeat is younger than this is in flight (see ``ImageRecorder``).
    """

    def __init__(
        self,
        product_filter: MercadoLibreFilter,
        cooldown_hours: float = 24.0,
        claim_lease_seconds: float = DEFAULT_CLAIM_LEASE_SECONDS,
    ) -> None:
        if cooldown_hours < 0 or claim_lease_seconds <= 0:
            raise ValueError("cooldown_hours must be >= 0 and claim_lease_seconds > 0")
        self.product_filter = product_filter
        self.cooldown_hours = cooldown_hours
        self.claim_lease_seconds = claim_lease_seconds

    @property
    def session_factory(self) -> sessionmaker[Session]:
        return self.product_filter.session_factory

    @property
    def _url(self) -> sa.URL:
        return self.product_filter.engine.url

    def _now(self) -> datetime:
        return self.product_filter.now()

    @property
    def models(self) -> CatalogModels:
        return self.product_filter.models

    def has_no_images_condition(self) -> sa.ColumnElement[bool]:
        image = aliased(self.models.ProductImage)
        return ~sa.exists().where(image.product_id == self.models.ProductMaster.id)

    def not_cooling_down_condition(self) -> sa.ColumnElement[bool]:
        """False while the product's *latest* attempt found no images and finished less than the cooldown ago."""
        attempt = aliased(self.models.ImageFetchAttempt)
        later = aliased(self.models.ImageFetchAttempt)
        cutoff = self._now() - timedelta(hours=self.cooldown_hours)
        latest_was_fruitless = (
            sa.exists()
            .where(
                attempt.product_id == self.models.ProductMaster.id,
                attempt.outcome == ProductStatus.NO_IMAGES.value,
                attempt.finished_at >= cutoff,
            )
            .where(~sa.exists().where(later.product_id == attempt.product_id, later.id > attempt.id))
        )
        return ~latest_was_fruitless

    def not_in_flight_condition(self) -> sa.ColumnElement[bool]:
        """False while an unfinished attempt's lease is alive (its heartbeat is younger than the lease)."""
        attempt = aliased(self.models.ImageFetchAttempt)
        cutoff = self._now() - timedelta(seconds=self.claim_lease_seconds)
        return ~sa.exists().where(
            attempt.product_id == self.models.ProductMaster.id,
            attempt.finished_at.is_(None),
            sa.func.coalesce(attempt.heartbeat_at, attempt.started_at) >= cutoff,
        )

    def _conditions(
        self,
        *,
        product_ids: Sequence[int] | None = None,
        exclude_ids: Collection[int] = (),
        exclude_in_flight: bool = False,
        ignore_cooldown: bool = False,
    ) -> list[sa.ColumnElement[bool]]:
        dialect = self.product_filter.dialect_name
        conditions = [self.product_filter.eligible_condition(), self.has_no_images_condition()]
        if not ignore_cooldown:
            conditions.append(self.not_cooling_down_condition())
        pm = self.models.ProductMaster
        if product_ids is not None:
            conditions.append(_id_membership(pm.id, product_ids, dialect))
        if exclude_ids:
            conditions.append(~_id_membership(pm.id, exclude_ids, dialect))
        if exclude_in_flight:
            conditions.append(self.not_in_flight_condition())
        return conditions

    def _pending(self, columns: Any, limit: int | None, scope: PendingScope) -> sa.Select[Any]:
        """``columns`` of the pending products in ``scope``, oldest ``last_updated`` first, then id."""
        _check_limit(limit)
        pm = self.models.ProductMaster
        query = sa.select(columns).where(*self._conditions(**scope)).order_by(pm.last_updated, pm.id)
        return query if limit is None else query.limit(limit)

    def pending_query(self, limit: int | None = None, **scope: Unpack[PendingScope]) -> sa.Select[Any]:
        """The one query behind :meth:`get_pending_image_products`."""
        pm = self.models.ProductMaster
        return self._pending(pm, limit, scope).options(joinedload(pm.listing))

    def get_pending_image_products(
        self, limit: int | None = None, **scope: Unpack[PendingScope]
    ) -> list[ProductMaster]:
        """Products that need images, oldest first, detached and fully loaded (columns, ``listing``, ``images``);
        ``scope`` as ``PendingScope`` says."""
        query = self.pending_query(limit, **scope)
        with translate_connection_errors(self._url), self.session_factory() as session:
            products = list(session.scalars(query).unique())
        for product in products:
            # The query proved there are none; saying so spares a lazy load that a detached object cannot do.
            set_committed_value(product, "images", [])
        return products

    def pending_ids_query(self, limit: int | None = None, **scope: Unpack[PendingScope]) -> sa.Select[int]:
        """The query of :meth:`pending_product_ids`: same conditions and order, ids only."""
        return self._pending(self.models.ProductMaster.id, limit, scope)

    def pending_product_ids(self, limit: int | None = None, **scope: Unpack[PendingScope]) -> list[int]:
        """The ids :meth:`get_pending_image_products` would return, in the same order, without loading rows.

        The cheap form for registering partitions on a large catalog (no ORM objects are built; on PostgreSQL
        an index-only scan checks the rules).
        """
        query = self.pending_ids_query(limit, **scope)
        with translate_connection_errors(self._url), self.session_factory() as session:
            return [int(i) for i in session.scalars(query)]

    def count_pending(self, **scope: Unpack[PendingScope]) -> int:
        query = sa.select(sa.func.count()).select_from(self.models.ProductMaster).where(*self._conditions(**scope))
        with translate_connection_errors(self._url), self.session_factory() as session:
            return int(session.scalar(query) or 0)

    def needs_images(self, product_id: int) -> tuple[bool, str | None]:
        """(True, None) when the product is eligible and has no images; else (False, reason code).

        Reason codes: ``not_found``, ``not_eligible``, ``has_images``. The cooldown does not apply here: this is
        the last check before processing a product that was already selected.
        """
        with translate_connection_errors(self._url), self.session_factory() as session:
            product = session.get(self.models.ProductMaster, product_id)
            if product is None:
                return False, ReasonCode.NOT_FOUND
            if not self.product_filter.is_eligible(product):
                return False, ReasonCode.NOT_ELIGIBLE
            image = self.models.ProductImage
            has_images = session.scalar(sa.select(sa.exists().where(image.product_id == product_id)))
            if has_images:
                return False, ReasonCode.HAS_IMAGES
            return True, None
