"""Object keys: ``products/{id}-{code slug}/{order}-{content hash prefix}.jpg`` (``products/{id}/…`` without a code).

The product id comes first, so a product's folder is unique whatever the codes: a product whose code is ``2`` and
the product with id 2 (``products/7-2/`` and ``products/2/``), or two products sharing a code, never write the same
key. The code slug is only there for people browsing the bucket. Keys are safe for S3 and for a local folder.

Objects written under the earlier layout (``products/{code or id}/…``) keep working: their rows hold the full key.
"""

from __future__ import annotations

import re

KEY_PREFIX = "products"
HASH_PREFIX_LENGTH = 12
_MAX_SLUG_LENGTH = 60
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_HEX = re.compile(r"[0-9a-f]+")
_SEGMENT = re.compile(r"[A-Za-z0-9._-]+")


def code_slug(code: str | None) -> str:
    """``code`` reduced to ``[A-Za-z0-9._-]`` (runs of anything else become one ``_``), at most 60 characters;
    empty when nothing readable is left. Two codes may share a slug: the id in front keeps the folders apart."""
    if code is None:
        return ""
    slug = _UNSAFE.sub("_", code.strip())[:_MAX_SLUG_LENGTH]
    return slug.strip("._")


def product_folder(product_id: int, code: str | None) -> str:
    """``{id}-{code slug}``, or ``{id}`` for a product without a (readable) code."""
    if isinstance(product_id, bool) or not isinstance(product_id, int) or product_id < 1:
        raise ValueError(f"product_id must be a positive integer, got {product_id!r}")
    slug = code_slug(code)
    return f"{product_id}-{slug}" if slug else str(product_id)


def image_key(product_id: int, code: str | None, order: int, content_hash: str) -> str:
    if order < 0:
        raise ValueError(f"order must be >= 0, got {order}")
    digest = content_hash.lower()
    if len(digest) < HASH_PREFIX_LENGTH or not _HEX.fullmatch(digest):
        raise ValueError(f"content_hash must be hex with at least {HASH_PREFIX_LENGTH} digits")
    return f"{KEY_PREFIX}/{product_folder(product_id, code)}/{order}-{digest[:HASH_PREFIX_LENGTH]}.jpg"


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
