"""Batches: outcomes per product, overlap of network and CPU work, and how a batch stops on infrastructure faults."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from ml_images.download.results import DownloadedImage
from ml_images.errors import SearchQuotaError, StorageUnavailableError
from ml_images.outcomes import ProductStatus
from ml_images.pipeline.product_pipeline import BatchConcurrency
from ml_images.processing.processor import ImageProcessorService
from ml_images.processing.product_match import ProductIdentity
from ml_images.processing.results import ProcessingOutcome
from ml_images.storage.local import LocalImageStore
from ml_images.storage.s3 import S3ImageStore
from ml_images_tests.pipeline.builders import make_pipeline, pending_ids
from ml_images_tests.pipeline.support import Catalog, ImageWeb, timed


def test_a_batch_reports_every_product_in_order(sqlite_catalog: Catalog, web: ImageWeb, remover, image_root):
    found = sqlite_catalog.add_product("ZX2001")
    nothing = sqlite_catalog.add_product("ZX2002")
    also_found = sqlite_catalog.add_product("ZX2003")
    web.add("ZX2001", 2)
    web.add("ZX2003", 1)
    pipeline = make_pipeline(sqlite_catalog, web, remover, root=image_root)
    done: list[int] = []

    batch = pipeline.process_batch(
        [found, nothing, also_found, 999_999], "run-1", on_product_done=lambda r: done.append(r.product_id)
    )

    assert [r.product_id for r in batch.reports] == [found, nothing, also_found, 999_999]
    assert [r.status for r in batch.reports] == [
        ProductStatus.STORED,
        ProductStatus.NO_IMAGES,
        ProductStatus.STORED,
        ProductStatus.SKIPPED,
    ]
    assert batch.reports[3].reason_code == "not_found"
    assert sorted(done) == sorted([found, nothing, also_found, 999_999])
    assert batch.counts() == {"stored": 2, "no_images": 1, "skipped": 1, "deferred": 0, "failed": 0}
    assert batch.images_stored == 3
    assert batch.abort_error is None
    assert "2 stored (3 images)" in batch.summary()


class _TimedProcessor(ImageProcessorService):
    """The real processor, recording how long each product's processing took (the CPU side of a batch)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.seconds: list[float] = []
        self._lock = threading.Lock()

    def process_product(
        self, downloads: Sequence[DownloadedImage], max_images: int = 5, *, product: ProductIdentity | None = None
    ) -> ProcessingOutcome:
        start = time.perf_counter()
        try:
            return super().process_product(downloads, max_images, product=product)
        finally:
            with self._lock:
                self.seconds.append(time.perf_counter() - start)


@pytest.mark.slow
def test_network_and_cpu_work_overlap(sqlite_catalog: Catalog, web: ImageWeb, remover, tmp_path: Path):
    web.search_latency = 0.5
    web.image_latency = 0.5
    count = 4

    def run(prefix: str, concurrency: BatchConcurrency) -> tuple[float, float]:
        ids = []
        for i in range(count):
            model = f"{prefix}{i:02d}"
            ids.append(sqlite_catalog.add_product(model))
            web.add(model, 2, seed=len(prefix) * 100 + ord(prefix[0]) + i)
        processor = _TimedProcessor(remover)
        pipeline = make_pipeline(
            sqlite_catalog, web, remover, root=tmp_path / prefix, concurrency=concurrency, processor=processor
        )
        with timed() as elapsed:
            batch = pipeline.process_batch(ids, f"run-{prefix}")
        assert batch.counts()["stored"] == count
        return elapsed[0], sum(processor.seconds)

    remover.load()  # the rembg session is built before the timings
    sequential, cpu_sequential = run("SEQ", BatchConcurrency(products_in_flight=1, cpu_workers=1))
    overlapped, _ = run("OVL", BatchConcurrency(products_in_flight=4, cpu_workers=2))
    network_sequential = sequential - cpu_sequential  # ≈ count × (search + image latency)

    print(f"sequential {sequential:.2f}s (cpu {cpu_sequential:.2f}s), overlapped {overlapped:.2f}s")
    assert network_sequential > count * 1.0 * 0.9  # search + image latency per product
    # Overlapped, the batch takes about the longer of its network and CPU times (plus the time to fill the
    # pipeline: the first product's network work), not their sum.
    fill = network_sequential / count
    assert overlapped < 0.75 * sequential, (sequential, overlapped, cpu_sequential)
    assert overlapped < max(network_sequential, cpu_sequential) + fill + 0.75, (sequential, overlapped, cpu_sequential)


def test_quota_exhausted_stops_the_batch_and_leaves_everything_pending(
    sqlite_catalog: Catalog, web: ImageWeb, remover, image_root
):
    ids = [sqlite_catalog.add_product(f"ZX21{i:02d}") for i in range(4)]
    for i in range(4):
        web.add(f"ZX21{i:02d}", 1)
    web.search_status = 429
    web.search_body = {"error": {"code": "QUOTA_LIMITED"}}
    pipeline = make_pipeline(
        sqlite_catalog, web, remover, root=image_root, concurrency=BatchConcurrency(products_in_flight=1)
    )

    batch = pipeline.process_batch(ids, "run-1")

    assert isinstance(batch.abort_error, SearchQuotaError)
    assert [r.reason_code for r in batch.reports] == ["search_quota", "not_started", "not_started", "not_started"]
    assert all(r.status is ProductStatus.FAILED for r in batch.reports)
    assert web.search_calls == 1  # quota is not retried, and nothing else was searched
    assert sorted(pending_ids(sqlite_catalog)) == sorted(ids)
    assert all(sqlite_catalog.listing(pid) is None for pid in ids)
    assert sqlite_catalog.attempt_count() == 1


def test_store_unavailable_stops_the_batch_without_half_written_products(
    sqlite_catalog: Catalog, web: ImageWeb, remover, tmp_path: Path
):
    ids = [sqlite_catalog.add_product(f"ZX22{i:02d}") for i in range(3)]
    for i in range(3):
        web.add(f"ZX22{i:02d}", 2)
    not_a_folder = tmp_path / "store"
    not_a_folder.write_text("a file where the store's folder should be")
    pipeline = make_pipeline(sqlite_catalog, web, remover, store=LocalImageStore(not_a_folder))

    batch = pipeline.process_batch(ids, "run-1")

    assert isinstance(batch.abort_error, StorageUnavailableError)
    assert {r.status for r in batch.reports} == {ProductStatus.FAILED}
    assert {r.reason_code for r in batch.reports} <= {"storage_unavailable", "batch_aborted", "not_started"}
    assert sqlite_catalog.image_count() == 0
    assert sorted(pending_ids(sqlite_catalog)) == sorted(ids)
    assert all(sqlite_catalog.listing(pid) is None for pid in ids)
    assert {a.outcome for pid in ids for a in sqlite_catalog.attempts(pid)} <= {"failed"}


def test_s3_store_end_to_end_and_unreachable_s3(sqlite_catalog: Catalog, web: ImageWeb, remover, s3_endpoint):
    client = boto3.client("s3", endpoint_url=s3_endpoint["endpoint_url"], region_name="us-east-1")
    store = S3ImageStore(client, s3_endpoint["bucket"], endpoint_url=s3_endpoint["endpoint_url"])
    pid = sqlite_catalog.add_product("ZX2301")
    web.add("ZX2301", 2)

    batch = make_pipeline(sqlite_catalog, web, remover, store=store).process_batch([pid], "run-1")

    assert batch.counts()["stored"] == 1
    listed = client.list_objects_v2(Bucket=s3_endpoint["bucket"]).get("Contents", [])
    assert sorted(o["Key"] for o in listed) == sorted(str(r.storage_key) for r in sqlite_catalog.images(pid))

    # A closed port: S3 unreachable is a transient fault; the product stays pending.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    dead_client = boto3.client(
        "s3",
        endpoint_url=dead,
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}, connect_timeout=1),
    )
    other = sqlite_catalog.add_product("ZX2302")
    web.add("ZX2302", 1)
    dead_store = S3ImageStore(dead_client, "bucket", endpoint_url=dead)
    batch = make_pipeline(sqlite_catalog, web, remover, store=dead_store).process_batch([other], "run-2")
    assert isinstance(batch.abort_error, StorageUnavailableError)
    assert pending_ids(sqlite_catalog) == [other]
