"""Engines, the Alembic migration (same schema as the models, up/down/up) and the schema guard."""

from __future__ import annotations

import socket
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from ml_images.catalog.db import (
    create_catalog_engine,
    current_revision,
    describe_db_error,
    downgrade_schema,
    ensure_schema_current,
    head_revision,
    is_unavailable_error,
    make_session_factory,
    mask_url_password,
    safe_url,
    upgrade_schema,
)
from ml_images.catalog.models import Base
from ml_images.catalog.rules import DEFAULT_PUBLICATION_RULES
from ml_images.catalog.selection import ImageCandidateSelector, MercadoLibreFilter
from ml_images.errors import CatalogUnavailableError, ConfigurationError, SchemaNotMigratedError

CATALOG_TABLES = {"product_master", "product_image", "mercadolibre_listing", "image_fetch_attempt", "search_cache"}


def _split_top_level(body: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in body:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    parts.append("".join(current).strip())
    return sorted(parts)


def _schema(engine: sa.Engine) -> list[tuple[str, ...]]:
    """Every table, column, constraint and index as the database reports it (order-insensitive)."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            rows = conn.execute(
                sa.text(
                    "SELECT type, name, sql FROM sqlite_master "
                    "WHERE name NOT LIKE 'sqlite_%' AND tbl_name != 'alembic_version' ORDER BY type, name"
                )
            ).all()
            out = []
            for kind, name, sql in rows:
                text = " ".join((sql or "").split())
                if kind == "table":
                    head, _, rest = text.partition("(")
                    out.append((kind, name, head, *_split_top_level(rest.rsplit(")", 1)[0])))
                else:
                    out.append((kind, name, text))
            return out
        columns = conn.execute(
            sa.text(
                "SELECT table_name, column_name, data_type, character_maximum_length::text, numeric_precision::text, "
                "numeric_scale::text, is_nullable, column_default FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name != 'alembic_version' ORDER BY 1, 2"
            )
        ).all()
        constraints = conn.execute(
            sa.text(
                "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE connamespace = current_schema()::regnamespace AND conrelid::regclass::text != 'alembic_version' "
                "ORDER BY 1, 2"
            )
        ).all()
        indexes = conn.execute(
            sa.text(
                "SELECT tablename, indexname, indexdef FROM pg_indexes "
                "WHERE schemaname = current_schema() AND tablename != 'alembic_version' ORDER BY 1, 2"
            )
        ).all()
        return [tuple(str(v) for v in row) for row in (*columns, *constraints, *indexes)]


def _tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def test_migration_creates_exactly_what_the_models_declare(database_url: str, tmp_path: Path) -> None:
    engine = create_catalog_engine(database_url)
    try:
        upgrade_schema(engine)
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
            assert compare_metadata(context, Base.metadata) == []
        migrated = _schema(engine)
        # The same models through create_all on an empty database: every name, type, default, check, foreign key,
        # unique constraint and (partial) index must be identical.
        downgrade_schema(engine, "base")
        assert _tables(engine) & CATALOG_TABLES == set()
        Base.metadata.create_all(engine)
        assert _schema(engine) == migrated
        Base.metadata.drop_all(engine)
    finally:
        engine.dispose()


def test_partial_indexes_exist_with_their_predicates(migrated_url: str) -> None:
    engine = create_catalog_engine(migrated_url)
    try:
        with engine.connect() as conn:
            query = (
                "SELECT name, sql FROM sqlite_master WHERE type = 'index'"
                if engine.dialect.name == "sqlite"
                else "SELECT indexname, indexdef FROM pg_indexes"
            )
            sql: dict[str, str] = {str(name): str(text) for name, text in conn.execute(sa.text(query)).all()}
        candidates = sql["ix_product_master_ml_candidates"]
        in_flight = sql["uq_image_fetch_attempt_in_flight"]
        assert "WHERE" in candidates
        if engine.dialect.name == "postgresql":
            assert "INCLUDE (category, price)" in candidates
        assert "is_for_mercadolibre" in candidates
        assert "is_active" in candidates
        assert "UNIQUE" in in_flight.upper()
        assert "finished_at IS NULL" in in_flight
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade(database_url: str) -> None:
    engine = create_catalog_engine(database_url)
    try:
        assert current_revision(engine) is None
        upgrade_schema(engine)
        assert current_revision(engine) == head_revision() == "0003"
        assert _tables(engine) >= CATALOG_TABLES
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO product_master (code, last_updated) VALUES ('A', CURRENT_TIMESTAMP)"))
        downgrade_schema(engine, "base")
        assert current_revision(engine) is None
        assert _tables(engine) & CATALOG_TABLES == set()
        upgrade_schema(database_url)  # by URL this time
        assert current_revision(engine) == head_revision()
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM product_master")).scalar() == 0
        upgrade_schema(engine)  # idempotent
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


_LEASE_COLUMNS = {"heartbeat_at", "holder_host", "holder_node", "holder_pid", "holder_started", "refusal_counts"}


def _columns(engine: sa.Engine, table: str) -> set[str]:
    return {c["name"] for c in sa.inspect(engine).get_columns(table)}


def _indexes(engine: sa.Engine, table: str) -> set[str]:
    return {str(i["name"]) for i in sa.inspect(engine).get_indexes(table)}


def test_0002_adds_the_lease_columns_and_goes_back_without_losing_rows(database_url: str) -> None:
    engine = create_catalog_engine(database_url)
    try:
        upgrade_schema(engine, "0001")
        with engine.begin() as conn:
            conn.execute(
                sa.text("INSERT INTO product_master (id, code, last_updated) VALUES (7, 'A', CURRENT_TIMESTAMP)")
            )
            conn.execute(
                sa.text(
                    "INSERT INTO image_fetch_attempt (product_id, run_id, started_at, outcome, refusals) "
                    "VALUES (7, 'old-run', CURRENT_TIMESTAMP, 'running', NULL)"
                )
            )
            conn.execute(
                sa.text(
                    'INSERT INTO product_image (product_id, url, "order", storage_key, created_at) '
                    "VALUES (7, 'u', 0, 'products/A/0-aaaaaaaaaaaa.jpg', CURRENT_TIMESTAMP)"
                )
            )
        assert not _LEASE_COLUMNS & _columns(engine, "image_fetch_attempt")

        upgrade_schema(engine, "0002")
        assert current_revision(engine) == "0002"
        assert _columns(engine, "image_fetch_attempt") >= _LEASE_COLUMNS
        assert "ix_product_image_storage_key" in _indexes(engine, "product_image")
        with engine.connect() as conn:
            row = conn.execute(sa.text("SELECT run_id, heartbeat_at, holder_pid FROM image_fetch_attempt")).one()
            assert tuple(row) == ("old-run", None, None)  # a claim from before: only its start tells its age
            assert conn.execute(sa.text("SELECT storage_key FROM product_image")).scalar() == (
                "products/A/0-aaaaaaaaaaaa.jpg"
            )

        downgrade_schema(engine, "0001")
        assert current_revision(engine) == "0001"
        assert not _LEASE_COLUMNS & _columns(engine, "image_fetch_attempt")
        assert "ix_product_image_storage_key" not in _indexes(engine, "product_image")
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM image_fetch_attempt")).scalar() == 1
            assert conn.execute(sa.text("SELECT count(*) FROM product_image")).scalar() == 1
        upgrade_schema(engine)
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


_ATTEMPT_COST_COLUMNS = {
    "provider",
    "search_calls_by_provider",
    "search_cache_hits",
    "downloads",
    "candidates",
    "cover_report",
}


def test_0003_adds_image_details_and_attempt_costs_and_goes_back_without_losing_rows(database_url: str) -> None:
    engine = create_catalog_engine(database_url)
    try:
        upgrade_schema(engine, "0002")
        with engine.begin() as conn:
            conn.execute(
                sa.text("INSERT INTO product_master (id, code, last_updated) VALUES (7, 'A', CURRENT_TIMESTAMP)")
            )
            conn.execute(
                sa.text(
                    "INSERT INTO image_fetch_attempt (product_id, run_id, started_at, outcome, search_calls) "
                    "VALUES (7, 'old-run', CURRENT_TIMESTAMP, 'stored', 2)"
                )
            )
            conn.execute(
                sa.text(
                    'INSERT INTO product_image (id, product_id, url, "order", created_at) '
                    "VALUES (70, 7, 'u', 0, CURRENT_TIMESTAMP)"
                )
            )
        assert "ml_images_image" not in sa.inspect(engine).get_table_names()

        upgrade_schema(engine, "0003")
        assert _columns(engine, "image_fetch_attempt") >= _ATTEMPT_COST_COLUMNS
        with engine.begin() as conn:
            row = conn.execute(
                sa.text("SELECT search_calls, search_cache_hits, downloads, provider FROM image_fetch_attempt")
            ).one()
            assert tuple(row) == (2, 0, 0, None)  # an attempt from before: no cost beyond what it recorded
            conn.execute(
                sa.text(
                    "INSERT INTO ml_images_image (product_image_id, product_id, source_kind, created_at) "
                    "VALUES (70, 7, 'distributor', CURRENT_TIMESTAMP)"
                )
            )
            # The detail goes with its picture.
            conn.execute(sa.text("DELETE FROM product_image WHERE id = 70"))
            assert conn.execute(sa.text("SELECT count(*) FROM ml_images_image")).scalar() == 0

        downgrade_schema(engine, "0002")
        assert current_revision(engine) == "0002"
        assert "ml_images_image" not in sa.inspect(engine).get_table_names()
        assert not _ATTEMPT_COST_COLUMNS & _columns(engine, "image_fetch_attempt")
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM image_fetch_attempt")).scalar() == 1
        upgrade_schema(engine)
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_ensure_schema_current_names_the_upgrade_command(database_url: str) -> None:
    engine = create_catalog_engine(database_url)
    try:
        with pytest.raises(SchemaNotMigratedError, match="ml-images db upgrade"):
            ensure_schema_current(engine)
        upgrade_schema(engine)
        ensure_schema_current(engine)
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = 'ffff'"))
        with pytest.raises(SchemaNotMigratedError, match="does not know"):
            ensure_schema_current(engine)
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = :head"), {"head": head_revision()})
        downgrade_schema(engine, "base")
        with pytest.raises(SchemaNotMigratedError, match="ml-images db upgrade"):
            ensure_schema_current(engine)
    finally:
        engine.dispose()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_postgres_is_catalog_unavailable_without_the_password() -> None:
    url = f"postgresql+psycopg2://shop:s3cret-pw@127.0.0.1:{_closed_port()}/shop?connect_timeout=2"
    engine = create_catalog_engine(url)
    try:
        with pytest.raises(CatalogUnavailableError) as info:
            ensure_schema_current(engine)
        with pytest.raises(CatalogUnavailableError) as info_upgrade:
            upgrade_schema(url)
    finally:
        engine.dispose()
    for message in (str(info.value), str(info_upgrade.value)):
        assert "s3cret-pw" not in message
        assert "127.0.0.1" in message
    assert info.value.__cause__ is None  # the driver error (with its details) is not chained into logs


def test_unopenable_sqlite_file_is_catalog_unavailable(tmp_path: Path) -> None:
    engine = create_catalog_engine(f"sqlite:///{tmp_path}")  # a folder, not a database file
    try:
        with pytest.raises(CatalogUnavailableError, match="is unavailable: unable to open"):
            ensure_schema_current(engine)
    finally:
        engine.dispose()


def test_sqlite_engine_creates_its_folder_and_sets_pragmas(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "home" / "catalog.db"
    engine = create_catalog_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
            assert conn.exec_driver_sql("SELECT ml_images_norm_category('  cámaras ')").scalar() == "CÁMARAS"
        assert path.is_file()
    finally:
        engine.dispose()


def test_plain_postgresql_urls_use_the_installed_psycopg2_driver() -> None:
    engine = create_catalog_engine("postgresql://u:pw@127.0.0.1:5432/shop")
    try:
        assert engine.dialect.driver == "psycopg2"
    finally:
        engine.dispose()


def test_safe_url_hides_the_password() -> None:
    assert safe_url("postgresql+psycopg2://shop:s3cret@db:5432/x") == "postgresql+psycopg2://shop:***@db:5432/x"
    assert "s3cret" not in safe_url("not a url s3cret")


def test_only_availability_failures_become_catalog_unavailable(sqlite_url: str) -> None:
    locked = sa.exc.OperationalError("UPDATE x", {}, sqlite3.OperationalError("database is locked"))
    missing = sa.exc.OperationalError("SELECT x", {}, sqlite3.OperationalError("no such table: product_master"))
    assert is_unavailable_error(locked)
    assert not is_unavailable_error(missing)
    engine = create_catalog_engine(sqlite_url)
    try:
        selector = ImageCandidateSelector(MercadoLibreFilter(make_session_factory(engine), DEFAULT_PUBLICATION_RULES))
        # an un-migrated database is a deployment error (ensure_schema_current says so), not a passing outage
        with pytest.raises(sa.exc.OperationalError, match="no such table"):
            selector.count_pending()
    finally:
        engine.dispose()


def test_a_one_letter_password_is_masked_only_where_it_is_a_password() -> None:
    """The masking goes through SQLAlchemy's own URL rendering: a password ``p`` never becomes "***ort"."""
    port = _closed_port()
    url = f"postgresql+psycopg2://shop:p@127.0.0.1:{port}/shop?connect_timeout=2"
    engine = create_catalog_engine(url)
    try:
        with pytest.raises(CatalogUnavailableError) as info:
            ensure_schema_current(engine)
    finally:
        engine.dispose()
    message = str(info.value)
    assert f"port {port} failed" in message  # psycopg2's own words, intact
    assert "***ort" not in message
    assert f"shop:***@127.0.0.1:{port}/shop" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("port 5432 failed: p", "port 5432 failed: p"),
        ("dsn postgresql+psycopg2://shop:p@db:5432/x", "dsn postgresql+psycopg2://shop:***@db:5432/x"),
        ("for shop:p@db", "for shop:***@db"),
        ("options: password=p host=db", "options: password=*** host=db"),
        ("options: password='p' host=db", "options: password='***' host=db"),
        ("passport=pp", "passport=pp"),
    ],
)
def test_mask_url_password(text: str, expected: str) -> None:
    assert mask_url_password(text, "postgresql+psycopg2://shop:p@db:5432/x") == expected


def test_mask_url_password_with_characters_that_urls_escape() -> None:
    url = "postgresql+psycopg2://shop:s%40cr%3At@db/x"  # the password is "s@cr:t"
    assert mask_url_password(f"failed for {url}", url) == "failed for postgresql+psycopg2://shop:***@db/x"
    assert "s@cr:t" not in describe_db_error(RuntimeError("password=s@cr:t rejected"), url)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg2://shop:s3cret@db:notaport/x",
        "nosuchdb://shop:s3cret@db/x",
        "postgresql+nosuchdriver://shop:s3cret@db/x",
    ],
)
def test_unusable_urls_are_configuration_errors_without_the_password(url: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        create_catalog_engine(url)
    assert "s3cret" not in str(info.value)


def test_a_sqlite_folder_that_cannot_be_written_is_a_configuration_error(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the folder should be")
    with pytest.raises(ConfigurationError, match="is a file, not a folder"):
        create_catalog_engine(f"sqlite:///{blocker / 'catalog.db'}")
    with pytest.raises(ConfigurationError, match="cannot be created or written"):
        create_catalog_engine(f"sqlite:///{blocker / 'home' / 'catalog.db'}")
