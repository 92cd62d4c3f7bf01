"""Candidates that cannot be reached (closed port, connection reset) are not the product's fault.

Such an attempt leaves the product pending as ``candidates_unreachable`` (no listing ERROR, no cooldown); only after
``unreachable_attempts`` such attempts in distinct runs does it become ``no_usable_image``. A batch in which every
product that reached the downloads saw it stops like any transient fault.
"""

from __future__ import annotations

from pathlib import Path

from ml_images.catalog.models import ListingStatus
from ml_images.errors import TransientError
from ml_images.outcomes import ProductStatus
from ml_images.pipeline.failures import CandidatesUnreachableError, failure_reason_code
from ml_images_tests.pipeline.builders import make_pipeline, pending_ids
from ml_images_tests.pipeline.network_faults import closed_port, resetting_server
from ml_images_tests.pipeline.support import Catalog, ImageWeb, files_under


def _unreachable_urls(reset_port: int) -> list[str]:
    refused = closed_port()
    return [
        f"http://127.0.0.1:{refused}/a.jpg",
        f"http://127.0.0.1:{refused}/b.jpg",
        f"http://127.0.0.1:{reset_port}/c.jpg",
    ]


def test_unreachable_candidates_leave_the_product_pending_until_the_third_run(
    catalog: Catalog, web: ImageWeb, remover, image_root: Path
):
    pid = catalog.add_product("ZX3001")
    catalog.add_listing(pid, status=ListingStatus.PENDING.value)
    with resetting_server() as reset_port:
        web.add_urls("ZX3001", _unreachable_urls(reset_port))
        pipeline = make_pipeline(catalog, web, remover, root=image_root, unreachable_attempts=3)

        first = pipeline.process_product(pid, "run-1")
        retried = pipeline.process_product(pid, "run-1")  # Dagster retrying the step inside the same run
        second = pipeline.process_product(pid, "run-2")

        for report in (first, retried, second):
            assert (report.status, report.reason_code) == (ProductStatus.DEFERRED, "candidates_unreachable")
            assert report.refusal_counts() == {"connect_error": 3}
            listing = catalog.listing(pid)
            assert listing is not None
            assert (listing.status, listing.sync_error) == (ListingStatus.PENDING, None)
            assert pending_ids(catalog) == [pid]  # no cooldown: the next run takes it again
        assert "attempt 1 of 3" in str(retried.reason)
        assert "attempt 2 of 3" in str(second.reason)
        attempts = catalog.attempts(pid)
        assert [(a.outcome, a.reason_code) for a in attempts] == [("failed", "candidates_unreachable")] * 3
        assert attempts[0].refusal_counts == {"connect_error": 3}
        assert web.search_calls == 1  # a transient outcome replays the cached candidates

        third = pipeline.process_product(pid, "run-3")

    assert (third.status, third.reason_code) == (ProductStatus.NO_IMAGES, "no_usable_image")
    assert "unreachable in 3 consecutive attempts" in str(third.reason)
    listing = catalog.listing(pid)
    assert listing is not None
    assert listing.status == ListingStatus.ERROR
    assert "unreachable" in str(listing.sync_error)
    assert pending_ids(catalog) == []  # now it cools down like any fruitless product
    assert files_under(image_root) == []


def test_one_reachable_refusal_makes_it_the_products_own_outcome(
    catalog: Catalog, web: ImageWeb, remover, image_root: Path
):
    pid = catalog.add_product("ZX3002")
    web.add_urls("ZX3002", [f"http://127.0.0.1:{closed_port()}/a.jpg", web.url("gone.jpg")])
    pipeline = make_pipeline(catalog, web, remover, root=image_root)

    report = pipeline.process_product(pid, "run-1")

    assert (report.status, report.reason_code) == (ProductStatus.NO_IMAGES, "no_usable_image")
    assert report.refusal_counts() == {"connect_error": 1, "http_404": 1}


def test_a_batch_that_reaches_nothing_stops_like_a_transient_fault(
    sqlite_catalog: Catalog, web: ImageWeb, remover, image_root: Path
):
    ids = [sqlite_catalog.add_product(f"ZX30{i:02d}") for i in range(10, 13)]
    with resetting_server() as reset_port:
        for i in range(10, 13):
            web.add_urls(f"ZX30{i:02d}", _unreachable_urls(reset_port))
        pipeline = make_pipeline(sqlite_catalog, web, remover, root=image_root)

        batch = pipeline.process_batch(ids, "run-1")

    assert [r.status for r in batch.reports] == [ProductStatus.DEFERRED] * 3
    assert isinstance(batch.abort_error, CandidatesUnreachableError)
    assert isinstance(batch.abort_error, TransientError)
    assert failure_reason_code(batch.abort_error) == "candidates_unreachable"
    assert "stopped early" in batch.summary()
    assert all(sqlite_catalog.listing(pid) is None for pid in ids)
    assert sorted(pending_ids(sqlite_catalog)) == ids


def test_a_batch_with_anything_reachable_goes_on(sqlite_catalog: Catalog, web: ImageWeb, remover, image_root: Path):
    reachable = sqlite_catalog.add_product("ZX3020")
    unreachable = sqlite_catalog.add_product("ZX3021")
    web.add("ZX3020", 1)
    with resetting_server() as reset_port:
        web.add_urls("ZX3021", _unreachable_urls(reset_port))
        pipeline = make_pipeline(sqlite_catalog, web, remover, root=image_root)

        batch = pipeline.process_batch([reachable, unreachable], "run-1")

    assert [r.status for r in batch.reports] == [ProductStatus.STORED, ProductStatus.DEFERRED]
    assert batch.abort_error is None
    assert batch.counts()["deferred"] == 1
    assert "1 left pending (candidates unreachable)" in batch.summary()
    assert pending_ids(sqlite_catalog) == [unreachable]
