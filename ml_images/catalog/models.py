"""SQLAlchemy 2 models of the catalog: the shop's tables plus what the image pipeline records.

Every schema change goes through an Alembic migration in ``ml_images/catalog/migrations``.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from ml_images.outcomes import ProductStatus

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware datetimes on every backend.

    SQLite has no timezone type and hands back naive values; storing UTC and re-attaching it on the way
    out keeps comparisons (freshness, cooldown) correct on both SQLite and PostgreSQL.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a timezone-aware column; attach a tzinfo")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONType = sa.JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class ListingStatus(enum.StrEnum):
    PENDING = "PENDING"
    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"
    ERROR = "ERROR"


class ProductMaster(Base):
    __tablename__ = "product_master"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    sku: Mapped[str | None] = mapped_column(sa.String(64))
    description: Mapped[str | None] = mapped_column(sa.Text)
    price: Mapped[Decimal | None] = mapped_column(sa.Numeric(10, 2))
    category: Mapped[str | None] = mapped_column(sa.String(100))
    image_url: Mapped[str | None] = mapped_column(sa.String(2000))
    last_updated: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow, nullable=False)
    is_active: Mapped[bool] = mapped_column(sa.Boolean, default=True, server_default=sa.true(), nullable=False)
    is_for_mercadolibre: Mapped[bool] = mapped_column(
        sa.Boolean, default=False, server_default=sa.false(), nullable=False
    )
    specs: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    normalized_name: Mapped[str | None] = mapped_column(sa.String(500))
    model_name: Mapped[str | None] = mapped_column(sa.String(255))
    gtin: Mapped[str | None] = mapped_column(sa.String(32))
    seo_title: Mapped[str | None] = mapped_column(sa.String(255))

    images: Mapped[list[ProductImage]] = relationship(
        back_populates="product",
        order_by="ProductImage.order",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )
    listing: Mapped[MercadoLibreListing | None] = relationship(
        back_populates="product", uselist=False, passive_deletes=True
    )

    __table_args__ = (
        # The selection scans only products flagged for Mercado Libre and active; a partial index keeps the
        # pending query fast on a 1M-row catalog (see benchmarks/selection_at_scale.py). On PostgreSQL it also
        # carries category and price, so the rules can be checked without visiting the table (index-only scans
        # for the ids and counts of the selection).
        sa.Index(
            "ix_product_master_ml_candidates",
            "last_updated",
            "id",
            postgresql_where=sa.text("is_for_mercadolibre AND is_active"),
            postgresql_include=["category", "price"],
            sqlite_where=sa.text("is_for_mercadolibre = 1 AND is_active = 1"),
        ),
    )


class ProductImage(Base):
    __tablename__ = "product_image"

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(
        sa.ForeignKey("product_master.id", ondelete="CASCADE"), index=True, nullable=False
    )
    url: Mapped[str] = mapped_column(sa.String(2000), nullable=False)
    order: Mapped[int] = mapped_column("order", sa.Integer, default=0, server_default="0", nullable=False)
    is_processed: Mapped[bool] = mapped_column(sa.Boolean, default=False, server_default=sa.false(), nullable=False)
    # Indexed: an object is deleted only when no row of any product references its key.
    storage_key: Mapped[str | None] = mapped_column(sa.String(1024), index=True)
    source_url: Mapped[str | None] = mapped_column(sa.String(2000))
    width: Mapped[int | None] = mapped_column(sa.Integer)
    height: Mapped[int | None] = mapped_column(sa.Integer)
    content_hash: Mapped[str | None] = mapped_column(sa.String(64))
    background_removed: Mapped[bool] = mapped_column(
        sa.Boolean, default=False, server_default=sa.false(), nullable=False
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    product: Mapped[ProductMaster] = relationship(back_populates="images")

    __table_args__ = (
        sa.UniqueConstraint("product_id", "order", name="uq_product_image_product_order"),
        sa.CheckConstraint('"order" >= 0', name="order_non_negative"),
    )


class MercadoLibreListing(Base):
    __tablename__ = "mercadolibre_listing"

    id: Mapped[int] = mapped_column(primary_key=True)
    product_master_id: Mapped[int] = mapped_column(
        sa.ForeignKey("product_master.id", ondelete="CASCADE"), unique=True, nullable=False
    )
    ml_id: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    category_id: Mapped[str | None] = mapped_column(sa.String(64))
    status: Mapped[ListingStatus] = mapped_column(
        sa.Enum(
            ListingStatus,
            name="listing_status",
            native_enum=False,
            create_constraint=True,
            length=16,
            values_callable=lambda e: [m.value for m in e],
        ),
        default=ListingStatus.PENDING,
        server_default=ListingStatus.PENDING.value,
        index=True,
        nullable=False,
    )
    sync_error: Mapped[str | None] = mapped_column(sa.Text)
    last_synced: Mapped[datetime | None] = mapped_column(UTCDateTime)
    final_price: Mapped[Decimal | None] = mapped_column(sa.Numeric(10, 2))
    net_price: Mapped[Decimal | None] = mapped_column(sa.Numeric(10, 2))
    profit: Mapped[Decimal | None] = mapped_column(sa.Numeric(10, 2))
    available_quantity: Mapped[int | None] = mapped_column(sa.Integer)
    attributes: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow, nullable=False)

    product: Mapped[ProductMaster] = relationship(back_populates="listing")


class AttemptColumns:
    """The columns of an attempt row besides its keys, the same in both catalog layouts (``django_models.py``)."""

    run_id: Mapped[str | None] = mapped_column(sa.String(64))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str] = mapped_column(sa.String(16), default=ProductStatus.RUNNING.value, nullable=False)
    reason_code: Mapped[str | None] = mapped_column(sa.String(64))
    reason: Mapped[str | None] = mapped_column(sa.Text)
    refusals: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType)
    refusal_counts: Mapped[dict[str, int] | None] = mapped_column(JSONType)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    holder_host: Mapped[str | None] = mapped_column(sa.String(255))
    holder_node: Mapped[str | None] = mapped_column(sa.String(64))
    holder_pid: Mapped[int | None] = mapped_column(sa.Integer)
    holder_started: Mapped[int | None] = mapped_column(sa.BigInteger)
    search_calls: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0", nullable=False)
    candidates_found: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0", nullable=False)
    images_stored: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0", nullable=False)
    # Cost and provenance of the attempt (see ``ml_images.catalog.recorder.AttemptStats``).
    provider: Mapped[str | None] = mapped_column(sa.String(32))  # the search provider that answered, if any
    search_calls_by_provider: Mapped[dict[str, int] | None] = mapped_column(JSONType)
    search_cache_hits: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0", nullable=False)
    downloads: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0", nullable=False)
    candidates: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType)  # ranked, with score parts (bounded)
    cover_report: Mapped[dict[str, Any] | None] = mapped_column(JSONType)  # cover attempts and their checks


class ImageDetailColumns:
    """The per-image columns besides the keys, the same in both catalog layouts (``django_models.py``)."""

    source_kind: Mapped[str | None] = mapped_column(sa.String(16))  # "distributor" | "search"
    page_url: Mapped[str | None] = mapped_column(sa.String(2000))
    provider: Mapped[str | None] = mapped_column(sa.String(32))
    provider_rank: Mapped[int | None] = mapped_column(sa.Integer)
    rank_score: Mapped[float | None] = mapped_column(sa.Float)
    rank_parts: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    background_method: Mapped[str | None] = mapped_column(sa.String(32))  # "studio", a model name, or None
    quality_score: Mapped[float | None] = mapped_column(sa.Float)
    cover_compliant: Mapped[bool | None] = mapped_column(sa.Boolean)
    checks: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class SearchCacheColumns:
    """The search cache's columns besides its id, the same in both catalog layouts (``django_models.py``)."""

    provider: Mapped[str] = mapped_column(sa.String(32), nullable=False)
    query: Mapped[str] = mapped_column(sa.String(300), nullable=False)
    results: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, nullable=False)
    calls: Mapped[int] = mapped_column(sa.Integer, default=1, server_default="1", nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class ImageFetchAttempt(AttemptColumns, Base):
    """One try at finding images for a product. Doubles as the in-flight claim (database-level guard).

    While ``finished_at`` is NULL the row is a claim: the partial unique index allows one unfinished attempt per
    product, so two overlapping runs cannot both write the same product, whatever Dagster does. The claim is a
    lease: its worker refreshes ``heartbeat_at``; a claim whose heartbeat is older than the lease, or whose holder
    (``holder_*``: host, node, process id and start time) is provably dead, is taken over.

    ``refusals`` keeps at most the first refusals of each reason (a bounded sample); ``refusal_counts`` counts
    every refusal by reason.
    """

    __tablename__ = "image_fetch_attempt"

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(
        sa.ForeignKey("product_master.id", ondelete="CASCADE"), index=True, nullable=False
    )

    __table_args__ = (
        sa.Index(
            "uq_image_fetch_attempt_in_flight",
            "product_id",
            unique=True,
            postgresql_where=sa.text("finished_at IS NULL"),
            sqlite_where=sa.text("finished_at IS NULL"),
        ),
        sa.Index("ix_image_fetch_attempt_outcome", "product_id", "outcome", "finished_at"),
    )


class ImageDetail(ImageDetailColumns, Base):
    """What a person needs to trust one stored picture: where it came from and how it was judged.

    The project's own per-image table, keyed by the ``product_image`` row it describes (one to one, removed with
    it). It lives beside ``product_image`` rather than in it so that a catalog whose image table belongs to another
    application keeps that table as it is.
    """

    __tablename__ = "ml_images_image"

    product_image_id: Mapped[int] = mapped_column(
        sa.ForeignKey("product_image.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    product_id: Mapped[int] = mapped_column(sa.Integer, index=True, nullable=False)


class SearchCacheEntry(SearchCacheColumns, Base):
    """Normalised search results per (provider, query), so a retried run does not pay for the same search."""

    __tablename__ = "search_cache"

    id: Mapped[int] = mapped_column(primary_key=True)

    __table_args__ = (sa.UniqueConstraint("provider", "query", name="uq_search_cache_provider_query"),)
