"""ClaimHeartbeat: the claims a batch holds are refreshed while held, and only those."""

from __future__ import annotations

import time
from datetime import datetime

from ml_images.catalog.recorder import ImageRecorder
from ml_images.pipeline.heartbeat import ClaimHeartbeat
from ml_images_tests.pipeline.support import Catalog


def _beat_of(catalog: Catalog, product_id: int) -> datetime:
    [attempt] = [a for a in catalog.attempts(product_id) if a.finished_at is None]
    assert attempt.heartbeat_at is not None
    return attempt.heartbeat_at


def _wait_until(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_held_claims_are_refreshed_until_released(sqlite_catalog: Catalog):
    kept, released = sqlite_catalog.add_product("ZX9901"), sqlite_catalog.add_product("ZX9902")
    recorder = ImageRecorder(sqlite_catalog.session_factory)
    kept_claim, released_claim = recorder.claim(kept, "run-1"), recorder.claim(released, "run-1")
    assert kept_claim is not None
    assert released_claim is not None
    start = _beat_of(sqlite_catalog, kept)

    with ClaimHeartbeat(recorder, interval_seconds=0.05) as heartbeat:
        heartbeat.add(kept_claim.attempt_id)
        heartbeat.add(released_claim.attempt_id)
        _wait_until(lambda: _beat_of(sqlite_catalog, kept) > start)
        heartbeat.discard(released_claim.attempt_id)
        # One beat may have been under way with the old list: once a beat has ended after the release, none has.
        first = _beat_of(sqlite_catalog, kept)
        _wait_until(lambda: _beat_of(sqlite_catalog, kept) > first)
        last = _beat_of(sqlite_catalog, released)
        second = _beat_of(sqlite_catalog, kept)
        _wait_until(lambda: _beat_of(sqlite_catalog, kept) > second)
        assert _beat_of(sqlite_catalog, released) == last  # released: no longer refreshed
        assert heartbeat.held() == [kept_claim.attempt_id]

    after_stop = _beat_of(sqlite_catalog, kept)
    time.sleep(0.2)
    assert _beat_of(sqlite_catalog, kept) == after_stop  # the thread is gone with the batch
