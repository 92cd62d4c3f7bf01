"""Fixtures of the ``ml-images`` subprocess tests: the embedded-default home, its catalog, and a web of photos."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ml_images_tests.pipeline.support import Catalog, ImageWeb, running_web


@pytest.fixture
def web() -> Iterator[ImageWeb]:
    with running_web() as server:
        yield server


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return Path(os.environ["ML_IMAGES_HOME"])


@pytest.fixture
def catalog(home: Path) -> Iterator[Catalog]:
    db = Catalog(f"sqlite:///{home / 'catalog.db'}")  # the embedded default location
    try:
        yield db
    finally:
        db.close()
