"""Fixtures of the processing tests; the generators themselves live in ``images.py``."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from PIL import Image

from ml_images.download.results import DownloadedImage
from ml_images.processing.background import BackgroundRemover, get_shared_remover
from ml_images_tests.processing.images import downloaded, encode, product_photo

Encode = Callable[..., bytes]


@pytest.fixture
def photo() -> Callable[..., Image.Image]:
    return product_photo


@pytest.fixture
def encode_image() -> Encode:
    return encode


@pytest.fixture
def as_download() -> Callable[..., DownloadedImage]:
    return downloaded


@pytest.fixture(scope="session")
def remover() -> BackgroundRemover:
    """The real rembg u2netp session, shared by every test of the session (``make test`` installs the model)."""
    shared = get_shared_remover("u2netp")
    shared.ensure_available()
    return shared
