"""What one product's attempt knows as it goes (``ProductState``), what its earlier attempts say
(``AttemptHistory``), and what the products of a batch share (``BatchWork``)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ml_images.catalog.recorder import MAX_STORED_CANDIDATES, PastAttempt
from ml_images.download.results import DownloadedImage
from ml_images.outcomes import AttemptStats, ProductStatus, ReasonCode
from ml_images.pipeline.candidate_sources import Provenance
from ml_images.pipeline.failures import AbortSignal, Reachability
from ml_images.pipeline.heartbeat import ClaimHeartbeat
from ml_images.pipeline.refusal_tally import RefusalTally
from ml_images.pipeline.reports import ProductReport, StoredImage
from ml_images.search.ranking import RankedCandidate


class ProductState:
    """What is known about a product so far; turned into its report whichever way it ends."""

    def __init__(self, product_id: int, started: float) -> None:
        self.product_id = product_id
        self.started = started
        self.query: str | None = None
        self.search_calls = 0
        self.candidates_found = 0
        self.search_cached = False
        self.downloads = 0  # download requests made (each candidate tried once)
        self.refusals = RefusalTally()
        self.provider: str | None = None  # the search provider that answered
        self.calls_by_provider: dict[str, int] = {}
        self.search_plan: str | None = None  # why a search was (not) made: a SearchPlan reason code
        self.ranked: list[RankedCandidate] = []  # every candidate considered, in the order tried
        self._by_url: dict[str, RankedCandidate] = {}
        self.cover_report: dict[str, Any] | None = None  # set once processing has judged a cover

    def add_ranked(self, ranked: Sequence[RankedCandidate]) -> list[RankedCandidate]:
        """Keep ``ranked`` (positions continue after the candidates already tried) and index it by image URL."""
        offset = len(self.ranked)
        placed = [RankedCandidate(r.sourced, r.score, r.position + offset) for r in ranked]
        self.ranked.extend(placed)
        for item in placed:
            self._by_url.setdefault(item.sourced.image_url, item)
        self.candidates_found = len(self.ranked)
        return placed

    def downloaded(self, image: DownloadedImage) -> None:
        """A download's final URL (after redirects, what processing reports) leads back to its candidate."""
        found = self._by_url.get(image.candidate.image_url)
        if found is not None:
            self._by_url.setdefault(image.final_url, found)

    def provenance(self, source_url: str | None) -> Provenance:
        return Provenance.of(self._by_url.get(source_url or ""))

    def candidates(self) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self.ranked[:MAX_STORED_CANDIDATES]]

    def stats(self) -> AttemptStats:
        """What this attempt cost and saw so far, as the recorder stores it."""
        return AttemptStats(
            search_calls=self.search_calls,
            candidates_found=self.candidates_found,
            refusals=self.refusals.sample,
            refusal_counts=self.refusals.counts(),
            provider=self.provider,
            search_calls_by_provider=dict(self.calls_by_provider),
            search_cache_hits=1 if self.search_cached else 0,
            downloads=self.downloads,
            candidates=self.candidates(),
            cover_report=self.cover_report,
        )

    def report(
        self,
        status: ProductStatus,
        *,
        reason_code: str | None = None,
        reason: str | None = None,
        images: Sequence[StoredImage] = (),
        replaced_objects: int = 0,
        cover_flagged: bool = False,
    ) -> ProductReport:
        return ProductReport(
            product_id=self.product_id,
            status=status,
            query=self.query,
            images=tuple(images),
            stats=self.stats(),
            reason_code=reason_code,
            reason=reason,
            replaced_objects=replaced_objects,
            cover_status=self.cover_report["status"] if self.cover_report else None,
            cover_flagged=cover_flagged,
            seconds=round(time.monotonic() - self.started, 3),
            search_plan=self.search_plan,
        )


class AttemptHistory:
    """What a product's earlier attempts say about this one (read once, right after the claim)."""

    def __init__(self, past: Sequence[PastAttempt], run_id: str | None, attempt_id: int) -> None:
        unreachable_runs: set[str] = set()
        searched_since_verdict = False
        self.last_verdict_fruitless = False
        for attempt in past:  # newest first
            if attempt.outcome == ProductStatus.FAILED.value:
                # A failed attempt gives no verdict on the candidates and does not break a streak of unreachable
                # ones (an interrupted or aborted attempt in between proves nothing either way).
                if attempt.reason_code == ReasonCode.CANDIDATES_UNREACHABLE:
                    unreachable_runs.add(attempt.run_id or f"attempt-{attempt.attempt_id}")
                searched_since_verdict = searched_since_verdict or attempt.search_calls > 0
                continue
            self.last_verdict_fruitless = (
                attempt.outcome == ProductStatus.NO_IMAGES.value and attempt.reason_code != ReasonCode.NO_SEARCH_QUERY
            )
            break
        # The same run again (a step retried by Dagster) is one attempt, however many tries it takes.
        unreachable_runs.add(run_id or f"attempt-{attempt_id}")
        self.unreachable_streak = len(unreachable_runs)
        # Results that led nowhere are not replayed: search afresh (and refresh the cache), unless an attempt since
        # the verdict already asked the provider.
        self.search_afresh = self.last_verdict_fruitless and not searched_since_verdict


@dataclass
class Fetched:
    """The downloads of a product so far, and whether every failure was a transport one."""

    downloads: list[DownloadedImage] = field(default_factory=list)
    transport_only: bool = True


@dataclass(frozen=True)
class BatchWork:
    """What the products of one batch share: the abort signal, reachability, the heartbeat, the CPU pool."""

    abort: AbortSignal
    reach: Reachability
    heartbeat: ClaimHeartbeat
    cpu_pool: ThreadPoolExecutor | None
