"""The harness builds the original app's tables with Django itself, as issue 12 describes them, on both databases."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from ml_images_tests.django_catalog.harness import DjangoCatalog
from ml_images_tests.django_catalog.schema import TableSchema, describe_tables

# (column, type in the issue's words, nullable), in the column order of a database migrated through the original
# app's history.
EXPECTED_COLUMNS: dict[str, list[tuple[str, str, bool]]] = {
    "aiecommerce_productmaster": [
        ("id", "bigint identity", False),
        ("description", "text", True),
        ("category", "varchar(255)", True),
        ("price", "numeric(10,2)", True),
        ("last_updated", "timestamptz", False),
        ("code", "varchar(255)", True),
        ("image_url", "varchar(2000)", True),
        ("is_active", "boolean", False),
        ("stock_colon", "varchar(10)", True),
        ("stock_gye_norte", "varchar(10)", True),
        ("stock_gye_sur", "varchar(10)", True),
        ("stock_principal", "varchar(10)", True),
        ("stock_sur", "varchar(10)", True),
        ("specs", "jsonb", True),
        ("is_for_mercadolibre", "boolean", False),
        ("seo_description", "text", True),
        ("seo_title", "varchar(60)", True),
        ("sku", "varchar(255)", True),
        ("gtin", "varchar(14)", True),
        ("gtin_source", "varchar(50)", True),
        ("model_name", "varchar(255)", True),
        ("normalized_name", "varchar(255)", True),
        ("last_bundled_date", "timestamptz", True),
    ],
    "aiecommerce_productimage": [
        ("id", "bigint identity", False),
        ("url", "varchar(2000)", False),
        ("order", "positive integer", False),
        ("is_processed", "boolean", False),
        ("product_id", "bigint", False),
    ],
    "aiecommerce_mercadolibrelisting": [
        ("id", "bigint identity", False),
        ("ml_id", "varchar(24)", True),
        ("status", "varchar(10)", False),
        ("last_synced", "timestamptz", True),
        ("sync_error", "text", True),
        ("created_at", "timestamptz", False),
        ("updated_at", "timestamptz", False),
        ("product_master_id", "bigint", False),
        ("category_id", "varchar(30)", True),
        ("final_price", "numeric(10,2)", True),
        ("net_price", "numeric(10,2)", True),
        ("profit", "numeric(10,2)", True),
        ("available_quantity", "integer", True),
        ("attributes", "jsonb", True),
    ],
}


def database_type(issue_type: str, vendor: str) -> tuple[str, str | None]:
    """The (type, identity) Django creates for a type of the issue's schema, as the snapshot reports it."""
    if vendor == "postgresql":
        if issue_type == "bigint identity":
            return "bigint", "BY DEFAULT"
        if issue_type.startswith("varchar("):
            return "character varying" + issue_type.removeprefix("varchar"), None
        return {
            "timestamptz": "timestamp with time zone",
            "positive integer": "integer",  # plus its CHECK constraint
        }.get(issue_type, issue_type), None
    # SQLite: Django's type names; its ids are "integer" so that they alias the rowid.
    if issue_type.startswith("varchar("):
        return issue_type, None
    return {
        "bigint identity": "integer",
        "numeric(10,2)": "decimal",
        "timestamptz": "datetime",
        "boolean": "bool",
        "jsonb": "text",
        "positive integer": "integer unsigned",
    }.get(issue_type, issue_type), None


def test_migrate_creates_the_three_tables_with_the_issues_columns(django_catalog: DjangoCatalog) -> None:
    assert django_catalog.tables == {
        "ProductMaster": "aiecommerce_productmaster",
        "ProductImage": "aiecommerce_productimage",
        "MercadoLibreListing": "aiecommerce_mercadolibrelisting",
    }
    snapshot = django_catalog.schema_snapshot()
    for table, expected in EXPECTED_COLUMNS.items():
        # SQLite reports the type names it knows (INTEGER, TEXT) in capitals, the others as Django declared them.
        described = [
            (c.name, _type_name(c.type, django_catalog.vendor), c.identity, c.nullable) for c in snapshot[table].columns
        ]
        wanted = [(name, *database_type(kind, django_catalog.vendor), nullable) for name, kind, nullable in expected]
        assert described == wanted, table


def test_the_tables_have_no_database_defaults(django_catalog: DjangoCatalog) -> None:
    """Django keeps defaults in Python: an insert outside Django must give every NOT NULL column itself."""
    snapshot = django_catalog.schema_snapshot()
    with_default = [(t, c.name, c.default) for t, s in snapshot.items() for c in s.columns if c.default is not None]
    assert with_default == []

    engine = sa.create_engine(django_catalog.url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            product_id = conn.execute(
                sa.text(
                    "INSERT INTO aiecommerce_productmaster (last_updated, is_active, is_for_mercadolibre) "
                    "VALUES (CURRENT_TIMESTAMP, true, true) RETURNING id"
                )
            ).scalar_one()
        for statement in (
            "INSERT INTO aiecommerce_productimage (url, product_id) VALUES ('http://127.0.0.1/a.jpg', :product)",
            "INSERT INTO aiecommerce_mercadolibrelisting (product_master_id) VALUES (:product)",
        ):
            with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
                conn.execute(sa.text(statement), {"product": product_id})
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_postgresql_keys_checks_and_indexes_are_djangos(
    postgres_url: str, django_catalog_at: Callable[[str], DjangoCatalog]
) -> None:
    snapshot = django_catalog_at(postgres_url).schema_snapshot()
    image = snapshot["aiecommerce_productimage"]
    assert _definitions(image, "CHECK") == ['CHECK ("order" >= 0)']
    assert _definitions(image, "FOREIGN KEY") == [
        "FOREIGN KEY (product_id) REFERENCES aiecommerce_productmaster(id) DEFERRABLE INITIALLY DEFERRED"
    ]
    assert (
        "CREATE INDEX aiecommerce_productimage_product_id_ca681472 ON public.aiecommerce_productimage USING btree "
        "(product_id)" in _index_definitions(image)
    )

    listing = snapshot["aiecommerce_mercadolibrelisting"]
    assert sorted(_definitions(listing, "UNIQUE")) == ["UNIQUE (ml_id)", "UNIQUE (product_master_id)"]
    assert _definitions(listing, "FOREIGN KEY") == [
        "FOREIGN KEY (product_master_id) REFERENCES aiecommerce_productmaster(id) DEFERRABLE INITIALLY DEFERRED"
    ]
    assert (
        "CREATE INDEX aiecommerce_status_d4f3a4_idx ON public.aiecommerce_mercadolibrelisting USING btree "
        "(status, last_synced)"
    ) in _index_definitions(listing)

    # The foreign keys into the product table are the two of the other Django tables, nothing else.
    referencing = sorted(ref.name.split(".")[0] for ref in snapshot["aiecommerce_productmaster"].referenced_by)
    assert referencing == ["aiecommerce_mercadolibrelisting", "aiecommerce_productimage"]
    assert all(not table.triggers for table in snapshot.values())


def test_sqlite_keeps_the_check_and_deferred_keys_in_the_table(
    sqlite_url: str, django_catalog_at: Callable[[str], DjangoCatalog]
) -> None:
    snapshot = django_catalog_at(sqlite_url).schema_snapshot()
    image_sql = _definitions(snapshot["aiecommerce_productimage"], "TABLE")[0]
    assert 'CHECK ("order" >= 0)' in image_sql
    assert 'REFERENCES "aiecommerce_productmaster" ("id") DEFERRABLE INITIALLY DEFERRED' in image_sql
    listing = snapshot["aiecommerce_mercadolibrelisting"]
    assert (
        'CREATE INDEX "aiecommerce_status_d4f3a4_idx" ON "aiecommerce_mercadolibrelisting" ("status", "last_synced")'
        in (_index_definitions(listing))
    )


def test_orm_reads_back_images_in_order_and_the_listing(django_catalog: DjangoCatalog) -> None:
    product = django_catalog.ProductMaster.objects.create(code="A-1", is_for_mercadolibre=True, price="19.99")
    for order in (2, 0, 1):  # written out of order: the model's default ordering puts them back
        django_catalog.ProductImage.objects.create(
            product=product, url=f"http://127.0.0.1:9/{order}.jpg", order=order, is_processed=True
        )
    django_catalog.MercadoLibreListing.objects.create(
        product_master=product,
        status=django_catalog.MercadoLibreListing.Status.ERROR,
        sync_error="no_usable_image: nothing found",
    )

    fresh = django_catalog.ProductMaster.objects.get(pk=product.pk)
    assert [(image.order, image.url) for image in fresh.images.all()] == [
        (0, "http://127.0.0.1:9/0.jpg"),
        (1, "http://127.0.0.1:9/1.jpg"),
        (2, "http://127.0.0.1:9/2.jpg"),
    ]
    assert fresh.mercadolibre_listing.status == "ERROR"
    assert fresh.mercadolibre_listing.sync_error == "no_usable_image: nothing found"
    assert fresh.last_updated is not None  # Django's auto_now, not a database default
    assert fresh.specs == {}


def test_rows_written_outside_django_are_read_by_the_orm(django_catalog: DjangoCatalog) -> None:
    """What the django layout will do: plain SQL writes with every NOT NULL column, read back by Django."""
    product = django_catalog.ProductMaster.objects.create(code="B-2", is_for_mercadolibre=True)
    listing = django_catalog.MercadoLibreListing.objects.create(product_master=product)
    engine = sa.create_engine(django_catalog.url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            for order in range(3):
                conn.execute(
                    sa.text(
                        'INSERT INTO aiecommerce_productimage (url, "order", is_processed, product_id) '
                        "VALUES (:url, :order, :processed, :product)"
                    ),
                    {
                        "url": f"http://127.0.0.1:9/b{order}.jpg",
                        "order": order,
                        "processed": True,
                        "product": product.pk,
                    },
                )
            conn.execute(
                sa.text(
                    "UPDATE aiecommerce_mercadolibrelisting SET status = 'ERROR', sync_error = :error, "
                    "updated_at = CURRENT_TIMESTAMP WHERE id = :id"
                ),
                {"error": "no_usable_image", "id": listing.pk},
            )
    finally:
        engine.dispose()

    product.refresh_from_db()
    assert [image.order for image in product.images.all()] == [0, 1, 2]
    assert all(image.is_processed for image in product.images.all())
    listing.refresh_from_db()
    assert (listing.status, listing.sync_error) == ("ERROR", "no_usable_image")


def test_a_negative_order_is_refused_by_the_database(django_catalog: DjangoCatalog) -> None:
    from django.db import IntegrityError, transaction

    product = django_catalog.ProductMaster.objects.create(code="C-3")
    with pytest.raises(IntegrityError), transaction.atomic():
        django_catalog.ProductImage.objects.create(product=product, url="http://127.0.0.1:9/x.jpg", order=-1)
    assert django_catalog.ProductImage.objects.count() == 0


def test_the_snapshot_reads_the_database_not_django(django_catalog: DjangoCatalog) -> None:
    """``schema_snapshot`` is the same as describing the tables by URL, on a connection of its own."""
    assert describe_tables(django_catalog.url, django_catalog.tables.values()) == django_catalog.schema_snapshot()


def _type_name(described: str, vendor: str) -> str:
    return described.lower() if vendor == "sqlite" else described


def _definitions(table: TableSchema, kind: str) -> list[str]:
    return [item.definition for item in table.constraints if item.kind == kind]


def _index_definitions(table: TableSchema) -> list[str]:
    return [item.definition for item in table.indexes]
