"""What the safe downloader hands to image processing."""

from __future__ import annotations

from dataclasses import dataclass

from ml_images.search.candidates import ImageCandidate


@dataclass(frozen=True)
class DownloadedImage:
    """Bytes fetched from a candidate URL that passed every transport and sniffing check."""

    candidate: ImageCandidate
    final_url: str  # after redirects
    data: bytes
    format: str  # sniffed from magic bytes: "jpeg" | "png" | "webp" | "gif" | "avif"
