"""Where a product's candidates come from and in which order they are tried: the pipeline's side of issue 13.

``CandidateSources`` holds what the configuration says (distributor URL rewrite rules, the search mode, the
ranker); ``Provenance`` is what each stored picture records about its candidate (``ml_images_image``) and what the
reports show: source kind, page URL, provider and its rank, the ranking score and its parts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ml_images.search.distributor import SearchMode, SourceKind, UrlRewrites
from ml_images.search.ranking import CandidateRanker, RankedCandidate
from ml_images.settings import Settings


@dataclass(frozen=True)
class CandidateSources:
    """``ML_IMAGES_DISTRIBUTOR_URL_REWRITES``, ``ML_IMAGES_SEARCH_MODE`` and the ranking, as the pipeline uses them."""

    rewrites: UrlRewrites = field(default_factory=UrlRewrites)
    mode: SearchMode = SearchMode.FILL
    ranker: CandidateRanker = field(default_factory=CandidateRanker)

    @classmethod
    def from_settings(cls, settings: Settings) -> CandidateSources:
        return cls(rewrites=settings.distributor_url_rewrites, mode=settings.search_mode)


@dataclass(frozen=True)
class Provenance:
    """Where a stored picture came from and why it ranked where it did (the fields of ``ImageDetailRecord``)."""

    source_kind: str | None = None
    page_url: str | None = None
    provider: str | None = None
    provider_rank: int | None = None
    rank_score: float | None = None
    rank_parts: dict[str, Any] | None = None

    @classmethod
    def of(cls, ranked: RankedCandidate | None) -> Provenance:
        if ranked is None:
            return cls()
        sourced = ranked.sourced
        search = sourced.source_kind is SourceKind.SEARCH
        return cls(
            source_kind=sourced.source_kind.value,
            page_url=sourced.candidate.page_url,
            provider=sourced.provider,
            provider_rank=sourced.candidate.rank if search else None,
            rank_score=float(ranked.score.total),
            rank_parts=ranked.score.to_dict()["parts"],
        )

    def fields(self) -> dict[str, Any]:
        """Keyword arguments for ``ImageDetailRecord`` and ``StoredImage``."""
        return {
            "source_kind": self.source_kind,
            "page_url": self.page_url,
            "provider": self.provider,
            "provider_rank": self.provider_rank,
            "rank_score": self.rank_score,
            "rank_parts": self.rank_parts,
        }
