"""What processing a product (or a batch of products) did, in a form the CLI, Dagster metadata and tests read."""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ml_images.refusals import Refusal


class ProductStatus(enum.StrEnum):
    STORED = "stored"  # images uploaded and product_image rows written
    NO_IMAGES = "no_images"  # nothing usable; listing set to ERROR
    SKIPPED = "skipped"  # did not need images (or another run holds it); nothing written but the attempt
    FAILED = "failed"  # infrastructure fault or batch aborted; the product stays pending


@dataclass(frozen=True)
class StoredImage:
    order: int
    url: str
    storage_key: str
    source_url: str
    width: int
    height: int
    background_removed: bool


@dataclass(frozen=True)
class ProductReport:
    """The outcome of one product. ``reason_code`` is machine-readable; ``reason`` is for people."""

    product_id: int
    status: ProductStatus
    query: str | None = None
    images: tuple[StoredImage, ...] = ()
    search_calls: int = 0
    candidates_found: int = 0
    search_cached: bool = False
    refusals: tuple[Refusal, ...] = ()
    reason_code: str | None = None
    reason: str | None = None
    replaced_objects: int = 0  # old objects deleted after a re-processing switched the rows
    seconds: float = 0.0

    def refusal_counts(self) -> dict[str, int]:
        return dict(Counter(r.reason for r in self.refusals).most_common())


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
        counts = {status.value: 0 for status in ProductStatus}
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
        text = (
            f"{len(self.reports)} products: {counts['stored']} stored ({self.images_stored} images), "
            f"{counts['no_images']} without usable images, {counts['skipped']} skipped, {counts['failed']} failed; "
            f"{self.search_calls} search calls"
        )
        if self.abort_error is not None:
            text += f"; stopped early: {type(self.abort_error).__name__}: {self.abort_error}"
        return text


def describe_refusals(refusals: Iterable[Refusal]) -> str:
    """``too_small×3, http_404×2`` — the reason codes and how often each occurred, most frequent first."""
    counts = Counter(r.reason for r in refusals)
    return ", ".join(f"{reason}×{count}" for reason, count in counts.most_common())
