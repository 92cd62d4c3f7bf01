"""Alembic environment of the catalog.

``ml_images.catalog.db`` passes an open connection in ``config.attributes["connection"]`` (no alembic.ini, no URL
through configparser). Running ``alembic`` by hand works too: set ``sqlalchemy.url`` in a config of your own.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from ml_images.catalog.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things in place; batch mode rebuilds the table for later revisions.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        version_table=config.attributes.get("version_table", "alembic_version"),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from ml_images.catalog.db import create_catalog_engine

    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no connection given in config.attributes and no sqlalchemy.url configured")
    engine = create_catalog_engine(url)
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("offline (--sql) migrations are not supported; run `ml-images db upgrade` on a database")
run_migrations_online()
