"""Engines, sessions and the schema version of the catalog database (SQLite embedded default or PostgreSQL).

Alembic is configured in code (no ``alembic.ini``): the script location is the ``migrations`` folder beside this
module and the connection is handed to ``env.py`` through ``config.attributes``, so a URL with ``%`` in its
password never goes through configparser interpolation.
"""

from __future__ import annotations

import importlib.util
import logging
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

from ml_images.catalog.layout import CatalogLayout, layout_of, register_layout
from ml_images.catalog.rules import SQLITE_FUNCTION_NAME, normalize_category
from ml_images.errors import CatalogUnavailableError, ConfigurationError, SchemaNotMigratedError
from ml_images.settings import check_database_url, ensure_writable_folder

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
UPGRADE_COMMAND = "ml-images db upgrade"
# psycopg2 waits for the OS TCP timeout (minutes) on an unreachable host unless told otherwise.
_PG_CONNECT_TIMEOUT_S = 10
_SQLITE_BUSY_TIMEOUT_MS = 30000


class _AlembicChatterFilter(logging.Filter):
    """Alembic logs two INFO lines each time it merely reads the schema version; keep "Running upgrade" ones."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(("Context impl", "Will assume"))


logging.getLogger("alembic.runtime.migration").addFilter(_AlembicChatterFilter())


def safe_url(url: str | URL) -> str:
    """The URL as text with its password masked: the only form that may reach logs and messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL: say nothing of its content (it may hold a password)
        return "<unparsable database URL>"


def _resolve_postgres_driver(url: URL) -> URL:
    # SQLAlchemy 2.1 maps plain ``postgresql://`` to psycopg 3; the project ships psycopg2 only.
    if url.drivername == "postgresql" and importlib.util.find_spec("psycopg") is None:
        return url.set(drivername="postgresql+psycopg2")
    return url


def _sqlite_database_path(url: URL) -> Path | None:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:") or url.query.get("uri"):
        return None
    return Path(database).expanduser()


def _on_sqlite_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    # Foreign keys are off by default in SQLite (cascade deletes would silently not happen); WAL lets the
    # selection read while a product's images are being recorded; busy_timeout makes writers queue, not fail.
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}")
    finally:
        cursor.close()
    # SQLite's upper() folds ASCII only; the category match must fold "cámaras" like PostgreSQL does.
    dbapi_connection.create_function(SQLITE_FUNCTION_NAME, 1, normalize_category, deterministic=True)


def create_catalog_engine(url: str, layout: CatalogLayout | None = None) -> sa.Engine:
    """An engine for the catalog: SQLite (folder created, pragmas set) or PostgreSQL (pre-ping, connect timeout).

    The engine carries its layout (``layout_of``): the one given, else ``ML_IMAGES_CATALOG_LAYOUT``'s.
    A URL SQLAlchemy cannot use, a missing driver or a SQLite folder that cannot be written is a
    ``ConfigurationError`` (said once, clearly), not a driver traceback on the first query.
    """
    parsed = _resolve_postgres_driver(make_url(check_database_url(url, "the catalog database URL")))
    engine = _create_engine(parsed)
    register_layout(engine, layout or CatalogLayout.from_env())
    return engine


def _create_engine(parsed: URL) -> sa.Engine:
    backend = parsed.get_backend_name()
    try:
        if backend == "sqlite":
            path = _sqlite_database_path(parsed)
            if path is not None:
                # SQLite in WAL mode writes beside the file (-wal, -shm): the folder must be writable.
                ensure_writable_folder(path.parent, "the folder of the SQLite catalog (ML_IMAGES_HOME)")
            engine = sa.create_engine(parsed)
            event.listen(engine, "connect", _on_sqlite_connect)
            return engine
        if backend == "postgresql":
            connect_args: dict[str, Any] = {}
            if "connect_timeout" not in parsed.query:
                connect_args["connect_timeout"] = _PG_CONNECT_TIMEOUT_S
            return sa.create_engine(parsed, pool_pre_ping=True, connect_args=connect_args)
        return sa.create_engine(parsed, pool_pre_ping=True)
    except (ImportError, sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as exc:
        raise ConfigurationError(
            f"the catalog database {safe_url(parsed)} cannot be used: {type(exc).__name__}: {exc}"
        ) from None


def make_session_factory(engine: sa.Engine) -> sessionmaker[Session]:
    """Sessions whose objects stay readable after commit (the pipeline hands them across steps)."""
    return sessionmaker(bind=engine, expire_on_commit=False)


def mask_url_password(text: str, url: str | URL) -> str:
    """``text`` with the URL's password masked wherever it appears *as a password*: inside the URL itself (as
    SQLAlchemy renders it, or as written), after ``user:`` before ``@``, or as a libpq ``password=`` option.
    The bare characters are left alone elsewhere: a password ``p`` must not turn "port" into "***ort"."""
    try:
        parsed = make_url(url)
    except Exception:  # unparsable: nothing can be told apart in it; the caller never shows the URL itself
        return text
    password = parsed.password
    if not password:
        return text
    secret = str(password)
    masked = parsed.render_as_string(hide_password=True)
    for shown in {str(url), parsed.render_as_string(hide_password=False)}:
        text = text.replace(shown, masked)
    for form in {secret, quote(secret, safe="")}:
        escaped = re.escape(form)
        text = re.sub(rf"(?<=:){escaped}(?=@)", "***", text)
        text = re.sub(rf"(\bpassword\s*=\s*)(['\"]?){escaped}\2(?=[\s'\",;]|$)", r"\1\2***\2", text)
    return text


def describe_db_error(exc: BaseException, url: str | URL | None = None) -> str:
    """One line about a database failure, without the statement, its parameters or any password."""
    orig = getattr(exc, "orig", None) or exc
    text = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
    if url is not None:
        text = mask_url_password(text, url)
    where = f" at {safe_url(url)}" if url is not None else ""
    return f"the catalog database{where} is unavailable: {text}"


# SQLite reports programming errors ("no such table") as OperationalError too; only these mean "unavailable".
_SQLITE_UNAVAILABLE = ("locked", "busy", "unable to open", "disk i/o", "readonly database", "database or disk is full")


def is_unavailable_error(exc: BaseException) -> bool:
    """True for "cannot connect / connection lost / locked / timed out": worth retrying later."""
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, sa.exc.InterfaceError):
        return True
    if not isinstance(exc, sa.exc.OperationalError):
        return False
    if isinstance(exc.orig, sqlite3.Error):
        return any(marker in str(exc.orig).lower() for marker in _SQLITE_UNAVAILABLE)
    return True


@contextmanager
def translate_connection_errors(url: str | URL | None) -> Iterator[None]:
    """Turns "cannot connect / connection lost / database locked" into ``CatalogUnavailableError``."""
    try:
        yield
    except sa.exc.DBAPIError as exc:
        if not is_unavailable_error(exc):
            raise
        raise CatalogUnavailableError(describe_db_error(exc, url)) from None


def _alembic_config(layout: CatalogLayout | None = None) -> Config:
    layout = layout or CatalogLayout()
    config = Config()
    config.set_main_option("script_location", str(layout.migrations_dir))
    config.attributes["version_table"] = layout.version_table
    return config


@contextmanager
def _engine_for(url_or_engine: str | sa.Engine) -> Iterator[sa.Engine]:
    if isinstance(url_or_engine, sa.Engine):
        yield url_or_engine
        return
    engine = create_catalog_engine(url_or_engine)
    try:
        yield engine
    finally:
        engine.dispose()


def _run_alembic(url_or_engine: str | sa.Engine, action: str, revision: str) -> None:
    with _engine_for(url_or_engine) as engine, translate_connection_errors(engine.url), engine.begin() as connection:
        layout = layout_of(engine)
        if layout.is_django:
            _require_django_tables(connection, layout)
        config = _alembic_config(layout)
        config.attributes["connection"] = connection
        if action == "upgrade":
            command.upgrade(config, revision)
        else:
            command.downgrade(config, revision)


def upgrade_schema(url_or_engine: str | sa.Engine, revision: str = "head") -> None:
    """Creates or upgrades the catalog schema (what ``ml-images db upgrade`` does)."""
    _run_alembic(url_or_engine, "upgrade", revision)


def downgrade_schema(url_or_engine: str | sa.Engine, revision: str) -> None:
    """Downgrades the schema to ``revision`` (``base`` drops every table of the catalog)."""
    _run_alembic(url_or_engine, "downgrade", revision)


def _require_django_tables(connection: sa.Connection, layout: CatalogLayout) -> None:
    # This project never creates the Django tables: without them there is no catalog to work on.
    present = set(sa.inspect(connection).get_table_names())
    missing = [table for table in layout.shop_tables if table not in present]
    if missing:
        raise SchemaNotMigratedError(
            f"the Django tables {', '.join(missing)} are missing (ML_IMAGES_CATALOG_LAYOUT=django, "
            f"ML_IMAGES_DJANGO_APP_LABEL={layout.app_label}): run the Django app's own `migrate` first, or check "
            "the app label"
        )


def head_revision(layout: CatalogLayout | None = None) -> str:
    head = ScriptDirectory.from_config(_alembic_config(layout)).get_current_head()
    if head is None:  # only possible if the migrations folder was not shipped
        raise RuntimeError(f"no Alembic revision found in {MIGRATIONS_DIR}")
    return head


def current_revision(engine: sa.Engine) -> str | None:
    """The revision recorded in the database, or None when it was never migrated."""
    version_table = layout_of(engine).version_table
    with translate_connection_errors(engine.url), engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": version_table})
        return context.get_current_revision()


def ensure_schema_current(engine: sa.Engine) -> None:
    """Refuses to go on unless the catalog is reachable and migrated to the revision this code expects."""
    where = safe_url(engine.url)
    layout = layout_of(engine)
    if layout.is_django:
        with translate_connection_errors(engine.url), engine.connect() as connection:
            _require_django_tables(connection, layout)
    current = current_revision(engine)
    head = head_revision(layout)
    if current == head:
        return
    if current is None:
        raise SchemaNotMigratedError(
            f"the catalog database at {where} has no schema yet; run `{UPGRADE_COMMAND}` to create it"
        )
    known = {script.revision for script in ScriptDirectory.from_config(_alembic_config(layout)).walk_revisions()}
    if current not in known:
        raise SchemaNotMigratedError(
            f"the catalog database at {where} is at revision {current!r}, which this version of ml_images does not "
            f"know (expected {head!r}): another version of ml_images migrated it; run this version against a "
            f"database it migrated with `{UPGRADE_COMMAND}`"
        )
    raise SchemaNotMigratedError(
        f"the catalog database at {where} is at revision {current!r}, behind {head!r}; run `{UPGRADE_COMMAND}`"
    )
