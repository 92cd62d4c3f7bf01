"""``stored_images_are_valid`` from what was recorded at write time: rows verified as recorded, objects by their
sha256 (no decode), side by side; and the catalog reader it uses (``catalog/stored_images.py``).

Rows and objects are written here the way the pipeline writes them (content-addressed key, canvas size, sha256),
on a real catalog (SQLite and PostgreSQL) and a real local store; the check runs as Dagster runs it."""

from __future__ import annotations

import hashlib
import io
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from dagster import AssetSelection, DagsterInstance, materialize
from PIL import Image

from ml_images.catalog.models import ProductImage
from ml_images.catalog.stored_images import StoredImageRecord, StoredImages
from ml_images.defs.checks import READERS, check_products, stored_images_are_valid
from ml_images.errors import StorageUnavailableError
from ml_images.storage.keys import image_key
from ml_images.storage.local import LocalImageStore
from ml_images_tests.defs.helpers import fast_product_images, range_tags, register, resources, store_root
from ml_images_tests.pipeline.support import Catalog, ImageWeb

CANVAS = 1200


def _jpeg(size: int = CANVAS, colour: str = "white", fmt: str = "JPEG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buffer, fmt)
    return buffer.getvalue()


def _store_images(catalog: Catalog, store: LocalImageStore, product_id: int, pictures: list[bytes]) -> list[str]:
    """Objects and rows as the pipeline writes them; returns the keys."""
    keys = []
    with catalog.session_factory() as session, session.begin():
        for order, data in enumerate(pictures):
            digest = hashlib.sha256(data).hexdigest()
            key = image_key(product_id, f"CODE{product_id}", order, digest)
            url = store.put(key, data)
            session.add(
                ProductImage(
                    product_id=product_id,
                    url=url,
                    order=order,
                    is_processed=True,
                    storage_key=key,
                    width=CANVAS,
                    height=CANVAS,
                    content_hash=digest,
                )
            )
            keys.append(key)
    return keys


def _run_check(catalog: Catalog, web: ImageWeb, instance: DagsterInstance, ids: list[int]) -> Any:
    result = materialize(
        [fast_product_images, stored_images_are_valid],
        selection=AssetSelection.checks(stored_images_are_valid),
        instance=instance,
        resources=resources(catalog, web),
        tags=range_tags(register(instance, ids)),
    )
    [evaluation] = result.get_asset_check_evaluations()
    return evaluation


def _problems(evaluation: Any) -> dict[int, str]:
    return {r.data["product_id"]: r.data["problems"] for r in evaluation.metadata["results"].value.records}


def test_what_the_pipeline_wrote_passes_and_every_fault_is_named(
    catalog: Catalog, web: ImageWeb, instance: DagsterInstance
):
    store = LocalImageStore(store_root())
    pictures = [_jpeg(colour="white"), _jpeg(colour="red"), _jpeg(colour="blue")]
    ids = [catalog.add_product(f"ZX81{i:02d}") for i in range(6)]
    keys = {pid: _store_images(catalog, store, pid, pictures) for pid in ids}
    good, missing, replaced, png, resized, empty = ids
    with catalog.session_factory() as session, session.begin():
        session.query(ProductImage).filter(ProductImage.product_id == empty).delete()
        row = session.query(ProductImage).filter_by(product_id=resized, order=2).one()
        row.width = row.height = 800
    (store_root() / keys[missing][1]).unlink()
    # Same format and size, other bytes: only the recorded hash tells.
    (store_root() / keys[replaced][0]).write_bytes(_jpeg(colour="green"))
    (store_root() / keys[png][2]).write_bytes(_jpeg(fmt="PNG"))

    evaluation = _run_check(catalog, web, instance, ids)

    assert not evaluation.passed
    problems = _problems(evaluation)
    assert problems[good] == ""
    assert problems[empty] == ""  # nothing stored, nothing wrong
    assert problems[missing] == "image 1: missing from the store"
    assert problems[replaced] == "image 0: not the bytes stored (sha256 differs from the recorded hash)"
    assert problems[png] == "image 2: PNG, not JPEG"
    assert problems[resized] == f"image 2: recorded 800×800, expected {CANVAS}×{CANVAS}"
    assert evaluation.metadata["products_failing"].value == [missing, replaced, png, resized]
    assert evaluation.metadata["images_checked"].value == 15


def test_rows_are_checked_as_recorded(tmp_path: Path):
    store = LocalImageStore(tmp_path)
    data = _jpeg()
    digest = hashlib.sha256(data).hexdigest()
    key = image_key(7, "A", 0, digest)
    store.put(key, data)
    records = {
        7: [
            StoredImageRecord(7, 0, key, CANVAS, CANVAS, digest),
            StoredImageRecord(7, 2, None, CANVAS, CANVAS, digest),
            StoredImageRecord(7, 3, key, CANVAS, CANVAS, "0" * 64),
            StoredImageRecord(7, 4, key, CANVAS, CANVAS, "not-a-hash"),
        ]
    }
    [result] = check_products(records, store, CANVAS)
    assert result.problems[:4] == [
        "order is [0, 2, 3, 4], expected 0..3",
        "image 2: no storage key",
        f"image 3: key {key} does not carry the recorded hash",
        "image 4: recorded hash 'not-a-hash' is not a sha256",
    ]
    # The object of image 3 is not the bytes its row records either.
    assert "image 3: not the bytes stored (sha256 differs from the recorded hash)" in result.problems


def test_a_row_without_a_recorded_hash_is_checked_from_the_object_header(tmp_path: Path):
    store = LocalImageStore(tmp_path)
    store.put("products/old/0-aaaaaaaaaaaa.jpg", _jpeg())
    store.put("products/old/1-bbbbbbbbbbbb.jpg", _jpeg(size=600, fmt="PNG"))
    store.put("products/old/2-cccccccccccc.jpg", b"not an image")
    records = {
        1: [
            StoredImageRecord(1, 0, "products/old/0-aaaaaaaaaaaa.jpg", None, None, None),
            StoredImageRecord(1, 1, "products/old/1-bbbbbbbbbbbb.jpg", None, None, None),
            StoredImageRecord(1, 2, "products/old/2-cccccccccccc.jpg", None, None, None),
        ]
    }
    [result] = check_products(records, store, CANVAS)
    assert result.problems == [
        "image 1: PNG, not JPEG",
        f"image 1: 600×600, expected {CANVAS}×{CANVAS}",
        "image 2: not a decodable image",
    ]


class SlowStore(LocalImageStore):
    """A local store with an object store's latency per read, counting the reads in flight."""

    def __init__(self, root: Path, latency_s: float) -> None:
        super().__init__(root)
        self.latency_s = latency_s
        self.in_flight = 0
        self.most_in_flight = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes:
        with self._lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            time.sleep(self.latency_s)
            return super().get(key)
        finally:
            with self._lock:
                self.in_flight -= 1


def test_objects_are_read_side_by_side(tmp_path: Path):
    store = SlowStore(tmp_path, latency_s=0.05)
    records: dict[int, list[StoredImageRecord]] = {}
    for pid in range(1, 11):
        data = _jpeg(size=64, colour=(pid * 20, 0, 0))  # type: ignore[arg-type]
        digest = hashlib.sha256(data).hexdigest()
        key = image_key(pid, None, 0, digest)
        store.put(key, data)
        records[pid] = [StoredImageRecord(pid, 0, key, 64, 64, digest)]
    started = time.perf_counter()
    results = check_products(records, store, 64)
    elapsed = time.perf_counter() - started
    assert all(r.ok for r in results)
    assert store.most_in_flight == READERS
    assert elapsed < 10 * 0.05  # one read after another would take 10 × the latency


class DownStore(LocalImageStore):
    def get(self, key: str) -> bytes:
        raise StorageUnavailableError("the store does not answer")


def test_a_store_that_does_not_answer_fails_the_check_instead_of_blaming_the_products(tmp_path: Path):
    data = _jpeg(size=64)
    digest = hashlib.sha256(data).hexdigest()
    records = {1: [StoredImageRecord(1, 0, image_key(1, None, 0, digest), 64, 64, digest)]}
    with pytest.raises(StorageUnavailableError):
        check_products(records, DownStore(tmp_path), 64)


def test_the_reader_returns_rows_in_order_and_the_most_recent_products(catalog: Catalog):
    store = LocalImageStore(store_root())
    first, second, without = (catalog.add_product(f"ZX82{i:02d}") for i in range(3))
    _store_images(catalog, store, first, [_jpeg(size=64, colour="red"), _jpeg(size=64, colour="blue")])
    _store_images(catalog, store, second, [_jpeg(size=64, colour="green")])
    reader = StoredImages(catalog.session_factory)

    # More ids than one IN list carries: the reader reads them in chunks.
    found = reader.by_product([first, without, second, *range(10_000, 11_200)])
    assert [r.order for r in found[first]] == [0, 1]
    assert found[without] == []
    assert [r.product_id for r in found[second]] == [second]
    assert len(found) == 3 + 1200
    assert set(reader.recently_stored_products(10)) == {first, second}
    assert len(reader.recently_stored_products(1)) == 1
