"""Minimal Django settings for the original app's tables: one app (``aiecommerce``), nothing else.

The harness (``harness.py``) configures Django from these names once per process and points the ``default``
database at each test's own database. ``python -m ml_images_tests.django_catalog <command>`` uses this module as
``DJANGO_SETTINGS_MODULE``, e.g. to regenerate the migrations (``makemigrations aiecommerce``) or print their SQL
(``sqlmigrate aiecommerce 0001``); set ``ML_IMAGES_DJANGO_DATABASE_URL`` (an SQLAlchemy URL) to print it for
PostgreSQL.
"""

from __future__ import annotations

import os

from ml_images_tests.django_catalog.database import django_database_settings

# Never used to sign anything; Django refuses to start without one.
SECRET_KEY = "ml-images-tests-only"
DEBUG = False
INSTALLED_APPS = ["ml_images_tests.django_catalog.aiecommerce.apps.AiecommerceConfig"]
DATABASES = {
    "default": django_database_settings(os.environ.get("ML_IMAGES_DJANGO_DATABASE_URL", "sqlite:///:memory:")),
}
# The original app sets no DEFAULT_AUTO_FIELD: Django 6's default is BigAutoField (bigint identity on PostgreSQL).
# Naming it keeps the same ids on Django 5.2, whose default was still AutoField.
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
# Django must not reconfigure the test process's logging.
LOGGING_CONFIG = None
