"""What image processing hands to storage."""

from __future__ import annotations

from dataclasses import dataclass, field

from ml_images.refusals import Refusal


@dataclass(frozen=True)
class ProcessedImage:
    """A marketplace-ready JPEG (white square canvas) and what the record needs about it."""

    jpeg: bytes
    width: int
    height: int
    content_hash: str  # sha256 hex of ``jpeg``
    source_hash: str  # sha256 hex of the downloaded bytes
    phash: str  # imagehash phash of the normalised output (hex)
    source_url: str
    background_removed: bool = False
    removal_rejected: bool = False  # removal ran but the mask failed the sanity gate; original kept


@dataclass(frozen=True)
class ProcessingOutcome:
    """The ordered images of one product (index 0 is the main picture) and the refusals on the way."""

    images: list[ProcessedImage]
    refusals: list[Refusal] = field(default_factory=list)


class ImageRefused(Exception):
    """A downloaded file is not usable. ``reason`` is machine-readable (``too_small``, ``corrupt``, ...)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
