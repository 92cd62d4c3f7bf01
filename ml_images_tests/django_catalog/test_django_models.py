"""The ``django`` layout's mapped classes against the two things they must agree with.

* the project's tables: the migration ``migrations_django`` creates exactly what ``django_models`` maps (Alembic's
  own comparison finds nothing to do), and their columns are the standalone ones (``models.py``);
* the Django tables: every column the mapping names exists in the tables Django's ``migrate`` made, with the same
  nullability.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.pool import NullPool

from ml_images.catalog import django_models, models
from ml_images.catalog.db import create_catalog_engine, upgrade_schema
from ml_images.catalog.layout import CatalogLayout
from ml_images_tests.django_catalog.harness import DjangoCatalog

LAYOUT = CatalogLayout("django", "aiecommerce")
# What the standalone schema keeps on product_image and the django layout keeps in ml_images_image instead.
_MOVED_TO_DETAIL = {"storage_key", "source_url", "width", "height", "content_hash", "background_removed"}


def test_the_project_tables_have_the_standalone_columns() -> None:
    pairs = [
        (models.ImageFetchAttempt, django_models.ImageFetchAttempt, set()),
        (models.SearchCacheEntry, django_models.SearchCacheEntry, set()),
        (models.ImageDetail, django_models.ImageDetail, _MOVED_TO_DETAIL),
    ]
    for standalone, django, extra in pairs:
        assert set(standalone.__table__.c.keys()) | extra == set(django.__table__.c.keys()), django.__tablename__
    picture_columns = set(models.ProductImage.__table__.c.keys())
    assert picture_columns >= _MOVED_TO_DETAIL


def test_the_migration_creates_what_the_models_map(django_catalog: DjangoCatalog) -> None:
    engine = create_catalog_engine(django_catalog.url, LAYOUT)
    try:
        upgrade_schema(engine)
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn,
                opts={
                    "compare_type": True,
                    "version_table": LAYOUT.version_table,
                    "include_name": lambda name, type_, _parents: (
                        type_ != "table" or (name or "").startswith("ml_images_")
                    ),
                },
            )
            diff = compare_metadata(context, django_models.ProjectBase.metadata)
    finally:
        engine.dispose()
    assert diff == []


def test_the_mapping_names_only_columns_django_made(django_catalog: DjangoCatalog) -> None:
    engine = sa.create_engine(django_catalog.url, poolclass=NullPool)
    try:
        inspector = sa.inspect(engine)
        for table in LAYOUT.models.shop_metadata.sorted_tables:
            made = {c["name"]: c["nullable"] for c in inspector.get_columns(table.name)}
            mapped = {c.name: c.nullable for c in table.columns}
            assert mapped == {name: made[name] for name in mapped}, table.name
            assert set(made) == set(mapped), table.name  # the mapping knows every column of Django's table
    finally:
        engine.dispose()
