"""ImageRecorder: claims (database-level guard), one-transaction commits, listing status, attempt records."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from ml_images.catalog.holder import ProcessHolder, current_holder, current_node
from ml_images.catalog.models import (
    ImageDetail,
    ImageFetchAttempt,
    ListingStatus,
    MercadoLibreListing,
    ProductImage,
)
from ml_images.catalog.recorder import (
    IMAGE_ERROR_PREFIX,
    MAX_STORED_CANDIDATES,
    MAX_STORED_REFUSALS,
    Claim,
    ImageDetailRecord,
    ImageRecord,
    ImageRecorder,
)
from ml_images.catalog.rules import DEFAULT_PUBLICATION_RULES
from ml_images.catalog.selection import ImageCandidateSelector, MercadoLibreFilter
from ml_images.errors import ClaimLostError, TransientError
from ml_images.outcomes import AttemptStats, ProductStatus, Refusal
from ml_images_tests.holders import exited_process

REFUSALS = [Refusal(stage="download", reason="too_large", url="https://shop.example.test/a.jpg", detail="31 MB")]


def _record(order: int, key: str) -> ImageRecord:
    return ImageRecord(
        order=order,
        url=f"https://cdn.example.test/{key}",
        storage_key=key,
        source_url=f"https://shop.example.test/{key}",
        width=1200,
        height=1200,
        content_hash=f"{order:064x}",
        background_removed=order == 0,
    )


@pytest.fixture
def recorder(session_factory: sessionmaker[Session], clock: Any) -> ImageRecorder:
    return ImageRecorder(session_factory, lease_seconds=60, now=clock)


def _attempt(session_factory: sessionmaker[Session], attempt_id: int) -> ImageFetchAttempt:
    with session_factory() as session:
        attempt = session.get(ImageFetchAttempt, attempt_id)
        assert attempt is not None
        return attempt


def _images(session_factory: sessionmaker[Session], product_id: int) -> list[tuple[int, str | None, bool]]:
    with session_factory() as session:
        rows = session.execute(
            sa.select(ProductImage.order, ProductImage.storage_key, ProductImage.is_processed)
            .where(ProductImage.product_id == product_id)
            .order_by(ProductImage.order)
        ).all()
        return [(row[0], row[1], row[2]) for row in rows]


def _listing(session_factory: sessionmaker[Session], product_id: int) -> MercadoLibreListing | None:
    with session_factory() as session:
        return session.scalars(
            sa.select(MercadoLibreListing).where(MercadoLibreListing.product_master_id == product_id)
        ).one_or_none()


def test_claim_is_exclusive_until_finished(recorder: ImageRecorder, make_product: Callable[..., int]) -> None:
    pid = make_product()
    claim = recorder.claim(pid, "run-1")
    assert claim is not None
    assert (claim.product_id, claim.run_id) == (pid, "run-1")
    assert recorder.claim(pid, "run-2") is None
    recorder.record_skipped(claim, "has_images", "images appeared meanwhile")
    second = recorder.claim(pid, "run-2")
    assert second is not None
    assert second.attempt_id != claim.attempt_id


def test_concurrent_claims_let_exactly_one_through(
    session_factory: sessionmaker[Session], make_product: Callable[..., int], clock: Any
) -> None:
    pid = make_product()
    workers = 4
    barrier = threading.Barrier(workers)
    results: list[Claim | None] = []
    errors: list[BaseException] = []

    def work(n: int) -> None:
        recorder = ImageRecorder(session_factory, now=clock)
        try:
            barrier.wait(timeout=10)
            results.append(recorder.claim(pid, f"run-{n}"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert len(results) == workers
    assert sum(r is not None for r in results) == 1
    with session_factory() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(ImageFetchAttempt)) == 1


def test_stale_claim_is_taken_over_and_the_old_holder_cannot_write(
    session_factory: sessionmaker[Session], recorder: ImageRecorder, make_product: Callable[..., int], clock: Any
) -> None:
    # The holder is on another machine: its death cannot be proved, only its silence (no heartbeat for a lease).
    elsewhere = ImageRecorder(session_factory, lease_seconds=60, now=clock, holder=lambda: _other_machine())
    pid = make_product()
    old = elsewhere.claim(pid, "dead-run")
    assert old is not None
    clock.advance(seconds=59)
    assert recorder.claim(pid, "run-2") is None
    clock.advance(seconds=2)
    new = recorder.claim(pid, "run-2")
    assert new is not None
    stale = _attempt(session_factory, old.attempt_id)
    assert stale.outcome == ProductStatus.FAILED.value
    assert stale.reason_code == "stale_claim"
    assert stale.finished_at == clock()

    with pytest.raises(ClaimLostError) as info:
        elsewhere.commit_images(
            old, [_record(0, "k0")], stats=AttemptStats(search_calls=1, candidates_found=1, refusals=[])
        )
    assert isinstance(info.value, TransientError)
    assert _images(session_factory, pid) == []
    assert _attempt(session_factory, new.attempt_id).finished_at is None


def _other_machine() -> ProcessHolder:
    return ProcessHolder(host="another-host", node="0" * 32, pid=os.getpid(), started=1)


def test_heartbeats_keep_a_claim_alive_for_as_long_as_they_come(
    session_factory: sessionmaker[Session], recorder: ImageRecorder, make_product: Callable[..., int], clock: Any
) -> None:
    elsewhere = ImageRecorder(session_factory, lease_seconds=60, now=clock, holder=lambda: _other_machine())
    pid = make_product()
    held = elsewhere.claim(pid, "long-run")
    assert held is not None
    for _ in range(10):  # ten minutes of work, a beat every 50 s
        clock.advance(seconds=50)
        assert elsewhere.heartbeat([held.attempt_id]) == 1
        assert recorder.claim(pid, "run-2") is None
    clock.advance(seconds=61)  # the beats stop (the process died)
    assert recorder.claim(pid, "run-2") is not None
    assert elsewhere.heartbeat([held.attempt_id]) == 0  # a finished claim is not revived


@pytest.mark.skipif(current_node() is None, reason="needs /proc (Linux) to prove that a process is dead")
def test_a_claim_of_a_dead_process_is_taken_over_at_once(
    session_factory: sessionmaker[Session], recorder: ImageRecorder, make_product: Callable[..., int], clock: Any
) -> None:
    dead = exited_process()
    by_the_dead = ImageRecorder(session_factory, lease_seconds=60, now=clock, holder=lambda: dead)
    pid = make_product()
    killed = by_the_dead.claim(pid, "killed-run")
    assert killed is not None

    taken = recorder.claim(pid, "next-run")  # the heartbeat is fresh, but its process is gone

    assert taken is not None
    old = _attempt(session_factory, killed.attempt_id)
    assert (old.outcome, old.reason_code) == ("failed", "holder_died")
    assert f"pid {dead.pid}" in str(old.reason)
    new = _attempt(session_factory, taken.attempt_id)
    me = current_holder()
    assert (new.holder_host, new.holder_node, new.holder_pid, new.holder_started) == (
        me.host,
        me.node,
        me.pid,
        me.started,
    )


@pytest.mark.skipif(current_node() is None, reason="needs /proc (Linux) to prove that a process is dead")
def test_a_live_holder_keeps_its_claim_and_a_reused_pid_is_not_mistaken_for_it(
    session_factory: sessionmaker[Session], recorder: ImageRecorder, make_product: Callable[..., int], clock: Any
) -> None:
    alive, reused = make_product(), make_product()
    assert recorder.claim(alive, "run-1") is not None  # this very process: alive
    assert recorder.claim(alive, "run-2") is None
    # Same pid as a live process (this one), another start time: the recorded process is gone, the pid reused.
    ghost = replace(current_holder(), started=(current_holder().started or 0) + 12345)
    assert ImageRecorder(session_factory, now=clock, holder=lambda: ghost).claim(reused, "run-1") is not None
    assert recorder.claim(reused, "run-2") is not None
    # A holder on another machine (or container) cannot be proved dead: only its lease frees it.
    other = make_product()
    assert ImageRecorder(session_factory, now=clock, holder=_other_machine).claim(other, "run-1") is not None
    assert recorder.claim(other, "run-2") is None


def test_a_retry_in_the_same_run_takes_over_its_own_unreleased_claim(
    session_factory: sessionmaker[Session], recorder: ImageRecorder, make_product: Callable[..., int]
) -> None:
    # The first try of a step could not release its claim (database down); Dagster retries the step in the same run.
    pid = make_product()
    first = recorder.claim(pid, "run-1")
    assert first is not None
    assert recorder.claim(pid, "run-2") is None  # another run still sees it in flight
    retry = recorder.claim(pid, "run-1")
    assert retry is not None
    assert retry.attempt_id != first.attempt_id
    old = _attempt(session_factory, first.attempt_id)
    assert old.outcome == ProductStatus.FAILED.value
    assert old.reason_code == "retried_in_same_run"
    with pytest.raises(ClaimLostError):
        recorder.commit_images(
            first, [_record(0, "k0")], stats=AttemptStats(search_calls=1, candidates_found=1, refusals=[])
        )
    recorder.commit_images(
        retry, [_record(0, "k1")], stats=AttemptStats(search_calls=1, candidates_found=1, refusals=[])
    )
    assert [key for _, key, _ in _images(session_factory, pid)] == ["k1"]


def test_commit_images_records_each_pictures_detail_and_the_attempts_cost(
    session_factory: sessionmaker[Session], recorder: ImageRecorder, make_product: Callable[..., int]
) -> None:
    pid = make_product()
    first = recorder.claim(pid, "run-1")
    assert first is not None
    cover = replace(
        _record(0, "d/a.jpg"),
        detail=ImageDetailRecord(
            source_kind="distributor",
            rank_score=9.5,
            rank_parts={"source": 5.0, "size": 4.5},
            background_method="studio",
            quality_score=0.91,
            cover_compliant=True,
            checks={"white_border_share": 1.0},
        ),
    )
    gallery = replace(
        _record(1, "d/b.jpg"),
        detail=ImageDetailRecord(
            source_kind="search", page_url="https://brand.example.test/p", provider="brave", provider_rank=3
        ),
    )
    stats = AttemptStats(
        search_calls=2,
        candidates_found=6,
        provider="brave",
        search_calls_by_provider={"serpapi": 1, "brave": 1},
        downloads=5,
        candidates=[{"url": f"https://x.example.test/{i}.jpg", "score": 10 - i} for i in range(30)],
        cover_report={"attempts": [{"url": "https://x.example.test/0.jpg", "passed": True}]},
    )
    recorder.commit_images(first, [gallery, cover], stats=stats)
    with session_factory() as session:
        details = session.execute(
            sa.select(ProductImage.order, ImageDetail)
            .join(ImageDetail, ImageDetail.product_image_id == ProductImage.id)
            .order_by(ProductImage.order)
        ).all()
    assert [(order, d.product_id, d.source_kind, d.background_method) for order, d in details] == [
        (0, pid, "distributor", "studio"),
        (1, pid, "search", None),
    ]
    assert details[0][1].rank_parts == {"source": 5.0, "size": 4.5}
    assert details[0][1].checks == {"white_border_share": 1.0}
    assert (details[1][1].provider, details[1][1].provider_rank) == ("brave", 3)
    attempt = _attempt(session_factory, first.attempt_id)
    assert (attempt.provider, attempt.downloads, attempt.search_cache_hits) == ("brave", 5, 0)
    assert attempt.search_calls_by_provider == {"serpapi": 1, "brave": 1}
    assert attempt.candidates is not None
    assert len(attempt.candidates) == MAX_STORED_CANDIDATES
    assert attempt.cover_report == {"attempts": [{"url": "https://x.example.test/0.jpg", "passed": True}]}

    # Re-processing replaces the details with the pictures: none is left behind.
    again = recorder.claim(pid, "run-2")
    assert again is not None
    recorder.commit_images(again, [_record(0, "d/c.jpg")], stats=AttemptStats(search_calls=1, candidates_found=1))
    with session_factory() as session:
        left = session.execute(sa.select(ImageDetail.product_image_id, ImageDetail.source_kind)).all()
        current = session.scalars(sa.select(ProductImage.id).where(ProductImage.product_id == pid)).all()
    assert [row[0] for row in left] == list(current)
    assert [row[1] for row in left] == [None]


def test_claim_of_a_missing_product_is_an_error_not_busy(recorder: ImageRecorder) -> None:
    with pytest.raises(sa.exc.IntegrityError):
        recorder.claim(424242, None)


def test_commit_images_replaces_rows_and_returns_orphaned_keys(
    session_factory: sessionmaker[Session], recorder: ImageRecorder, make_product: Callable[..., int]
) -> None:
    pid = make_product()
    first = recorder.claim(pid, "run-1")
    assert first is not None
    records = [_record(1, "p/b.jpg"), _record(0, "p/a.jpg")]
    assert (
        recorder.commit_images(
            first, records, stats=AttemptStats(search_calls=2, candidates_found=7, refusals=REFUSALS)
        )
        == []
    )
    assert _images(session_factory, pid) == [(0, "p/a.jpg", True), (1, "p/b.jpg", True)]
    assert recorder.existing_storage_keys(pid) == ["p/a.jpg", "p/b.jpg"]
    attempt = _attempt(session_factory, first.attempt_id)
    assert attempt.outcome == ProductStatus.STORED.value
    assert (attempt.images_stored, attempt.search_calls, attempt.candidates_found) == (2, 2, 7)
    assert attempt.refusals == [r.to_dict() for r in REFUSALS]
    assert attempt.finished_at is not None

    second = recorder.claim(pid, "run-2")
    assert second is not None
    orphans = recorder.commit_images(
        second,
        [_record(0, "p/b.jpg"), _record(1, "p/c.jpg")],
        stats=AttemptStats(search_calls=1, candidates_found=2, refusals=[]),
    )
    assert orphans == ["p/a.jpg"]
    assert _images(session_factory, pid) == [(0, "p/b.jpg", True), (1, "p/c.jpg", True)]


def test_an_object_another_product_still_references_is_not_returned_for_deletion(
    session_factory: sessionmaker[Session], recorder: ImageRecorder, make_product: Callable[..., int]
) -> None:
    # Rows of two products pointing at one key: possible under the earlier layout (products/{code or id}/...).
    mine, theirs = make_product(), make_product()
    shared = "products/2/0-aaaaaaaaaaaa.jpg"
    for pid in (mine, theirs):
        claim = recorder.claim(pid, "old-layout")
        assert claim is not None
        recorder.commit_images(
            claim, [_record(0, shared)], stats=AttemptStats(search_calls=1, candidates_found=1, refusals=[])
        )
    assert recorder.referenced_keys([shared, "products/9/0-bbbbbbbbbbbb.jpg"]) == {shared}

    again = recorder.claim(mine, "re-processing")
    assert again is not None
    orphans = recorder.commit_images(
        again,
        [_record(0, f"products/{mine}-P/0-cccccccccccc.jpg")],
        stats=AttemptStats(search_calls=1, candidates_found=1, refusals=[]),
    )

    assert orphans == []  # the other product's row still points at it
    assert [key for _, key, _ in _images(session_factory, theirs)] == [shared]
    last = recorder.claim(theirs, "re-processing")
    assert last is not None
    orphans = recorder.commit_images(
        last,
        [_record(0, f"products/{theirs}-Q/0-dddddddddddd.jpg")],
        stats=AttemptStats(search_calls=1, candidates_found=1, refusals=[]),
    )
    assert orphans == [shared]  # no row of any product references it any more


def test_refusals_are_stored_as_a_bounded_sample_with_counts_of_all(
    session_factory: sessionmaker[Session], recorder: ImageRecorder, make_product: Callable[..., int]
) -> None:
    pid = make_product()
    claim = recorder.claim(pid, None)
    assert claim is not None
    many = [Refusal("search", "duplicate", f"https://shop.example.test/{i}.jpg", "x" * 5000) for i in range(400)]
    recorder.record_no_images(
        claim,
        "no_usable_image",
        "all refused",
        stats=AttemptStats(
            search_calls=1, candidates_found=0, refusals=many, refusal_counts={"duplicate": 50_000, "too_small": 3}
        ),
    )
    attempt = _attempt(session_factory, claim.attempt_id)
    assert attempt.refusals is not None
    assert len(attempt.refusals) == MAX_STORED_REFUSALS == 50
    assert all(len(r["detail"]) <= 500 for r in attempt.refusals)
    assert attempt.refusal_counts == {"duplicate": 50_000, "too_small": 3}


def test_previous_attempts_are_the_finished_ones_newest_first(
    recorder: ImageRecorder, make_product: Callable[..., int]
) -> None:
    pid = make_product()
    first = recorder.claim(pid, "a")
    assert first is not None
    recorder.record_failed(first, "candidates_unreachable", "nothing answered", stats=AttemptStats(search_calls=1))
    second = recorder.claim(pid, "b")
    assert second is not None
    recorder.record_no_images(
        second, "no_usable_image", "refused", stats=AttemptStats(search_calls=0, candidates_found=2, refusals=[])
    )
    current = recorder.claim(pid, "c")
    assert current is not None
    past = recorder.previous_attempts(pid, current.attempt_id)
    assert [(p.run_id, p.outcome, p.reason_code, p.search_calls) for p in past] == [
        ("b", "no_images", "no_usable_image", 0),
        ("a", "failed", "candidates_unreachable", 1),
    ]
    assert recorder.previous_attempts(pid, first.attempt_id) == []


def test_a_finished_claim_cannot_commit_again(
    session_factory: sessionmaker[Session], recorder: ImageRecorder, make_product: Callable[..., int]
) -> None:
    pid = make_product()
    claim = recorder.claim(pid, None)
    assert claim is not None
    recorder.commit_images(
        claim, [_record(0, "k/0.jpg")], stats=AttemptStats(search_calls=1, candidates_found=1, refusals=[])
    )
    with pytest.raises(ClaimLostError):
        recorder.commit_images(
            claim, [_record(0, "k/other.jpg")], stats=AttemptStats(search_calls=1, candidates_found=1, refusals=[])
        )
    with pytest.raises(ClaimLostError):
        recorder.record_no_images(
            claim, "no_candidates", "nothing", stats=AttemptStats(search_calls=1, candidates_found=0, refusals=[])
        )
    assert _images(session_factory, pid) == [(0, "k/0.jpg", True)]
    assert _listing(session_factory, pid) is None


def test_invalid_records_write_nothing(
    session_factory: sessionmaker[Session], recorder: ImageRecorder, make_product: Callable[..., int]
) -> None:
    pid = make_product()
    claim = recorder.claim(pid, None)
    assert claim is not None
    with pytest.raises(ValueError, match="distinct"):
        recorder.commit_images(
            claim,
            [_record(0, "a"), _record(0, "b")],
            stats=AttemptStats(search_calls=1, candidates_found=2, refusals=[]),
        )
    with pytest.raises(ValueError, match="at least one"):
        recorder.commit_images(claim, [], stats=AttemptStats(search_calls=1, candidates_found=0, refusals=[]))
    assert _images(session_factory, pid) == []
    assert _attempt(session_factory, claim.attempt_id).finished_at is None


def test_no_images_creates_the_listing_in_error_and_cools_down(
    session_factory: sessionmaker[Session], recorder: ImageRecorder, make_product: Callable[..., int], clock: Any
) -> None:
    pid = make_product()
    other = make_product()
    claim = recorder.claim(pid, "run-1")
    assert claim is not None
    recorder.record_no_images(
        claim,
        "all_refused",
        "all 6 candidates refused",
        stats=AttemptStats(search_calls=1, candidates_found=6, refusals=REFUSALS),
    )
    listing = _listing(session_factory, pid)
    assert listing is not None
    assert listing.status == ListingStatus.ERROR
    assert listing.sync_error == IMAGE_ERROR_PREFIX + "all 6 candidates refused"
    attempt = _attempt(session_factory, claim.attempt_id)
    assert (attempt.outcome, attempt.reason_code, attempt.candidates_found) == ("no_images", "all_refused", 6)

    selector = ImageCandidateSelector(MercadoLibreFilter(session_factory, DEFAULT_PUBLICATION_RULES, now=clock))
    assert [p.id for p in selector.get_pending_image_products()] == [other]
    latest = recorder.last_attempts([pid, other])
    assert set(latest) == {pid}
    assert latest[pid].id == claim.attempt_id


def test_no_images_updates_an_existing_listing(
    session_factory: sessionmaker[Session], recorder: ImageRecorder, make_product: Callable[..., int]
) -> None:
    pid = make_product()
    with session_factory() as session, session.begin():
        session.add(MercadoLibreListing(product_master_id=pid, ml_id="MLA123", status=ListingStatus.ACTIVE))
    claim = recorder.claim(pid, None)
    assert claim is not None
    recorder.record_no_images(
        claim,
        "no_candidates",
        "search found nothing",
        stats=AttemptStats(search_calls=1, candidates_found=0, refusals=[]),
    )
    listing = _listing(session_factory, pid)
    assert listing is not None
    assert (listing.status, listing.ml_id) == (ListingStatus.ERROR, "MLA123")
    assert listing.sync_error == "images: search found nothing"
    with session_factory() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(MercadoLibreListing)) == 1


def test_success_after_an_image_error_returns_the_listing_to_pending(
    session_factory: sessionmaker[Session], recorder: ImageRecorder, make_product: Callable[..., int], clock: Any
) -> None:
    pid = make_product()
    claim = recorder.claim(pid, None)
    assert claim is not None
    recorder.record_no_images(
        claim, "no_candidates", "nothing", stats=AttemptStats(search_calls=1, candidates_found=0, refusals=[])
    )
    clock.advance(hours=25)
    retry = recorder.claim(pid, None)
    assert retry is not None
    recorder.commit_images(
        retry, [_record(0, "x/0.jpg")], stats=AttemptStats(search_calls=1, candidates_found=1, refusals=[])
    )
    listing = _listing(session_factory, pid)
    assert listing is not None
    assert (listing.status, listing.sync_error) == (ListingStatus.PENDING, None)


def test_success_leaves_an_error_of_the_marketplace_sync_alone(
    session_factory: sessionmaker[Session], recorder: ImageRecorder, make_product: Callable[..., int]
) -> None:
    pid = make_product()
    with session_factory() as session, session.begin():
        session.add(
            MercadoLibreListing(product_master_id=pid, status=ListingStatus.ERROR, sync_error="ML API: invalid title")
        )
    claim = recorder.claim(pid, None)
    assert claim is not None
    recorder.commit_images(
        claim, [_record(0, "y/0.jpg")], stats=AttemptStats(search_calls=1, candidates_found=1, refusals=[])
    )
    listing = _listing(session_factory, pid)
    assert listing is not None
    assert (listing.status, listing.sync_error) == (ListingStatus.ERROR, "ML API: invalid title")


def test_failed_attempt_keeps_the_product_pending_and_the_listing_untouched(
    session_factory: sessionmaker[Session], recorder: ImageRecorder, make_product: Callable[..., int], clock: Any
) -> None:
    pid = make_product()
    with session_factory() as session, session.begin():
        session.add(MercadoLibreListing(product_master_id=pid, status=ListingStatus.PAUSED))
    claim = recorder.claim(pid, None)
    assert claim is not None
    recorder.record_failed(
        claim, "storage_unavailable", "S3 timed out", stats=AttemptStats(search_calls=1, candidates_found=3)
    )
    attempt = _attempt(session_factory, claim.attempt_id)
    assert (attempt.outcome, attempt.reason_code, attempt.search_calls) == ("failed", "storage_unavailable", 1)
    listing = _listing(session_factory, pid)
    assert listing is not None
    assert (listing.status, listing.sync_error) == (ListingStatus.PAUSED, None)
    selector = ImageCandidateSelector(MercadoLibreFilter(session_factory, DEFAULT_PUBLICATION_RULES, now=clock))
    assert [p.id for p in selector.get_pending_image_products()] == [pid]


def test_last_attempts_returns_each_products_latest(
    session_factory: sessionmaker[Session], recorder: ImageRecorder, make_product: Callable[..., int]
) -> None:
    pid = make_product()
    never = make_product()
    first = recorder.claim(pid, "a")
    assert first is not None
    recorder.record_failed(first, "search_unavailable", "503")
    second = recorder.claim(pid, "b")
    assert second is not None
    recorder.record_skipped(second, "not_eligible", "price dropped")
    latest = recorder.last_attempts([pid, never])
    assert set(latest) == {pid}
    assert latest[pid].id == second.attempt_id
    assert (latest[pid].outcome, latest[pid].run_id) == ("skipped", "b")
