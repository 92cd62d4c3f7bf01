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


class DownloadRefused(Exception):
    """A candidate could not be downloaded safely. ``reason`` is a machine-readable code."""

    def __init__(self, reason: str, detail: str = "", url: str | None = None) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.url = url
