"""RefusalTally: every refusal counted, a bounded sample kept in which each reason appears while there is room."""

from __future__ import annotations

import pytest

from ml_images.outcomes import Refusal
from ml_images.pipeline.refusal_tally import RefusalTally


def _refusals(reason: str, count: int, stage: str = "search") -> list[Refusal]:
    return [Refusal(stage, reason, f"http://127.0.0.1:1/{reason}/{i}.jpg") for i in range(count)]


def test_counts_cover_everything_and_the_sample_is_bounded():
    tally = RefusalTally(limit=50)
    tally.extend(_refusals("duplicate", 50_000))
    tally.add(Refusal("download", "http_404", "http://127.0.0.1:1/x.jpg"))
    tally.extend(_refusals("too_small", 3, "process"))

    assert tally.counts() == {"duplicate": 50_000, "too_small": 3, "http_404": 1}
    assert tally.total == len(tally) == 50_004
    assert len(tally.sample) == 50
    # The late, rarer reasons are not crowded out by the flood of early duplicates.
    assert sorted({r.reason for r in tally.sample}) == ["duplicate", "http_404", "too_small"]
    assert [r.reason for r in tally.sample].count("duplicate") == 48
    # The sample keeps the order the refusals came in.
    assert [r.reason for r in tally.sample][-2:] == ["http_404", "too_small"]


def test_a_small_list_is_kept_whole_in_order():
    tally = RefusalTally()
    refusals = [*_refusals("http_404", 2, "download"), *_refusals("too_small", 1, "process")]
    tally.extend(refusals)
    assert tally.sample == tuple(refusals)
    assert tally.counts() == {"http_404": 2, "too_small": 1}


def test_more_reasons_than_room_keeps_the_first_ones():
    tally = RefusalTally(limit=3)
    for i in range(6):
        tally.add(Refusal("download", f"reason_{i}"))
    assert [r.reason for r in tally.sample] == ["reason_0", "reason_1", "reason_2"]
    assert tally.total == 6


def test_the_limit_must_be_positive():
    with pytest.raises(ValueError, match="limit"):
        RefusalTally(limit=0)
