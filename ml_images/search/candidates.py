"""The normalised search result every provider maps into."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ml_images.outcomes import Refusal


@dataclass(frozen=True)
class ImageCandidate:
    """One image a search provider proposed. Untrusted: every field came from the web."""

    image_url: str
    width: int | None = None
    height: int | None = None
    page_url: str | None = None
    source: str | None = None  # domain of the page or image, as reported by the provider
    title: str | None = None
    rank: int = 0  # 0-based position after filtering

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImageCandidate:
        return cls(
            image_url=str(data["image_url"]),
            width=data.get("width"),
            height=data.get("height"),
            page_url=data.get("page_url"),
            source=data.get("source"),
            title=data.get("title"),
            rank=int(data.get("rank", 0)),
        )


@dataclass(frozen=True)
class SearchOutcome:
    """What one product's search produced and what it cost."""

    query: str
    candidates: list[ImageCandidate]
    calls: int  # requests sent to the provider for this product, retries included (0 from the cache)
    cached: bool = False
    dropped: list[Refusal] = field(default_factory=list)  # candidates filtered out before download
    provider: str | None = None  # the provider that answered (or whose cached answer this is)
    calls_by_provider: dict[str, int] = field(default_factory=dict)  # ``calls`` split by provider (fallback)
