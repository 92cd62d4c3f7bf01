"""Fixtures of the demo tests: a migrated SQLite catalog and placeholder photo files for the sample catalog."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from PIL import Image
from sqlalchemy.orm import Session, sessionmaker

from demo.sample_catalog import all_photos
from ml_images.catalog.db import create_catalog_engine, make_session_factory, upgrade_schema


@pytest.fixture
def catalog_engine(sqlite_url: str) -> Iterator[sa.Engine]:
    engine = create_catalog_engine(sqlite_url)
    upgrade_schema(engine)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def session_factory(catalog_engine: sa.Engine) -> sessionmaker[Session]:
    return make_session_factory(catalog_engine)


@pytest.fixture
def placeholder_photos(tmp_path: Path) -> dict[str, Path]:
    """One tiny real image per sample-catalog photo name (rendering all 55 photos takes about a minute)."""
    folder = tmp_path / "photos"
    folder.mkdir()
    paths = {}
    fmt = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}
    for spec in all_photos():
        path = folder / spec.filename
        Image.new("RGB", (spec.shot.width // 10, spec.shot.height // 10), (120, 90, 60)).save(path, fmt[spec.format])
        paths[spec.name] = path
    return paths
