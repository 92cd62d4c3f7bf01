"""What one batch run of ``ml-images fetch`` did, read from the catalog's ``image_fetch_attempt`` rows.

Each product's outcome is the attempt the run recorded for it (``ProductStatus``; a ``failed`` attempt whose
reason is ``candidates_unreachable`` is a product left pending, shown as ``deferred``). A product the run
recorded nothing for was skipped (another run held it) when the run did its work, and not processed otherwise.
Whether the run stopped on a fault every later run would meet (quota, configuration, storage, interruption) is
the ``ml_images/stopped_by`` tag the image step sets on its run, with the reason code as value.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ml_images.catalog.models import ImageFetchAttempt
from ml_images.orchestration.stops import stopped_by as run_stopped_by
from ml_images.orchestration.stops import was_interrupted
from ml_images.outcomes import ProductStatus, ReasonCode

#: A product's own outcome: a failed run whose products all ended with one of these did its work (its step
#: failed on purpose, so that the products without pictures show as failed partitions in the UI).
OWN_OUTCOMES = frozenset({ProductStatus.STORED, ProductStatus.NO_IMAGES, ProductStatus.SKIPPED, ProductStatus.DEFERRED})
WITHOUT_PICTURES = frozenset({ProductStatus.NO_IMAGES, ProductStatus.DEFERRED})


def product_status(attempt: ImageFetchAttempt) -> ProductStatus:
    if attempt.outcome == ProductStatus.FAILED and attempt.reason_code == ReasonCode.CANDIDATES_UNREACHABLE:
        return ProductStatus.DEFERRED
    return ProductStatus(attempt.outcome)


@dataclass(frozen=True)
class BatchOutcome:
    run_id: str
    succeeded: bool
    statuses: dict[str, ProductStatus]
    images: int
    stopped_by: str | None = None  # the reason code of a fault that stopped the run, from its tag
    interrupted: bool = False

    @classmethod
    def read(
        cls,
        run_id: str,
        keys: Sequence[str],
        *,
        succeeded: bool,
        attempts: Mapping[int, ImageFetchAttempt],
        run_tags: Mapping[str, str],
    ) -> BatchOutcome:
        """``attempts``: the last attempt of each product of the batch (``ImageRecorder.last_attempts``)."""
        recorded: dict[str, ProductStatus] = {}
        images = 0
        interrupted = was_interrupted(run_tags)
        for key in keys:
            attempt = attempts.get(int(key))
            if attempt is None or attempt.run_id != run_id or attempt.outcome == ProductStatus.RUNNING:
                continue
            recorded[key] = product_status(attempt)
            images += attempt.images_stored if attempt.outcome == ProductStatus.STORED else 0
            interrupted = interrupted or attempt.reason_code == ReasonCode.INTERRUPTED
        stopped_by = run_stopped_by(run_tags)
        if not succeeded and not recorded and stopped_by is None:
            # Failed before any product was claimed (a resource that did not start: model, schema, database):
            # every later run would fail the same way.
            stopped_by = "run_start_failed"
        finished = all(status in OWN_OUTCOMES for status in recorded.values())
        did_its_work = succeeded or (stopped_by is None and finished)
        unrecorded = ProductStatus.SKIPPED if did_its_work else ProductStatus.FAILED
        statuses = {key: recorded.get(key, unrecorded) for key in keys}
        return cls(run_id, succeeded, statuses, images, stopped_by, interrupted)

    @property
    def did_its_work(self) -> bool:
        """Succeeded, or failed only to mark its products without pictures (each has its recorded outcome)."""
        return self.succeeded or (
            self.stopped_by is None and all(status in OWN_OUTCOMES for status in self.statuses.values())
        )

    @property
    def without_pictures(self) -> list[str]:
        return [key for key, status in self.statuses.items() if status in WITHOUT_PICTURES]

    def counts_text(self) -> str:
        counts = Counter(status.value for status in self.statuses.values())
        return ", ".join(f"{status} {count}" for status, count in sorted(counts.items())) or "no products"


@dataclass
class FetchSummary:
    total: int = 0
    statuses: Counter[ProductStatus] = field(default_factory=Counter)
    images: int = 0
    failed_runs: list[str] = field(default_factory=list)
    runs_without_pictures: list[str] = field(default_factory=list)

    @property
    def done(self) -> int:
        return sum(self.statuses.values())

    def add(self, outcome: BatchOutcome) -> None:
        self.statuses.update(outcome.statuses.values())
        self.images += outcome.images

    def line(self) -> str:
        s = self.statuses
        deferred = s[ProductStatus.DEFERRED]
        return (
            f"stored: {s[ProductStatus.STORED]} ({self.images} images), "
            f"no images (listing ERROR): {s[ProductStatus.NO_IMAGES]}, "
            f"skipped: {s[ProductStatus.SKIPPED]}, "
            + (f"left pending (candidates unreachable): {deferred}, " if deferred else "")
            + f"failed: {s[ProductStatus.FAILED]}"
            + (f", not processed: {self.total - self.done}" if self.total > self.done else "")
        )
