"""SQLAlchemy models of the ``django`` catalog layout: the shop's Django tables as they are, and the project's own.

The three shop tables (``{app_label}_productmaster``, ``_productimage``, ``_mercadolibrelisting``) are described
exactly as the original Django app's latest migration creates them; this project never creates, alters or migrates
them (``README.md``, "On an existing Django catalog"). Django keeps its defaults in Python, so every NOT NULL column
is given on insert by the code that writes (``recorder.py``), never by a server default.

The project's tables carry the prefix ``ml_images_`` and are keyed by the Django rows' ids without foreign keys:
a foreign key into a Django table would change what Django may delete from it. Their columns are those of
``models.py`` (a test compares them); ``ml_images_image`` also holds what the standalone ``product_image`` keeps
itself (storage key, source URL, size, content hash), since Django's table has no place for it.
"""

from __future__ import annotations

import functools
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from ml_images.catalog.models import (
    NAMING_CONVENTION,
    AttemptColumns,
    ImageDetailColumns,
    JSONType,
    SearchCacheColumns,
    UTCDateTime,
    utcnow,
)

#: Prefix of every table this project creates in the ``django`` layout.
PROJECT_PREFIX = "ml_images_"
ATTEMPT_TABLE = PROJECT_PREFIX + "fetch_attempt"
DETAIL_TABLE = PROJECT_PREFIX + "image"
SEARCH_CACHE_TABLE = PROJECT_PREFIX + "search_cache"
VERSION_TABLE = PROJECT_PREFIX + "alembic_version"

# Django's ids are bigint identities on PostgreSQL; on SQLite they are "integer" (the rowid alias).
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def shop_table_names(app_label: str) -> tuple[str, str, str]:
    """(products, images, listings) as Django names them for ``app_label``."""
    return f"{app_label}_productmaster", f"{app_label}_productimage", f"{app_label}_mercadolibrelisting"


@functools.cache
def django_models(app_label: str) -> Any:
    """The mapped classes of the ``django`` layout for one app label (built once per label).

    Returns a :class:`ml_images.catalog.layout.CatalogModels`.
    """
    from ml_images.catalog.layout import CatalogModels

    products, images, listings = shop_table_names(app_label)

    class Base(DeclarativeBase):
        metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

    class ProductMaster(Base):
        __tablename__ = products

        id: Mapped[int] = mapped_column(BigId, primary_key=True)
        description: Mapped[str | None] = mapped_column(sa.Text)
        category: Mapped[str | None] = mapped_column(sa.String(255))
        price: Mapped[Decimal | None] = mapped_column(sa.Numeric(10, 2))
        last_updated: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
        code: Mapped[str | None] = mapped_column(sa.String(255))
        image_url: Mapped[str | None] = mapped_column(sa.String(2000))
        is_active: Mapped[bool] = mapped_column(sa.Boolean, default=True, nullable=False)
        stock_colon: Mapped[str | None] = mapped_column(sa.String(10))
        stock_gye_norte: Mapped[str | None] = mapped_column(sa.String(10))
        stock_gye_sur: Mapped[str | None] = mapped_column(sa.String(10))
        stock_principal: Mapped[str | None] = mapped_column(sa.String(10))
        stock_sur: Mapped[str | None] = mapped_column(sa.String(10))
        specs: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
        is_for_mercadolibre: Mapped[bool] = mapped_column(sa.Boolean, default=False, nullable=False)
        seo_description: Mapped[str | None] = mapped_column(sa.Text)
        seo_title: Mapped[str | None] = mapped_column(sa.String(60))
        sku: Mapped[str | None] = mapped_column(sa.String(255))
        gtin: Mapped[str | None] = mapped_column(sa.String(14))
        gtin_source: Mapped[str | None] = mapped_column(sa.String(50))
        model_name: Mapped[str | None] = mapped_column(sa.String(255))
        normalized_name: Mapped[str | None] = mapped_column(sa.String(255))
        last_bundled_date: Mapped[datetime | None] = mapped_column(UTCDateTime)

        images: Mapped[list[ProductImage]] = relationship(
            back_populates="product", order_by="ProductImage.order", passive_deletes=True
        )
        listing: Mapped[MercadoLibreListing | None] = relationship(
            back_populates="product", uselist=False, passive_deletes=True
        )

    class ProductImage(Base):
        __tablename__ = images

        id: Mapped[int] = mapped_column(BigId, primary_key=True)
        url: Mapped[str] = mapped_column(sa.String(2000), nullable=False)
        # "order" is a reserved word: SQLAlchemy quotes it in every statement.
        order: Mapped[int] = mapped_column("order", sa.Integer, nullable=False)
        is_processed: Mapped[bool] = mapped_column(sa.Boolean, nullable=False)
        product_id: Mapped[int] = mapped_column(sa.BigInteger, sa.ForeignKey(f"{products}.id"), nullable=False)

        product: Mapped[ProductMaster] = relationship(back_populates="images")

    class MercadoLibreListing(Base):
        __tablename__ = listings

        id: Mapped[int] = mapped_column(BigId, primary_key=True)
        ml_id: Mapped[str | None] = mapped_column(sa.String(24))
        status: Mapped[str] = mapped_column(sa.String(10), nullable=False)
        last_synced: Mapped[datetime | None] = mapped_column(UTCDateTime)
        sync_error: Mapped[str | None] = mapped_column(sa.Text)
        created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
        updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
        product_master_id: Mapped[int] = mapped_column(
            sa.BigInteger, sa.ForeignKey(f"{products}.id"), unique=True, nullable=False
        )
        category_id: Mapped[str | None] = mapped_column(sa.String(30))
        final_price: Mapped[Decimal | None] = mapped_column(sa.Numeric(10, 2))
        net_price: Mapped[Decimal | None] = mapped_column(sa.Numeric(10, 2))
        profit: Mapped[Decimal | None] = mapped_column(sa.Numeric(10, 2))
        available_quantity: Mapped[int | None] = mapped_column(sa.Integer)
        attributes: Mapped[dict[str, Any] | None] = mapped_column(JSONType)

        product: Mapped[ProductMaster] = relationship(back_populates="listing")

    return CatalogModels(
        ProductMaster=ProductMaster,
        ProductImage=ProductImage,
        MercadoLibreListing=MercadoLibreListing,
        ImageFetchAttempt=ImageFetchAttempt,
        ImageDetail=ImageDetail,
        SearchCacheEntry=SearchCacheEntry,
        shop_metadata=Base.metadata,
        project_metadata=ProjectBase.metadata,
    )


class ProjectBase(DeclarativeBase):
    """The project's own tables of the ``django`` layout (the same whatever the app label)."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class ImageFetchAttempt(AttemptColumns, ProjectBase):
    """``models.ImageFetchAttempt`` in the ``django`` layout (see its docstring): no foreign key to the product."""

    __tablename__ = ATTEMPT_TABLE

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    product_id: Mapped[int] = mapped_column(sa.BigInteger, nullable=False)

    __table_args__ = (
        sa.Index(
            "uq_ml_images_fetch_attempt_in_flight",
            "product_id",
            unique=True,
            postgresql_where=sa.text("finished_at IS NULL"),
            sqlite_where=sa.text("finished_at IS NULL"),
        ),
        sa.Index("ix_ml_images_fetch_attempt_outcome", "product_id", "outcome", "finished_at"),
    )


class ImageDetail(ImageDetailColumns, ProjectBase):
    """``models.ImageDetail`` in the ``django`` layout, plus the columns the standalone ``product_image`` holds.

    Keyed by the Django ``productimage`` row's id; rows whose picture row Django deleted are ignored by every
    reader (they join on the id) and removed when the product's pictures are next replaced.
    """

    __tablename__ = DETAIL_TABLE

    product_image_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    product_id: Mapped[int] = mapped_column(sa.BigInteger, index=True, nullable=False)
    storage_key: Mapped[str | None] = mapped_column(sa.String(1024), index=True)
    source_url: Mapped[str | None] = mapped_column(sa.String(2000))
    width: Mapped[int | None] = mapped_column(sa.Integer)
    height: Mapped[int | None] = mapped_column(sa.Integer)
    content_hash: Mapped[str | None] = mapped_column(sa.String(64))
    background_removed: Mapped[bool] = mapped_column(
        sa.Boolean, default=False, server_default=sa.false(), nullable=False
    )


class SearchCacheEntry(SearchCacheColumns, ProjectBase):
    """``models.SearchCacheEntry`` in the ``django`` layout."""

    __tablename__ = SEARCH_CACHE_TABLE

    id: Mapped[int] = mapped_column(BigId, primary_key=True)

    __table_args__ = (sa.UniqueConstraint("provider", "query", name="uq_ml_images_search_cache_provider_query"),)
