"""Which tables the catalog is: the project's own schema (``standalone``) or a Django shop's tables (``django``).

``ML_IMAGES_CATALOG_LAYOUT`` chooses; ``ML_IMAGES_DJANGO_APP_LABEL`` names the Django app whose tables are read
(``README.md``, "On an existing Django catalog"). Every engine made by ``create_catalog_engine`` carries its
layout, so code holding a session factory asks ``layout_of(...)`` which mapped classes to query: the same queries
run on either layout.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from ml_images.settings import parse_catalog_layout

STANDALONE = "standalone"
DJANGO = "django"
_HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class CatalogModels:
    """The mapped classes of one layout, under the same names in both (their columns differ only where said)."""

    ProductMaster: Any
    ProductImage: Any
    MercadoLibreListing: Any
    ImageFetchAttempt: Any
    ImageDetail: Any
    SearchCacheEntry: Any
    shop_metadata: sa.MetaData
    project_metadata: sa.MetaData


@dataclass(frozen=True)
class CatalogLayout:
    kind: str = STANDALONE
    app_label: str = "aiecommerce"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> CatalogLayout:
        kind, label = parse_catalog_layout(env)
        return cls(kind, label)

    @property
    def is_django(self) -> bool:
        return self.kind == DJANGO

    @property
    def models(self) -> CatalogModels:
        if self.is_django:
            from ml_images.catalog.django_models import django_models

            return django_models(self.app_label)
        return _standalone_models()

    @property
    def shop_tables(self) -> tuple[str, str, str]:
        """(products, images, listings) table names."""
        m = self.models
        return (m.ProductMaster.__tablename__, m.ProductImage.__tablename__, m.MercadoLibreListing.__tablename__)

    @property
    def project_tables(self) -> tuple[str, ...]:
        """The tables this project creates and migrates in this layout."""
        return tuple(sorted(self.models.project_metadata.tables))

    @property
    def version_table(self) -> str:
        if self.is_django:
            from ml_images.catalog.django_models import VERSION_TABLE

            return VERSION_TABLE
        return "alembic_version"

    @property
    def migrations_dir(self) -> Path:
        return _HERE / ("migrations_django" if self.is_django else "migrations")

    def storage_keys(self) -> Any:
        """The column holding each picture's storage key (on the picture row, or beside it in ``django``)."""
        m = self.models
        return m.ImageDetail.storage_key if self.is_django else m.ProductImage.storage_key

    def picture_rows(self) -> sa.Select[Any]:
        """Every picture row as (product_id, order, storage_key, width, height, content_hash, created_at), whichever
        table holds each column.

        On a Django catalog all but the first two come from the project's ``ml_images_image`` (None for a picture
        the project did not write)."""
        m = self.models
        image = m.ProductImage
        if not self.is_django:
            return sa.select(
                image.product_id,
                image.order,
                image.storage_key,
                image.width,
                image.height,
                image.content_hash,
                image.created_at,
            )
        detail = m.ImageDetail
        return sa.select(
            image.product_id,
            image.order,
            detail.storage_key,
            detail.width,
            detail.height,
            detail.content_hash,
            detail.created_at,
        ).outerjoin_from(image, detail, detail.product_image_id == image.id)

    def describe(self) -> str:
        if self.is_django:
            return f"django (app {self.app_label}: tables {', '.join(self.shop_tables)})"
        return STANDALONE


def _standalone_models() -> CatalogModels:
    from ml_images.catalog import models

    return CatalogModels(
        ProductMaster=models.ProductMaster,
        ProductImage=models.ProductImage,
        MercadoLibreListing=models.MercadoLibreListing,
        ImageFetchAttempt=models.ImageFetchAttempt,
        ImageDetail=models.ImageDetail,
        SearchCacheEntry=models.SearchCacheEntry,
        shop_metadata=models.Base.metadata,
        project_metadata=models.Base.metadata,
    )


# Engines are created by ``create_catalog_engine`` with their layout; weak keys so a disposed engine goes away.
_ENGINE_LAYOUTS: weakref.WeakKeyDictionary[sa.Engine, CatalogLayout] = weakref.WeakKeyDictionary()


def register_layout(engine: sa.Engine, layout: CatalogLayout) -> None:
    _ENGINE_LAYOUTS[engine] = layout


def layout_of(bind: sa.Engine | sessionmaker[Session] | Session | Any) -> CatalogLayout:
    """The layout of an engine, a session factory bound to one, or a session (standalone when not registered)."""
    engine: Any = bind
    if isinstance(bind, sessionmaker):
        engine = bind.kw.get("bind")
    elif isinstance(bind, Session):
        engine = bind.get_bind()
    if isinstance(engine, sa.Connection):
        engine = engine.engine
    if isinstance(engine, sa.Engine):
        return _ENGINE_LAYOUTS.get(engine, CatalogLayout())
    return CatalogLayout()


def models_of(bind: sa.Engine | sessionmaker[Session] | Session | Any) -> CatalogModels:
    return layout_of(bind).models
