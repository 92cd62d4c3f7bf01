"""Image format from magic bytes. The Content-Type header is ignored: hotlink-protection and error pages
arrive as ``200 image/jpeg``, and real images as ``application/octet-stream``."""

from __future__ import annotations

import struct

SNIFF_BYTES = 64  # enough for every signature below, including an ISO-BMFF ftyp box with a few brands

_AVIF_BRANDS = frozenset({b"avif", b"avis"})


def _ftyp_brands(head: bytes) -> list[bytes]:
    """Major and compatible brands of an ISO-BMFF ``ftyp`` box at the start of ``head`` (empty if none)."""
    if len(head) < 12 or head[4:8] != b"ftyp":
        return []
    (size,) = struct.unpack(">I", head[:4])
    end = min(size, len(head)) if size >= 16 else 12
    brands = [head[8:12]]
    brands.extend(head[offset : offset + 4] for offset in range(16, end - 3, 4))
    return brands


def sniff_image_format(head: bytes) -> str | None:
    """``"jpeg" | "png" | "gif" | "webp" | "avif"`` from the first bytes of a file, else None.

    HEIC shares AVIF's container but Pillow cannot decode it without a plug-in, so it is not an image here.
    """
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if len(head) >= 12 and head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "webp"
    if any(brand in _AVIF_BRANDS for brand in _ftyp_brands(head)):
        return "avif"
    return None
