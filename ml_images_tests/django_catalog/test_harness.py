"""The harness itself: one Django configuration serving each test's database, and a snapshot that sees changes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from ml_images_tests.django_catalog.database import django_database_settings
from ml_images_tests.django_catalog.harness import DjangoCatalog, configure_django, use_django_catalog
from ml_images_tests.django_catalog.schema import schema_changes

# One alteration of each kind the ``django`` layout must never make: the statements per database and the start of
# the line the snapshot comparison must report for it there.
_BOTH = ("postgresql", "sqlite")
_ADD_COLUMN = ["ALTER TABLE aiecommerce_productimage ADD COLUMN storage_key varchar(1024)"]
_ADD_INDEX = ["CREATE INDEX ml_images_probe_idx ON aiecommerce_mercadolibrelisting (sync_error)"]
_ADD_TABLE_WITH_FOREIGN_KEY = [
    "CREATE TABLE ml_images_probe (id integer PRIMARY KEY, product_id bigint REFERENCES aiecommerce_productmaster (id))"
]
ALTERATIONS: dict[str, dict[str, tuple[list[str], str]]] = {
    "column": dict.fromkeys(_BOTH, (_ADD_COLUMN, "aiecommerce_productimage: column added: storage_key = storage_key ")),
    "index": dict.fromkeys(_BOTH, (_ADD_INDEX, "aiecommerce_mercadolibrelisting: index added: ml_images_probe_idx = ")),
    "trigger": {
        "postgresql": (
            [
                "CREATE FUNCTION ml_images_probe() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END'",
                "CREATE TRIGGER ml_images_probe_trg BEFORE UPDATE ON aiecommerce_productmaster "
                "FOR EACH ROW EXECUTE FUNCTION ml_images_probe()",
            ],
            "aiecommerce_productmaster: trigger added: ml_images_probe_trg = ",
        ),
        "sqlite": (
            ["CREATE TRIGGER ml_images_probe_trg BEFORE UPDATE ON aiecommerce_productmaster BEGIN SELECT 1; END"],
            "aiecommerce_productmaster: trigger added: ml_images_probe_trg = ",
        ),
    },
    "constraint": {
        "postgresql": (
            ['ALTER TABLE aiecommerce_productimage ADD CONSTRAINT ml_images_probe_uq UNIQUE (product_id, "order")'],
            'aiecommerce_productimage: constraint added: ml_images_probe_uq = UNIQUE: UNIQUE (product_id, "order")',
        ),
        # SQLite adds a constraint only by rebuilding the table; a unique index is how it takes the same rule.
        "sqlite": (
            ['CREATE UNIQUE INDEX ml_images_probe_uq ON aiecommerce_productimage (product_id, "order")'],
            "aiecommerce_productimage: index added: ml_images_probe_uq = ",
        ),
    },
    "foreign key into it": dict.fromkeys(
        _BOTH, (_ADD_TABLE_WITH_FOREIGN_KEY, "aiecommerce_productmaster: foreign key into it added: ml_images_probe")
    ),
}


@pytest.mark.parametrize("alteration", list(ALTERATIONS))
def test_the_snapshot_reports_what_was_added(django_catalog: DjangoCatalog, alteration: str) -> None:
    statements, expected = ALTERATIONS[alteration][django_catalog.vendor]
    before = django_catalog.schema_snapshot()
    assert schema_changes(before, django_catalog.schema_snapshot()) == []  # nothing changed, nothing reported

    engine = sa.create_engine(django_catalog.url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.execute(sa.text(statement))
    finally:
        engine.dispose()

    changes = schema_changes(before, django_catalog.schema_snapshot())
    assert [line for line in changes if line.startswith(expected)], changes


def test_the_snapshot_reports_a_changed_column(django_catalog: DjangoCatalog) -> None:
    before = django_catalog.schema_snapshot()
    engine = sa.create_engine(django_catalog.url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            if django_catalog.vendor == "postgresql":
                conn.execute(sa.text("ALTER TABLE aiecommerce_productimage ALTER COLUMN is_processed SET DEFAULT true"))
            else:  # SQLite cannot alter a column; a rename is the change it can make in place
                conn.execute(sa.text("ALTER TABLE aiecommerce_productimage RENAME COLUMN url TO image_url"))
    finally:
        engine.dispose()
    changes = schema_changes(before, django_catalog.schema_snapshot())
    if django_catalog.vendor == "postgresql":
        assert (
            "aiecommerce_productimage: column changed: is_processed: is_processed boolean NOT NULL -> "
            "is_processed boolean NOT NULL DEFAULT true" in changes
        )
    else:
        assert any(line.startswith("aiecommerce_productimage: column removed: url") for line in changes), changes
        assert any(line.startswith("aiecommerce_productimage: column added: image_url") for line in changes), changes


def test_each_test_gets_its_own_database(tmp_path: Path) -> None:
    first, second = f"sqlite:///{tmp_path / 'first.db'}", f"sqlite:///{tmp_path / 'second.db'}"
    with use_django_catalog(first) as catalog:
        catalog.ProductMaster.objects.create(code="only-in-first")
        assert catalog.ProductMaster.objects.count() == 1
    with use_django_catalog(second) as catalog:
        assert catalog.ProductMaster.objects.count() == 0
    with use_django_catalog(first) as catalog:  # migrating again is a no-op; the row is still there
        assert list(catalog.ProductMaster.objects.values_list("code", flat=True)) == ["only-in-first"]


def test_a_second_catalog_while_one_is_open_is_refused(
    tmp_path: Path, django_catalog_at: Callable[[str], DjangoCatalog]
) -> None:
    django_catalog_at(f"sqlite:///{tmp_path / 'a.db'}")
    with pytest.raises(RuntimeError, match="already in use"):
        django_catalog_at(f"sqlite:///{tmp_path / 'b.db'}")


@pytest.mark.postgres
def test_leaving_closes_djangos_postgresql_connection(postgres_admin_url: str, postgres_url: str) -> None:
    database = sa.engine.make_url(postgres_url).database

    def sessions_on_the_database() -> int:
        admin = sa.create_engine(postgres_admin_url, poolclass=NullPool)
        try:
            with admin.connect() as conn:
                return int(
                    conn.execute(
                        sa.text("SELECT count(*) FROM pg_stat_activity WHERE datname = :db"), {"db": database}
                    ).scalar_one()
                )
        finally:
            admin.dispose()

    with use_django_catalog(postgres_url) as catalog:
        catalog.ProductMaster.objects.create(code="P-1")
        assert sessions_on_the_database() == 1  # Django's own
    assert sessions_on_the_database() == 0


def test_the_committed_migration_matches_the_models() -> None:
    """``makemigrations --check`` fails when the models changed without a regenerated migration."""
    from django.core.management import call_command

    configure_django()
    call_command("makemigrations", "aiecommerce", check=True, dry_run=True, verbosity=0)


def test_django_database_settings_from_sqlalchemy_urls() -> None:
    assert django_database_settings("postgresql+psycopg2://shop:s3cret@127.0.0.1:5433/catalog") == {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "catalog",
        "USER": "shop",
        "PASSWORD": "s3cret",
        "HOST": "127.0.0.1",
        "PORT": "5433",
    }
    assert django_database_settings("sqlite:////tmp/x/catalog.db") == {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": "/tmp/x/catalog.db",
    }
    with pytest.raises(ValueError, match="mysql"):
        django_database_settings("mysql://127.0.0.1/catalog")
