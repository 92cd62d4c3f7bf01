"""The ``django`` catalog layout on tables made by Django's own ``migrate`` (SQLite and PostgreSQL).

``ml-images db upgrade`` runs through its CLI handler; the selection and the recorder run on the Django tables;
every result is read back through Django's ORM, and a schema snapshot before and after proves the three tables
were not altered.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from ml_images.catalog.db import create_catalog_engine, ensure_schema_current, make_session_factory
from ml_images.catalog.layout import CatalogLayout, layout_of
from ml_images.catalog.recorder import AttemptStats, ImageRecord, ImageRecorder
from ml_images.catalog.rules import DEFAULT_PUBLICATION_RULES
from ml_images.catalog.selection import ImageCandidateSelector, MercadoLibreFilter
from ml_images.cli import db_command
from ml_images.errors import SchemaNotMigratedError
from ml_images_tests.django_catalog.harness import DjangoCatalog
from ml_images_tests.django_catalog.schema import schema_changes

DJANGO = CatalogLayout("django", "aiecommerce")
PROJECT_TABLES = ["ml_images_alembic_version", "ml_images_fetch_attempt", "ml_images_image", "ml_images_search_cache"]


def _run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="ml-images")
    db_command.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.handler(args))


def _tables(url: str) -> list[str]:
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        return sorted(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


@pytest.fixture
def django_env(django_catalog: DjangoCatalog, monkeypatch: pytest.MonkeyPatch) -> DjangoCatalog:
    monkeypatch.setenv("ML_IMAGES_DATABASE_URL", django_catalog.url)
    monkeypatch.setenv("ML_IMAGES_CATALOG_LAYOUT", "django")
    return django_catalog


def test_db_upgrade_creates_only_the_projects_tables_and_says_so(
    django_env: DjangoCatalog, capsys: pytest.CaptureFixture[str]
) -> None:
    before = django_env.schema_snapshot()
    django_tables = sorted(t for t in _tables(django_env.url) if t.startswith("aiecommerce_"))

    assert _run("db", "upgrade") == 0
    out = capsys.readouterr().out
    assert "only the project's own tables" in out
    assert "ml_images_alembic_version" in out
    assert "were not altered" in out
    assert _run("db", "upgrade") == 0
    assert "already at revision d0001" in capsys.readouterr().out
    assert _run("db", "current") == 0
    assert "up to date" in capsys.readouterr().out

    tables = _tables(django_env.url)
    assert [t for t in tables if t.startswith("ml_images_")] == PROJECT_TABLES
    assert sorted(t for t in tables if t.startswith("aiecommerce_")) == django_tables
    # Django's own bookkeeping is Django's; the project added no table outside its prefix.
    assert [t for t in tables if not t.startswith(("ml_images_", "aiecommerce_", "django_"))] in (
        [],
        ["sqlite_sequence"],
    )
    assert schema_changes(before, django_env.schema_snapshot()) == []


def test_db_upgrade_refuses_a_database_without_the_django_tables(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ML_IMAGES_DATABASE_URL", database_url)
    monkeypatch.setenv("ML_IMAGES_CATALOG_LAYOUT", "django")
    monkeypatch.setenv("ML_IMAGES_DJANGO_APP_LABEL", "shop")
    with pytest.raises(SchemaNotMigratedError, match=r"shop_productmaster.*Django app's own `migrate`"):
        _run("db", "upgrade")
    assert _tables(database_url) == []


def test_the_layout_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch, sqlite_url: str) -> None:
    monkeypatch.setenv("ML_IMAGES_CATALOG_LAYOUT", "django")
    monkeypatch.setenv("ML_IMAGES_DJANGO_APP_LABEL", "shop")
    engine = create_catalog_engine(sqlite_url)
    try:
        layout = layout_of(make_session_factory(engine))
        assert layout == CatalogLayout("django", "shop")
        assert layout.shop_tables == ("shop_productmaster", "shop_productimage", "shop_mercadolibrelisting")
    finally:
        engine.dispose()
    monkeypatch.setenv("ML_IMAGES_DJANGO_APP_LABEL", "shop; DROP TABLE x")
    from ml_images.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="ML_IMAGES_DJANGO_APP_LABEL"):
        create_catalog_engine(sqlite_url)
    monkeypatch.setenv("ML_IMAGES_CATALOG_LAYOUT", "rails")
    with pytest.raises(ConfigurationError, match="ML_IMAGES_CATALOG_LAYOUT must be one of standalone, django"):
        create_catalog_engine(sqlite_url)


@pytest.fixture
def migrated(django_env: DjangoCatalog, capsys: pytest.CaptureFixture[str]) -> Iterator[tuple[DjangoCatalog, Any]]:
    """The Django catalog with the project's tables migrated, and a session factory in the django layout."""
    assert _run("db", "upgrade") == 0
    capsys.readouterr()
    engine = create_catalog_engine(django_env.url, DJANGO)
    try:
        ensure_schema_current(engine)
        yield django_env, make_session_factory(engine)
    finally:
        engine.dispose()


def _product(catalog: DjangoCatalog, code: str, **fields: Any) -> Any:
    values: dict[str, Any] = {
        "code": code,
        "sku": f"SKU-{code}",
        "category": "NOTEBOOK",
        "price": Decimal("1500.00"),
        "is_active": True,
        "is_for_mercadolibre": True,
        "normalized_name": f"Notebook {code}",
    }
    values.update(fields)
    return catalog.ProductMaster.objects.create(**values)


def _record(order: int, product: str) -> ImageRecord:
    key = f"products/{product}/{order}-{order:08x}.jpg"
    return ImageRecord(
        order=order,
        url=f"https://cdn.example.test/{key}",
        storage_key=key,
        source_url=f"https://shop.example.test/{key}",
        width=1200,
        height=1200,
        content_hash=f"{order:064x}",
        background_removed=order == 0,
    )


def test_selection_and_rules_run_on_the_django_tables(migrated: tuple[DjangoCatalog, Any]) -> None:
    catalog, sessions = migrated
    before = catalog.schema_snapshot()
    old = datetime.now(UTC) - timedelta(days=3)
    pending = _product(catalog, "A1")
    with_images = _product(catalog, "A2")
    catalog.ProductImage.objects.create(product=with_images, url="https://cdn.example.test/x.jpg", order=0)
    _product(catalog, "A3", is_for_mercadolibre=False)
    _product(catalog, "A4", price=Decimal("10.00"))  # under the NOTEBOOK threshold
    stale = _product(catalog, "A5")
    # auto_now sets last_updated on save; an update() writes it as given.
    catalog.ProductMaster.objects.filter(pk=stale.pk).update(last_updated=old)
    second = _product(catalog, "A6", category="monitor", price=Decimal("0"))

    product_filter = MercadoLibreFilter(sessions, DEFAULT_PUBLICATION_RULES)
    selector = ImageCandidateSelector(product_filter)
    assert selector.pending_product_ids() == [pending.pk, second.pk]
    assert selector.count_pending() == 2
    assert product_filter.count_eligible() == 3
    assert [p.code for p in selector.get_pending_image_products()] == ["A1", "A6"]
    assert selector.needs_images(with_images.pk) == (False, "has_images")
    assert selector.needs_images(stale.pk) == (False, "not_eligible")
    assert selector.needs_images(999_999) == (False, "not_found")
    assert selector.needs_images(pending.pk) == (True, None)

    recorder = ImageRecorder(sessions)
    claim = recorder.claim(pending.pk, "run-1")
    assert claim is not None
    assert selector.pending_product_ids(exclude_in_flight=True) == [second.pk]
    recorder.record_no_images(claim, "no_usable_image", "nothing usable", stats=AttemptStats())
    # The cooldown of a fruitless attempt applies on the Django tables as on the standalone ones.
    assert selector.pending_product_ids() == [second.pk]
    assert schema_changes(before, catalog.schema_snapshot()) == []


def test_pictures_and_listing_errors_land_in_the_django_tables(migrated: tuple[DjangoCatalog, Any]) -> None:
    catalog, sessions = migrated
    before = catalog.schema_snapshot()
    product = _product(catalog, "B1")
    listing = catalog.MercadoLibreListing.objects.create(product_master=product, status="ERROR", sync_error="x")
    bare = _product(catalog, "B2")
    recorder = ImageRecorder(sessions)

    claim = recorder.claim(product.pk, "run-1")
    assert claim is not None
    gone = recorder.commit_images(claim, [_record(i, "B1") for i in range(3)], stats=AttemptStats(search_calls=1))
    assert gone == []
    images = list(catalog.ProductMaster.objects.get(pk=product.pk).images.all())
    assert [(i.order, i.is_processed) for i in images] == [(0, True), (1, True), (2, True)]
    assert [i.url for i in images] == [_record(i, "B1").url for i in range(3)]
    # An ERROR another part of the shop wrote (no "images: " prefix) stays.
    listing.refresh_from_db()
    assert (listing.status, listing.sync_error) == ("ERROR", "x")
    assert recorder.existing_storage_keys(product.pk) == [_record(i, "B1").storage_key for i in range(3)]

    # Replacement: new rows in one transaction; the keys no row references any more are returned for deletion.
    claim = recorder.claim(product.pk, "run-2")
    assert claim is not None
    replaced = [_record(0, "B1"), _record(5, "B1")]
    replaced = [ImageRecord(**{**vars(r), "order": n}) for n, r in enumerate(replaced)]
    gone = recorder.commit_images(claim, replaced, stats=AttemptStats())
    assert sorted(gone) == [_record(1, "B1").storage_key, _record(2, "B1").storage_key]
    images = list(catalog.ProductMaster.objects.get(pk=product.pk).images.all())
    assert [(i.order, i.url) for i in images] == [(0, replaced[0].url), (1, replaced[1].url)]
    engine = sa.create_engine(catalog.url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            details = conn.execute(
                sa.text("SELECT product_image_id, storage_key FROM ml_images_image ORDER BY product_image_id")
            ).all()
    finally:
        engine.dispose()
    assert [row.product_image_id for row in details] == [i.pk for i in images]
    assert [row.storage_key for row in details] == [r.storage_key for r in replaced]

    # Nothing usable for a product without a listing: a new listing row with every NOT NULL column.
    claim = recorder.claim(bare.pk, "run-3")
    assert claim is not None
    recorder.record_no_images(claim, "no_usable_image", "no candidate passed", stats=AttemptStats())
    created = catalog.MercadoLibreListing.objects.get(product_master=bare)
    assert created.status == "ERROR"
    assert created.sync_error == "images: no candidate passed"
    assert created.created_at is not None
    assert created.updated_at is not None
    # Pictures found later clear the pipeline's own ERROR.
    claim = recorder.claim(bare.pk, "run-4")
    assert claim is not None
    recorder.commit_images(claim, [_record(0, "B2")], stats=AttemptStats())
    created.refresh_from_db()
    assert (created.status, created.sync_error) == ("PENDING", None)
    assert [i.order for i in catalog.ProductMaster.objects.get(pk=bare.pk).images.all()] == [0]

    with pytest.raises(LookupError, match="not in the catalog"):
        recorder.claim(987_654, "run-5")
    assert schema_changes(before, catalog.schema_snapshot()) == []


def test_a_picture_row_django_deleted_no_longer_holds_its_object(migrated: tuple[DjangoCatalog, Any]) -> None:
    catalog, sessions = migrated
    first, second = _product(catalog, "C1"), _product(catalog, "C2")
    recorder = ImageRecorder(sessions)
    shared = _record(0, "shared")
    for product in (first, second):
        claim = recorder.claim(product.pk, "run")
        assert claim is not None
        recorder.commit_images(claim, [shared], stats=AttemptStats())
    assert recorder.referenced_keys([shared.storage_key]) == {shared.storage_key}
    # The shop deletes the pictures in its admin: the project's detail rows stay behind but reference nothing.
    catalog.ProductImage.objects.all().delete()
    assert recorder.referenced_keys([shared.storage_key]) == set()
    assert recorder.existing_storage_keys(first.pk) == []


def test_suggest_indexes_prints_statements_and_changes_nothing(
    migrated: tuple[DjangoCatalog, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    catalog, sessions = migrated
    for n in range(5):
        _product(catalog, f"D{n}")
    before = catalog.schema_snapshot()

    assert _run("db", "suggest-indexes") == 0
    out = capsys.readouterr().out
    assert "pending query: " in out
    assert "on 5 products (within the 1 s budget)" in out
    assert "no index to suggest" in out
    assert _run("db", "suggest-indexes", "--always") == 0
    out = capsys.readouterr().out
    statement = next(line for line in out.splitlines() if line.startswith("CREATE INDEX"))
    if catalog.vendor == "postgresql":
        assert statement.startswith("CREATE INDEX CONCURRENTLY IF NOT EXISTS ")
        assert "ON aiecommerce_productmaster (last_updated, id) INCLUDE (category, price)" in statement
    assert statement.endswith("WHERE is_for_mercadolibre AND is_active;") or statement.endswith(
        "WHERE is_for_mercadolibre = 1 AND is_active = 1;"
    )
    assert schema_changes(before, catalog.schema_snapshot()) == []

    # A query over its budget gets the statement; once the DBA ran it, nothing more is suggested.
    from ml_images.catalog.index_advice import advise

    selector = ImageCandidateSelector(MercadoLibreFilter(sessions, DEFAULT_PUBLICATION_RULES))
    advice = advise(selector, sessions, budget=0.0)
    assert advice.statements == [statement]
    engine = sa.create_engine(catalog.url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(statement))
    finally:
        engine.dispose()
    assert advise(selector, sessions, budget=0.0).statements == []
    assert selector.pending_product_ids() == [
        p.pk for p in catalog.ProductMaster.objects.order_by("last_updated", "id")
    ]


def test_catalog_load_writes_the_django_product_table(
    migrated: tuple[DjangoCatalog, Any], tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from ml_images.cli import catalog_command

    catalog, _sessions = migrated
    before = catalog.schema_snapshot()
    existing = _product(catalog, "E1", price=Decimal("1.00"))
    rows = [
        {"code": "E1", "price": "1999.90", "stock_principal": "12"},
        {"code": "E2", "category": "MONITOR", "price": "10", "is_for_mercadolibre": True, "gtin_source": "upc"},
        {"code": "E3", "seo_title": "x" * 61},
    ]
    path = tmp_path / "products.jsonl"
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n")

    parser = argparse.ArgumentParser(prog="ml-images")
    catalog_command.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["catalog", "load", str(path), "--partial"])
    assert int(args.handler(args)) == 0
    out = capsys.readouterr()
    assert "seo_title is longer than 60 characters" in out.out + out.err

    existing.refresh_from_db()
    assert (existing.price, existing.stock_principal) == (Decimal("1999.90"), "12")
    loaded = catalog.ProductMaster.objects.get(code="E2")
    assert (loaded.is_active, loaded.is_for_mercadolibre, loaded.gtin_source) == (True, True, "upc")
    assert loaded.last_updated is not None
    assert not catalog.ProductMaster.objects.filter(code="E3").exists()
    assert schema_changes(before, catalog.schema_snapshot()) == []
