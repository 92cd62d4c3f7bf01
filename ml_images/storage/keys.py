"""Object keys: ``products/{product ref}/{order}-{content hash prefix}.jpg``, safe for S3 and for a local folder."""

from __future__ import annotations

import hashlib
import re

KEY_PREFIX = "products"
HASH_PREFIX_LENGTH = 12
_MAX_REF_LENGTH = 100
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_HEX = re.compile(r"[0-9a-f]+")
_SEGMENT = re.compile(r"[A-Za-z0-9._-]+")


def safe_product_ref(product_ref: str) -> str:
    """``product_ref`` restricted to ``[A-Za-z0-9._-]``.

    When anything had to change (``AB/1`` and ``AB 1`` would both become ``AB_1``), a short digest of the original
    is appended so two products can never share a folder; refs made only of dots are never a path segment.
    """
    ref = str(product_ref).strip()
    cleaned = _UNSAFE.sub("_", ref)[:_MAX_REF_LENGTH]
    if cleaned.strip(".") == "":
        cleaned = "_" + cleaned
    if cleaned != ref:
        digest = hashlib.sha256(ref.encode("utf-8")).hexdigest()[:8]
        cleaned = f"{cleaned}-{digest}"
    return cleaned


def image_key(product_ref: str, order: int, content_hash: str) -> str:
    if order < 0:
        raise ValueError(f"order must be >= 0, got {order}")
    digest = content_hash.lower()
    if len(digest) < HASH_PREFIX_LENGTH or not _HEX.fullmatch(digest):
        raise ValueError(f"content_hash must be hex with at least {HASH_PREFIX_LENGTH} digits")
    return f"{KEY_PREFIX}/{safe_product_ref(product_ref)}/{order}-{digest[:HASH_PREFIX_LENGTH]}.jpg"


def validate_key(key: str) -> str:
    """Refuse keys that could escape a folder or confuse S3: absolute, ``..``, empty segments, odd characters."""
    if not key or len(key) > 1024:
        raise ValueError("object key must be 1-1024 characters")
    if key.startswith("/") or "\\" in key:
        raise ValueError(f"object key must be relative with '/' separators: {key!r}")
    for segment in key.split("/"):
        if segment in ("", ".", "..") or not _SEGMENT.fullmatch(segment):
            raise ValueError(f"object key has an unsafe segment {segment!r}: {key!r}")
    return key
