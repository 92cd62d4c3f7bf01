"""Image generators for the processing tests: product-like photos and every Pillow edge case, made on the fly."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from ml_images.download.results import DownloadedImage
from ml_images.search.candidates import ImageCandidate

Encode = Callable[..., bytes]


def product_photo(
    width: int = 600,
    height: int = 600,
    seed: int = 0,
    *,
    background: tuple[int, int, int] | None = None,
    object_color: tuple[int, int, int] | None = None,
) -> Image.Image:
    """A shaded bottle-like object with a highlight on a striped, noisy background (docs/decisions.md)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.array(background, dtype=np.float32) if background is not None else rng.uniform(90, 230, 3)
    stripes = 10 * np.sin(xx / width * rng.uniform(20, 60) + 3 * np.sin(yy / height * 7))
    bg = base[None, None, :] * (0.85 + 0.2 * yy[..., None] / height) + stripes[..., None]
    bg += rng.normal(0, 6, (height, width, 3))
    cx, cy = width * rng.uniform(0.42, 0.58), height * rng.uniform(0.47, 0.53)
    ax, ay = width * rng.uniform(0.16, 0.24), height * rng.uniform(0.24, 0.32)
    d = ((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2
    shape = Image.fromarray((d < 1).astype(np.uint8) * 255)
    ImageDraw.Draw(shape).rectangle([cx - ax * 0.3, cy - ay * 1.35, cx + ax * 0.3, cy - ay * 0.8], fill=255)
    mask = np.asarray(shape.filter(ImageFilter.GaussianBlur(max(1.0, width / 600)))) / 255.0
    color = np.array(object_color, dtype=np.float32) if object_color is not None else rng.uniform(20, 200, 3)
    shade = np.clip(1.15 - 0.6 * np.sqrt(np.minimum(d, 1.5)) + 0.25 * (cx - xx) / width, 0.2, 1.3)
    obj = color[None, None, :] * shade[..., None]
    highlight = np.exp(-(((xx - (cx - ax * 0.4)) / (ax * 0.12)) ** 2 + ((yy - cy) / (ay * 0.5)) ** 2))
    obj += 120 * highlight[..., None] + rng.normal(0, 3, (height, width, 3))
    pixels = bg * (1 - mask[..., None]) + obj * mask[..., None]
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def encode(image: Image.Image, fmt: str = "JPEG", **params: Any) -> bytes:
    out = io.BytesIO()
    if fmt == "JPEG":
        params.setdefault("quality", 90)
    image.save(out, fmt, **params)
    return out.getvalue()


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims ``width``×``height`` followed by a few bytes of data: a bomb header."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def png_rgb16(pixels: np.ndarray) -> bytes:
    """A true 16-bit-per-channel RGB PNG (Pillow cannot write one), from a uint16 array of shape (h, w, 3)."""
    height, width, _ = pixels.shape
    rows = pixels.astype(">u2").reshape(height, width * 3).tobytes()
    stride = width * 6
    raw = b"".join(b"\x00" + rows[y * stride : (y + 1) * stride] for y in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(raw))
        + _png_chunk(b"IEND", b"")
    )


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _xyz_tag(x: float, y: float, z: float) -> bytes:
    return b"XYZ \x00\x00\x00\x00" + _s15(x) + _s15(y) + _s15(z)


def swapped_rgb_icc_profile() -> bytes:
    """An ICC v2 matrix/TRC RGB profile whose red and green primaries are sRGB's green and red.

    Pixels tagged with it that store pure red are, in sRGB, green: a conversion that really goes through the
    embedded profile is unmistakable.
    """
    red_d50, green_d50, blue_d50 = (0.4361, 0.2225, 0.0139), (0.3851, 0.7169, 0.0971), (0.1431, 0.0606, 0.7141)
    description = b"ml_images test swapped RG\x00"
    desc = (
        b"desc\x00\x00\x00\x00"
        + struct.pack(">I", len(description))
        + description
        + b"\x00" * 8  # unicode language + count
        + b"\x00\x00\x00"  # scriptcode code + count
        + b"\x00" * 67
    )
    curve = b"curv\x00\x00\x00\x00" + struct.pack(">IH", 1, 0x0233) + b"\x00\x00"  # gamma 2.2
    tags = [
        (b"desc", desc),
        (b"wtpt", _xyz_tag(0.9642, 1.0, 0.8249)),
        (b"rXYZ", _xyz_tag(*green_d50)),
        (b"gXYZ", _xyz_tag(*red_d50)),
        (b"bXYZ", _xyz_tag(*blue_d50)),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
        (b"cprt", b"text\x00\x00\x00\x00no copyright\x00"),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for sig, data in tags:
        padded = data + b"\x00" * (-len(data) % 4)
        table += sig + struct.pack(">II", offset + len(body), len(data))
        body += padded
    size = offset + len(body)
    header = (
        struct.pack(">I", size)
        + b"lcms"
        + struct.pack(">I", 0x02100000)
        + b"mntrRGB XYZ "
        + struct.pack(">6H", 2026, 1, 1, 0, 0, 0)
        + b"acsp"
        + b"\x00" * 24  # platform, flags, manufacturer, model, attributes
        + struct.pack(">I", 0)  # rendering intent
        + _xyz_tag(0.9642, 1.0, 0.8249)[8:]
        + b"\x00" * 4  # creator
        + b"\x00" * 44  # profile id + reserved
    )
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + body


def jpeg_with_orientation(image: Image.Image, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(image, "JPEG", exif=exif.tobytes())


def downloaded(data: bytes, index: int = 0, fmt: str = "jpeg") -> DownloadedImage:
    url = f"https://images.example.com/p/{index}.{fmt}"
    return DownloadedImage(candidate=ImageCandidate(image_url=url, rank=index), final_url=url, data=data, format=fmt)


def near(pixel: Any, expected: tuple[int, ...], tolerance: int) -> bool:
    """Every channel of ``pixel`` within ``tolerance`` of ``expected``."""
    values = pixel if isinstance(pixel, tuple) else (pixel,)
    return len(values) == len(expected) and all(abs(a - b) <= tolerance for a, b in zip(values, expected, strict=True))
