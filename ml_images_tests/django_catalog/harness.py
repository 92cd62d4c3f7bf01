"""Django in the test process: configured once, pointed at one test database at a time, migrated with ``migrate``.

Why in the test process and not in a subprocess: the tests read the result back through Django's ORM
(``product.images.all()``, the listing's ``status``), which needs Django's models in the process that asserts.
Django's settings are process-wide and can be configured only once, so they are, on first use; what changes per
test is the ``default`` database entry. ``connections.settings`` is the very dict Django reads when it opens a
connection (the same object as ``settings.DATABASES``), so the switch closes and forgets this thread's connection,
replaces the entry in place and lets Django open a new connection lazily on next use. One Django database is
active at a time (a second ``use_django_catalog`` while one is open is refused), and the connection is closed at
the end, before the ``postgres_url`` fixture drops the database.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from sqlalchemy.engine import make_url

from ml_images_tests.django_catalog.database import django_database_settings
from ml_images_tests.django_catalog.schema import TableSchema, describe_tables

APP_LABEL = "aiecommerce"
APP_MODULE = "ml_images_tests.django_catalog.aiecommerce"

_lock = threading.Lock()
_active: str | None = None


@dataclass(frozen=True)
class DjangoCatalog:
    """A database migrated by Django with the original app's three tables, and Django's ORM pointed at it."""

    # The SQLAlchemy URL of the database (what ``ML_IMAGES_DATABASE_URL`` would be); kept out of repr, which
    # pytest prints on failure, as it may carry a password.
    url: str = field(repr=False)
    vendor: str  # "postgresql" or "sqlite"
    models: ModuleType  # the app's models module: ProductMaster, ProductImage, MercadoLibreListing

    @property
    def ProductMaster(self) -> Any:  # named like the model class it returns
        return self.models.ProductMaster

    @property
    def ProductImage(self) -> Any:
        return self.models.ProductImage

    @property
    def MercadoLibreListing(self) -> Any:
        return self.models.MercadoLibreListing

    @property
    def tables(self) -> dict[str, str]:
        """Model name -> table name, as Django named them (``aiecommerce_productmaster``, ...)."""
        return {
            model.__name__: model._meta.db_table
            for model in (self.ProductMaster, self.ProductImage, self.MercadoLibreListing)
        }

    def schema_snapshot(self) -> dict[str, TableSchema]:
        """The three tables as the database describes them (read with SQLAlchemy, not Django)."""
        return describe_tables(self.url, self.tables.values())


def configure_django() -> None:
    """Configures Django from ``ml_images_tests.django_catalog.settings`` once per process."""
    import django
    from django.conf import settings

    if settings.configured:
        if APP_MODULE + ".apps.AiecommerceConfig" not in settings.INSTALLED_APPS:
            raise RuntimeError("Django is already configured in this process without the aiecommerce test app")
        return
    from ml_images_tests.django_catalog import settings as catalog_settings

    values = {name: getattr(catalog_settings, name) for name in dir(catalog_settings) if name.isupper()}
    settings.configure(**values)
    django.setup()


def _point_default_database_at(url: str) -> None:
    from django.db import DEFAULT_DB_ALIAS, connections

    connections.close_all()
    with contextlib.suppress(AttributeError):  # never opened in this thread
        del connections[DEFAULT_DB_ALIAS]
    entry = connections.configure_settings({DEFAULT_DB_ALIAS: django_database_settings(url)})[DEFAULT_DB_ALIAS]
    connections.settings[DEFAULT_DB_ALIAS] = entry


@contextmanager
def use_django_catalog(url: str) -> Iterator[DjangoCatalog]:
    """Migrates the ``aiecommerce`` app into the database at ``url`` with Django's ``migrate``; yields the handle."""
    global _active
    configure_django()
    with _lock:
        if _active is not None:
            shown = make_url(_active).render_as_string(hide_password=True)
            raise RuntimeError(f"a Django catalog is already in use in this process ({shown}); close it first")
        _active = url
    try:
        from django.core.management import call_command
        from django.db import connection

        _point_default_database_at(url)
        call_command("migrate", APP_LABEL, interactive=False, verbosity=0)
        from ml_images_tests.django_catalog.aiecommerce import models

        yield DjangoCatalog(url=url, vendor=connection.vendor, models=models)
    finally:
        try:
            from django.db import connections

            connections.close_all()
            _point_default_database_at("sqlite:///:memory:")
        finally:
            with _lock:
                _active = None
