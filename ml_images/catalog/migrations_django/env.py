"""Alembic environment of the ``django`` catalog layout: only the project's own ``ml_images_*`` tables.

The version is kept in ``ml_images_alembic_version``, not ``alembic_version``: a Django project that uses Alembic
for something else keeps its own. ``include_name`` limits any comparison to the project's tables, so the Django
tables are never considered, let alone altered. ``ml_images.catalog.db`` passes the open connection.
"""

from __future__ import annotations

from typing import Any

from alembic import context

from ml_images.catalog.django_models import PROJECT_PREFIX, VERSION_TABLE, ProjectBase

config = context.config


def _include_name(name: str | None, type_: str, _parents: Any) -> bool:
    return type_ != "table" or (name or "").startswith(PROJECT_PREFIX)


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run the django layout's migrations with `ml-images db upgrade`")
    context.configure(
        connection=connection,
        target_metadata=ProjectBase.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        version_table=config.attributes.get("version_table", VERSION_TABLE),
        include_name=_include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("offline (--sql) migrations are not supported; run `ml-images db upgrade` on a database")
run_migrations_online()
