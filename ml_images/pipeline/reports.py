"""What processing a product (or a batch of products) did, in a form the CLI, Dagster metadata and tests read."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ml_images.outcomes import FINISHED_STATUSES, AttemptStats, ProductStatus, Refusal


def source_label(source_kind: str | None, provider: str | None, provider_rank: int | None) -> str:
    """``distributor`` or ``search brave #3`` (the provider's rank): a short label for summaries and contact
    sheets."""
    if source_kind == "search":
        rank = f" #{provider_rank}" if provider_rank is not None else ""
        return f"search {provider or '?'}{rank}"
    return source_kind or "unknown"


@dataclass(frozen=True)
class StoredImage:
    order: int
    url: str
    storage_key: str
    source_url: str
    width: int
    height: int
    background_removed: bool
    # Provenance (issue 13): where the picture came from and why it ranked where it did.
    source_kind: str | None = None  # "distributor" | "search"
    page_url: str | None = None
    provider: str | None = None
    provider_rank: int | None = None
    rank_score: float | None = None
    rank_parts: Mapping[str, Any] | None = None

    @property
    def source_label(self) -> str:
        """``distributor`` or ``search brave #3``: a short label for summaries and contact sheets."""
        return source_label(self.source_kind, self.provider, self.provider_rank)

    #: How the background was separated: "studio" (flood fill), the rembg model's name, or None (kept as shot).
    background_method: str | None = None
    quality_score: float | None = None  # 0-1
    cover_compliant: bool | None = None  # None: never judged as a cover
    #: ``ProcessedImage.checks_dict()``: the cover checks and their measured values (text share, white border, fill,
    #: mask figures), JSON-ready; the same as the image's ``ml_images_image.checks``.
    checks: Mapping[str, Any] | None = None

    def check_summary(self) -> dict[str, Any]:
        """The figures a person reads to trust this picture, compact (metadata, contact sheet): how the background
        was separated, the quality score, the cover verdict and the rules it failed, text share, white-border share,
        fill and the cut-out's mask figures. Figures the picture was not measured on are None."""
        return {
            "order": self.order,
            "background_method": self.background_method,
            "quality_score": self.quality_score,
            "cover_compliant": self.cover_compliant,
            **summarise_checks(self.checks),
        }


def summarise_checks(checks: Mapping[str, Any] | None) -> dict[str, Any]:
    """The compact figures of a picture's ``checks`` (``ProcessedImage.checks_dict()``): failed rules, text share,
    white-border share, fill, truncated edges and the mask figures; None where it was not measured."""
    checks = checks or {}
    cover = checks.get("cover") or {}
    text = cover.get("text") or {}
    mask = cover.get("mask") or {}
    return {
        "failed": list(cover.get("failed") or []),
        "text_share": _rounded(text.get("text_share")),
        "white_border_share": _rounded(cover.get("white_border_share", checks.get("white_border_share"))),
        "fill": _rounded(cover.get("fill")),
        "truncated_edges": list(cover.get("truncated_edges") or []),
        "mask": {key: _rounded(mask.get(key)) for key in _MASK_FIGURES} if mask else None,
    }


@dataclass(frozen=True)
class ProductReport:
    """The outcome of one product. ``reason_code`` is machine-readable (a ``ReasonCode``); ``reason`` is for people.

    ``stats`` is what the attempt cost and saw — the same value the recorder stores on the attempt row: the search
    calls (``search_calls_by_provider`` splits them, ``provider`` answered), the ranked ``candidates`` (best first,
    with their score parts), the refusals (a bounded sample, see ``RefusalTally``; ``refusal_counts`` counts every
    one). ``search_plan`` says why a search was (not) made (see ``ml_images.search.distributor``).
    """

    product_id: int
    status: ProductStatus
    query: str | None = None
    images: tuple[StoredImage, ...] = ()
    stats: AttemptStats = field(default_factory=AttemptStats)
    reason_code: str | None = None
    reason: str | None = None
    replaced_objects: int = 0  # old objects deleted after a re-processing switched the rows
    cover_status: str | None = None  # "compliant" | "no_compliant_cover" | "no_images"; None: nothing processed
    cover_flagged: bool = False  # stored under the lenient policy without a compliant cover
    seconds: float = 0.0
    search_plan: str | None = None

    def __post_init__(self) -> None:
        # Plain str, never the ReasonCode member: the report's fields become Dagster metadata, whose serialiser
        # accepts exact built-in types only.
        for name in ("reason_code", "search_plan"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, str(value))

    @property
    def search_calls(self) -> int:
        return self.stats.search_calls

    @property
    def candidates_found(self) -> int:
        return self.stats.candidates_found

    @property
    def search_cached(self) -> bool:
        return self.stats.search_cache_hits > 0

    @property
    def refusals(self) -> tuple[Refusal, ...]:
        return tuple(self.stats.refusals)

    @property
    def provider(self) -> str | None:
        return self.stats.provider

    @property
    def search_calls_by_provider(self) -> Mapping[str, int]:
        return self.stats.search_calls_by_provider

    @property
    def downloads(self) -> int:
        return self.stats.downloads

    @property
    def candidates(self) -> tuple[Mapping[str, Any], ...]:
        return tuple(self.stats.candidates)

    def refusal_counts(self) -> dict[str, int]:
        """Every refusal by reason, most frequent first (not only the sample in ``refusals``)."""
        if self.stats.refusal_counts is not None:
            return dict(Counter(self.stats.refusal_counts).most_common())
        return dict(Counter(r.reason for r in self.stats.refusals).most_common())

    @property
    def refusals_total(self) -> int:
        return sum(self.refusal_counts().values())


@dataclass
class BatchReport:
    """Every product of a batch, in the order they were given, plus why the batch stopped early (if it did)."""

    reports: list[ProductReport] = field(default_factory=list)
    abort_error: BaseException | None = None

    def add(self, report: ProductReport) -> None:
        self.reports.append(report)

    def ordered(self, product_ids: Sequence[int]) -> list[ProductReport]:
        position = {pid: i for i, pid in enumerate(product_ids)}
        return sorted(self.reports, key=lambda r: position.get(r.product_id, len(position)))

    def with_status(self, status: ProductStatus) -> list[ProductReport]:
        return [r for r in self.reports if r.status is status]

    def counts(self) -> dict[str, int]:
        counts = {status.value: 0 for status in FINISHED_STATUSES}
        for report in self.reports:
            counts[report.status.value] += 1
        return counts

    @property
    def search_calls(self) -> int:
        return sum(r.search_calls for r in self.reports)

    @property
    def images_stored(self) -> int:
        return sum(len(r.images) for r in self.reports)

    def summary(self) -> str:
        counts = self.counts()
        deferred = counts[ProductStatus.DEFERRED]
        text = (
            f"{len(self.reports)} products: {counts[ProductStatus.STORED]} stored ({self.images_stored} images), "
            f"{counts[ProductStatus.NO_IMAGES]} without usable images, {counts[ProductStatus.SKIPPED]} skipped, "
            + (f"{deferred} left pending (candidates unreachable), " if deferred else "")
            + f"{counts[ProductStatus.FAILED]} failed; {self.search_calls} search calls"
        )
        if self.abort_error is not None:
            text += f"; stopped early: {type(self.abort_error).__name__}: {self.abort_error}"
        return text


#: The mask figures a summary shows (``MaskFigures``): what survived, what the model was unsure of, the parts.
_MASK_FIGURES = ("kept_share", "doubtful_share", "left_out_share", "objects", "core_share", "box_fill")


def _rounded(value: Any) -> Any:
    return round(value, 3) if isinstance(value, float) else value


def describe_refusals(refusals: Iterable[Refusal]) -> str:
    """``too_small×3, http_404×2`` — the reason codes and how often each occurred, most frequent first."""
    return describe_counts(Counter(r.reason for r in refusals))


def describe_counts(counts: Mapping[str, int]) -> str:
    """``too_small×3, http_404×2`` from counts by reason, most frequent first."""
    return ", ".join(f"{reason}×{count}" for reason, count in Counter(counts).most_common())
