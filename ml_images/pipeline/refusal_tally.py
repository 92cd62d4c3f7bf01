"""Refusals of one product: every one counted by reason, a bounded sample kept for people to read.

A search can answer with tens of thousands of results that are all refused the same way; keeping them all made
a 7 MB attempt row and a 9 MB Dagster event. The sample keeps at most ``limit`` refusals, in the order they came,
and while there is room for it every reason keeps at least one example (a late download refusal is not crowded
out by thousands of early search refusals).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from ml_images.catalog.recorder import MAX_STORED_REFUSALS
from ml_images.outcomes import Refusal


class RefusalTally:
    def __init__(self, limit: int = MAX_STORED_REFUSALS) -> None:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        self.limit = limit
        self._sample: list[Refusal] = []
        self._counts: Counter[str] = Counter()
        self._sampled: Counter[str] = Counter()

    def add(self, refusal: Refusal) -> None:
        self._counts[refusal.reason] += 1
        if len(self._sample) < self.limit:
            self._keep(refusal)
        elif self._sampled[refusal.reason] == 0:
            # A reason not shown yet takes the place of the latest example of the most shown one.
            crowded = max(self._sampled, key=lambda reason: self._sampled[reason])
            if self._sampled[crowded] > 1:
                index = max(i for i, kept in enumerate(self._sample) if kept.reason == crowded)
                del self._sample[index]
                self._sampled[crowded] -= 1
                self._keep(refusal)

    def _keep(self, refusal: Refusal) -> None:
        self._sample.append(refusal)
        self._sampled[refusal.reason] += 1

    def extend(self, refusals: Iterable[Refusal]) -> None:
        for refusal in refusals:
            self.add(refusal)

    @property
    def sample(self) -> tuple[Refusal, ...]:
        return tuple(self._sample)

    @property
    def total(self) -> int:
        return sum(self._counts.values())

    def counts(self) -> dict[str, int]:
        """Every refusal by reason, most frequent first."""
        return dict(self._counts.most_common())

    def __len__(self) -> int:
        return self.total
