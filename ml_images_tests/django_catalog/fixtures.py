"""Pytest fixtures of the Django catalog harness (re-exported by ``ml_images_tests/conftest.py``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest

from ml_images_tests.django_catalog.harness import DjangoCatalog, use_django_catalog


@pytest.fixture
def django_catalog_at() -> Iterator[Callable[[str], DjangoCatalog]]:
    """Migrates the Django app into the database at a URL given by the test; closes Django's connection after."""
    with ExitStack() as stack:

        def migrate(url: str) -> DjangoCatalog:
            return stack.enter_context(use_django_catalog(url))

        yield migrate


@pytest.fixture
def django_catalog(database_url: str, django_catalog_at: Callable[[str], DjangoCatalog]) -> DjangoCatalog:
    """The original app's tables, made by Django's ``migrate``, on SQLite and on PostgreSQL (``database_url``)."""
    return django_catalog_at(database_url)
