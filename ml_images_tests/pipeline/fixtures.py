"""Fixtures shared by the pipeline, Dagster and CLI tests (re-exported by their conftest modules)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ml_images.processing.background import BackgroundRemover, get_shared_remover
from ml_images_tests.pipeline.support import Catalog, ImageWeb, running_web


@pytest.fixture
def web() -> Iterator[ImageWeb]:
    with running_web() as server:
        yield server


@pytest.fixture
def catalog(database_url: str) -> Iterator[Catalog]:
    """A migrated catalog on SQLite and on PostgreSQL."""
    db = Catalog(database_url)
    try:
        yield db
    finally:
        db.close()


@pytest.fixture
def sqlite_catalog(sqlite_url: str) -> Iterator[Catalog]:
    db = Catalog(sqlite_url)
    try:
        yield db
    finally:
        db.close()


@pytest.fixture
def image_root(tmp_path: Path) -> Path:
    return tmp_path / "images"


@pytest.fixture(scope="session")
def remover() -> BackgroundRemover:
    """The real rembg u2netp session, shared by the whole test session."""
    shared = get_shared_remover("u2netp")
    shared.ensure_available()
    return shared
