"""Fixtures of the storage tests: small real JPEGs to store, and a TCP port on 127.0.0.1 nobody listens on."""

from __future__ import annotations

import io
import socket

import pytest
from PIL import Image


@pytest.fixture
def jpeg_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 30, 30)).save(out, "JPEG", quality=90)
    return out.getvalue()


@pytest.fixture
def closed_port() -> int:
    """A port that was just free: connecting to it is refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
