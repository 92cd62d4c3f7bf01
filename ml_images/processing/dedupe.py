"""De-duplication within one product: exact bytes first, then perceptual hash of the normalised output.

The perceptual hash is taken on the finished canvas, never on the raw download: after cropping and centring on
white, resized or re-framed copies of one photo hash to the same value while different products stay 20+ bits
apart (docs/decisions.md §6). Hashing a 4× reduced canvas gives the same hash for a fraction of the cost.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

import imagehash
from PIL import Image


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def perceptual_hash(canvas: Image.Image) -> imagehash.ImageHash:
    """phash of a white-flattened canvas (imagehash converts to L and ignores alpha, so flatten first)."""
    factor = max(1, min(canvas.size) // 256)
    small = canvas.reduce(factor) if factor > 1 else canvas
    return imagehash.phash(small)


@dataclass
class DuplicateIndex:
    """What one product has kept so far; not shared between products or threads."""

    max_distance: int = 8
    _sources: set[str] = field(default_factory=set)
    _hashes: list[tuple[int, imagehash.ImageHash]] = field(default_factory=list)

    def has_source(self, source_hash: str) -> bool:
        return source_hash in self._sources

    def nearest(self, hashes: Iterable[imagehash.ImageHash]) -> tuple[int, int] | None:
        """(index of the kept image, distance) of the closest kept image within ``max_distance``, else None."""
        best: tuple[int, int] | None = None
        for candidate in hashes:
            for index, kept in self._hashes:
                distance = int(candidate - kept)
                if distance <= self.max_distance and (best is None or distance < best[1]):
                    best = (index, distance)
        return best

    def add_source(self, source_hash: str) -> None:
        self._sources.add(source_hash)

    def add(self, index: int, hashes: Iterable[imagehash.ImageHash]) -> None:
        self._hashes.extend((index, h) for h in hashes)
