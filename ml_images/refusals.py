"""Machine-readable reasons why a candidate image (or a whole product) was not used."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Refusal:
    """One refused candidate: which stage refused it, a stable reason code and a human detail.

    ``reason`` is a short snake_case code (``blocked_address``, ``too_large``, ``deadline``, ``not_an_image``,
    ``http_404``, ``too_small``, ``decompression_bomb``, ``corrupt``, ``dark_background``, ``duplicate``, ...)
    that operators can filter on; ``detail`` is free text and never contains credentials.
    """

    stage: str  # "search" | "download" | "process" | "store"
    reason: str
    url: str | None = None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Refusal:
        return cls(
            stage=str(data["stage"]),
            reason=str(data["reason"]),
            url=data.get("url"),
            detail=str(data.get("detail", "")),
        )
