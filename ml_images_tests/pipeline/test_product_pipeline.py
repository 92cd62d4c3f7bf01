"""One product end to end with real parts: catalog (SQLite and PostgreSQL), HTTP search + images, rembg, a store."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import pytest
from PIL import Image

from ml_images.catalog.models import ListingStatus
from ml_images.catalog.recorder import IMAGE_ERROR_PREFIX, ImageRecorder
from ml_images.errors import CatalogUnavailableError, SearchQuotaError, SearchUnavailableError
from ml_images.outcomes import ProductStatus
from ml_images.pipeline.reports import ProductReport
from ml_images_tests.pipeline.builders import CommitFails, make_pipeline, pending_ids
from ml_images_tests.pipeline.support import Catalog, ImageWeb, files_under


def _decode(path: Path) -> Image.Image:
    image = Image.open(io.BytesIO(path.read_bytes()))
    image.load()
    return image


def test_stores_images_in_order_and_records_the_attempt(catalog: Catalog, web: ImageWeb, remover, image_root):
    pid = catalog.add_product("ZX1001")
    web.add("ZX1001", 3)
    pipeline = make_pipeline(catalog, web, remover, root=image_root)

    report = pipeline.process_product(pid, "run-1")

    assert report.status is ProductStatus.STORED
    assert report.query == "Acme ZX1001 MONITOR"
    assert report.search_calls == 1
    rows = catalog.images(pid)
    assert [r.order for r in rows] == [0, 1, 2]
    assert all(r.is_processed for r in rows)
    assert rows[0].background_removed
    assert not rows[1].background_removed
    assert [r.url for r in rows] == [i.url for i in report.images]
    assert files_under(image_root) == sorted(str(r.storage_key) for r in rows)
    for row in rows:
        image = _decode(image_root / str(row.storage_key))
        assert (image.format, image.size) == ("JPEG", (1200, 1200))
    [attempt] = catalog.attempts(pid)
    assert (attempt.outcome, attempt.images_stored, attempt.search_calls, attempt.run_id) == ("stored", 3, 1, "run-1")
    assert pending_ids(catalog) == []


def test_running_again_adds_no_rows_and_searches_nothing(catalog: Catalog, web: ImageWeb, remover, image_root):
    pid = catalog.add_product("ZX1002")
    web.add("ZX1002", 2)
    pipeline = make_pipeline(catalog, web, remover, root=image_root)
    pipeline.process_product(pid, "run-1")
    calls, files = web.search_calls, files_under(image_root)

    again = pipeline.process_product(pid, "run-2")

    assert (again.status, again.reason_code) == (ProductStatus.SKIPPED, "has_images")
    assert len(catalog.images(pid)) == 2
    assert web.search_calls == calls
    assert files_under(image_root) == files
    assert [a.outcome for a in catalog.attempts(pid)] == ["stored", "skipped"]


def test_no_search_result_sets_the_listing_to_error(catalog: Catalog, web: ImageWeb, remover, image_root):
    pid = catalog.add_product("ZX1003")  # the search finds nothing for it
    pipeline = make_pipeline(catalog, web, remover, root=image_root)

    report = pipeline.process_product(pid, "run-1")

    assert (report.status, report.reason_code) == (ProductStatus.NO_IMAGES, "no_search_results")
    listing = catalog.listing(pid)
    assert listing is not None
    assert listing.status == ListingStatus.ERROR
    assert listing.sync_error is not None
    assert listing.sync_error.startswith(IMAGE_ERROR_PREFIX)
    assert "Acme ZX1003 MONITOR" in listing.sync_error
    assert catalog.images(pid) == []
    assert catalog.attempts(pid)[-1].outcome == ProductStatus.NO_IMAGES.value
    assert pending_ids(catalog) == []  # cooling down, not selected again at once


def test_all_candidates_refused_gives_the_reasons(catalog: Catalog, web: ImageWeb, remover, image_root):
    pid = catalog.add_product("ZX1004")
    tiny = io.BytesIO()
    Image.new("RGB", (80, 80), "red").save(tiny, "JPEG")
    web.add("ZX1004", [tiny.getvalue()])
    web.add_urls("ZX1004", [web.url("zx1004-0.jpg"), web.url("missing-1.jpg"), web.url("missing-2.jpg")])
    pipeline = make_pipeline(catalog, web, remover, root=image_root)

    report = pipeline.process_product(pid, "run-1")

    assert (report.status, report.reason_code) == (ProductStatus.NO_IMAGES, "no_usable_image")
    assert report.refusal_counts() == {"http_404": 2, "too_small": 1}
    assert "http_404×2" in str(report.reason)
    assert "too_small×1" in str(report.reason)
    listing = catalog.listing(pid)
    assert listing is not None
    assert listing.status == ListingStatus.ERROR
    assert "http_404×2" in str(listing.sync_error)
    attempt = catalog.attempts(pid)[-1]
    assert sorted(r["reason"] for r in attempt.refusals or []) == ["http_404", "http_404", "too_small"]
    assert files_under(image_root) == []


def test_search_unavailable_leaves_the_product_pending_without_error(
    catalog: Catalog, web: ImageWeb, remover, image_root
):
    pid = catalog.add_product("ZX1005")
    catalog.add_listing(pid, status=ListingStatus.PENDING.value)
    web.add("ZX1005", 2)
    web.search_status = 503
    pipeline = make_pipeline(catalog, web, remover, root=image_root)

    with pytest.raises(SearchUnavailableError):
        pipeline.process_product(pid, "run-1")

    listing = catalog.listing(pid)
    assert listing is not None
    assert (listing.status, listing.sync_error) == (ListingStatus.PENDING, None)
    [attempt] = catalog.attempts(pid)
    assert (attempt.outcome, attempt.reason_code) == ("failed", "search_unavailable")
    assert web.search_calls == 3  # the service's own retries happened
    assert pending_ids(catalog) == [pid]
    assert catalog.images(pid) == []
    assert files_under(image_root) == []


def test_images_found_later_bring_an_image_error_listing_back_to_pending(
    catalog: Catalog, web: ImageWeb, remover, image_root
):
    pid = catalog.add_product("ZX1006")
    catalog.add_listing(pid, status=ListingStatus.ERROR.value, sync_error=IMAGE_ERROR_PREFIX + "nothing found")
    web.add("ZX1006", 1)
    pipeline = make_pipeline(catalog, web, remover, root=image_root)

    report = pipeline.process_product(pid, "run-1")

    assert report.status is ProductStatus.STORED
    listing = catalog.listing(pid)
    assert listing is not None
    assert (listing.status, listing.sync_error) == (ListingStatus.PENDING, None)


def test_a_claimed_product_is_not_written_by_a_second_run(catalog: Catalog, web: ImageWeb, remover, image_root):
    pid = catalog.add_product("ZX1007")
    web.add("ZX1007", 1)
    recorder = ImageRecorder(catalog.session_factory)
    held = recorder.claim(pid, "other-run")
    assert held is not None
    pipeline = make_pipeline(catalog, web, remover, root=image_root)

    report = pipeline.process_product(pid, "run-1")

    assert (report.status, report.reason_code) == (ProductStatus.SKIPPED, "in_flight")
    assert catalog.images(pid) == []
    assert web.search_calls == 0


def test_reprocessing_replaces_the_set_and_survives_a_failure_before_commit(
    catalog: Catalog, web: ImageWeb, remover, image_root
):
    pid = catalog.add_product("ZX1008")
    web.add("ZX1008", 2, seed=800)
    make_pipeline(catalog, web, remover, root=image_root).process_product(pid, "run-1")
    old_rows = catalog.images(pid)
    old_files = files_under(image_root)
    assert len(old_rows) == 2
    assert len(old_files) == 2

    # New photos for the product; the run dies between the uploads and the commit.
    web.add("ZX1008", 3, seed=900)
    failing = CommitFails(catalog.session_factory, failures=1)
    pipeline = make_pipeline(catalog, web, remover, root=image_root, recorder=failing, search_cache=False)
    with pytest.raises(CatalogUnavailableError):
        pipeline.process_product(pid, "run-2", force=True)

    assert [(r.storage_key, r.url) for r in catalog.images(pid)] == [(r.storage_key, r.url) for r in old_rows]
    assert files_under(image_root) == old_files  # old objects intact, the new ones cleaned up
    assert catalog.attempts(pid)[-1].reason_code == "catalog_unavailable"

    # A later run succeeds: the new set replaces the old one and nothing is left behind.
    report = pipeline.process_product(pid, "run-3", force=True)
    assert report.status is ProductStatus.STORED
    new_rows = catalog.images(pid)
    assert len(new_rows) == 3
    assert {r.storage_key for r in new_rows}.isdisjoint({r.storage_key for r in old_rows})
    assert files_under(image_root) == sorted(str(r.storage_key) for r in new_rows)
    assert report.replaced_objects == 2


def test_reprocessing_with_identical_images_keeps_the_shared_objects(
    catalog: Catalog, web: ImageWeb, remover, image_root
):
    pid = catalog.add_product("ZX1009")
    web.add("ZX1009", 2, seed=700)
    make_pipeline(catalog, web, remover, root=image_root).process_product(pid, "run-1")
    before = files_under(image_root)

    failing = CommitFails(catalog.session_factory, failures=1)
    pipeline = make_pipeline(catalog, web, remover, root=image_root, recorder=failing)
    with pytest.raises(CatalogUnavailableError):
        pipeline.process_product(pid, "run-2", force=True)
    # Content-addressed keys: the failed run re-uploaded the same keys; the cleanup must not delete them.
    assert files_under(image_root) == before
    assert len(catalog.images(pid)) == 2

    report = pipeline.process_product(pid, "run-3", force=True)
    assert report.status is ProductStatus.STORED
    assert report.replaced_objects == 0
    assert files_under(image_root) == before


def test_quota_exhausted_stops_the_run_without_error_listing(catalog: Catalog, web: ImageWeb, remover, image_root):
    pid = catalog.add_product("ZX1010")
    web.add("ZX1010", 1)
    web.search_status = 429
    web.search_body = {"error": {"code": "QUOTA_LIMITED", "detail": "monthly quota reached"}}
    pipeline = make_pipeline(catalog, web, remover, root=image_root)

    with pytest.raises(SearchQuotaError):
        pipeline.process_product(pid, "run-1")

    assert catalog.listing(pid) is None
    assert catalog.attempts(pid)[-1].reason_code == "search_quota"
    assert pending_ids(catalog) == [pid]


def test_two_overlapping_runs_cannot_both_write_a_product(catalog: Catalog, web: ImageWeb, remover, image_root):
    pid = catalog.add_product("ZX1011")
    web.add("ZX1011", 2)
    web.search_latency = 0.5  # both runs are in flight at the same time
    pipelines = [make_pipeline(catalog, web, remover, root=image_root) for _ in range(2)]
    barrier = threading.Barrier(2)
    reports: dict[str, ProductReport] = {}

    def run(index: int) -> None:
        barrier.wait()
        reports[f"run-{index}"] = pipelines[index].process_product(pid, f"run-{index}")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    statuses = sorted((r.status.value, r.reason_code) for r in reports.values())
    assert statuses == [("skipped", "in_flight"), ("stored", None)]
    assert [r.order for r in catalog.images(pid)] == [0, 1]
    assert [a.outcome for a in catalog.attempts(pid)] == ["stored"]
    assert web.search_calls == 1
