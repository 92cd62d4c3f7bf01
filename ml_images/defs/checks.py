"""Asset check on ``product_images``: what was stored is what Mercado Libre gets.

For every product of the run's partitions: the ``product_image`` rows have ``order`` 0..n-1, each row records a
JPEG key, the canvas size (1200×1200 by default) and the sha256 of the bytes written, and each object in the store
still holds exactly those bytes. A product without images passes (nothing stored, nothing wrong). Run on its own,
without partitions, it checks the products whose images were stored most recently.

Cheap on purpose (issue 16): the rows say what was written, so an object is verified by its hash, not decoded
again; the objects are read side by side (the store's latency overlaps), and only an object whose bytes changed
is opened, to say what it holds instead. A row without a recorded hash (written before hashes were recorded) is
checked from the object's header alone.

It is an unpartitioned check of a partitioned asset on purpose: partitioned checks are a preview feature in
Dagster 1.13, and in a partition-range run a check result cannot carry a partition anyway. The result's
metadata lists every product checked and its problems.
"""

import hashlib
import io
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    MetadataValue,
    TableColumn,
    TableRecord,
    TableSchema,
    asset_check,
)
from PIL import Image, UnidentifiedImageError

from ml_images.catalog.stored_images import StoredImageRecord, StoredImages
from ml_images.defs.resources import CatalogDatabaseResource, ImageStoreResource
from ml_images.errors import StorageUnavailableError
from ml_images.orchestration.partitions import parse_product_key, run_partition_keys
from ml_images.storage.base import ImageStore
from ml_images.storage.keys import HASH_PREFIX_LENGTH

RECENT_PRODUCTS = 50
#: Objects read at once: below botocore's default pool of 10 connections per client.
READERS = 8
_SHA256 = re.compile(r"[0-9a-f]{64}")
_SCHEMA = TableSchema(
    columns=[
        TableColumn("product_id", "int"),
        TableColumn("images", "int"),
        TableColumn("ok", "bool"),
        TableColumn("problems", "string"),
    ]
)


@dataclass
class ProductCheck:
    product_id: int
    images: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def record_problems(records: Sequence[StoredImageRecord], canvas_size: int) -> list[str]:
    """What is wrong with one product's rows (ordered by ``order``) as recorded, without touching the store."""
    problems: list[str] = []
    orders = [r.order for r in records]
    if orders != list(range(len(records))):
        problems.append(f"order is {orders}, expected 0..{len(records) - 1}")
    for r in records:
        if not r.storage_key:
            problems.append(f"image {r.order}: no storage key")
            continue
        if not r.storage_key.endswith(".jpg"):
            problems.append(f"image {r.order}: key {r.storage_key} is not a .jpg")
        if r.width is not None and r.height is not None and (r.width, r.height) != (canvas_size, canvas_size):
            problems.append(f"image {r.order}: recorded {r.width}×{r.height}, expected {canvas_size}×{canvas_size}")
        if r.content_hash is not None:
            digest = r.content_hash.lower()
            if not _SHA256.fullmatch(digest):
                problems.append(f"image {r.order}: recorded hash {r.content_hash!r} is not a sha256")
            elif not r.storage_key.endswith(f"-{digest[:HASH_PREFIX_LENGTH]}.jpg"):
                # Keys are content-addressed (storage/keys.py): another hash means the row names other bytes.
                problems.append(f"image {r.order}: key {r.storage_key} does not carry the recorded hash")
    return problems


def object_problems(record: StoredImageRecord, store: ImageStore, canvas_size: int) -> list[str]:
    """What is wrong with the object of one row: missing, unreadable, or not the bytes recorded."""
    if not record.storage_key:
        return []  # reported from the row by record_problems
    try:
        data = store.get(record.storage_key)
    except StorageUnavailableError:
        raise  # the store is down: an infrastructure fault of the check, not a finding about the product
    except KeyError:
        return [f"image {record.order}: missing from the store"]
    except Exception as exc:  # an unreadable object is a finding, not a crash of the check
        return [f"image {record.order}: cannot be read ({type(exc).__name__})"]
    recorded = record.content_hash.lower() if record.content_hash else None
    if recorded is not None and hashlib.sha256(data).hexdigest() == recorded:
        return []  # the very bytes the pipeline wrote, after checking them: a JPEG of the recorded size
    try:
        with Image.open(io.BytesIO(data)) as image:  # the header only: format and size, no decode
            fmt, size = image.format, image.size
    except (UnidentifiedImageError, OSError):
        return [f"image {record.order}: not a decodable image"]
    problems = []
    if fmt != "JPEG":
        problems.append(f"image {record.order}: {fmt}, not JPEG")
    if size != (canvas_size, canvas_size):
        problems.append(f"image {record.order}: {size[0]}×{size[1]}, expected {canvas_size}×{canvas_size}")
    if recorded is not None and not problems:
        problems.append(f"image {record.order}: not the bytes stored (sha256 differs from the recorded hash)")
    return problems


def check_products(
    records: dict[int, list[StoredImageRecord]], store: ImageStore, canvas_size: int
) -> list[ProductCheck]:
    """One result per product of ``records``, in its order; the objects are read ``READERS`` at a time."""
    results = {
        pid: ProductCheck(pid, images=len(rows), problems=record_problems(rows, canvas_size))
        for pid, rows in records.items()
    }
    keyed = [r for rows in records.values() for r in rows if r.storage_key]
    with ThreadPoolExecutor(max_workers=READERS, thread_name_prefix="check") as pool:
        found = list(pool.map(lambda r: object_problems(r, store, canvas_size), keyed))
    for record, problems in zip(keyed, found, strict=True):
        results[record.product_id].problems.extend(problems)
    return list(results.values())


def _run_product_ids(context: AssetCheckExecutionContext) -> list[int] | None:
    keys = run_partition_keys(context.run.tags, context.instance)
    if keys is None:
        return None
    return [pid for pid in (parse_product_key(key) for key in keys) if pid is not None]


@asset_check(
    asset="product_images",
    name="stored_images_are_valid",
    description=(
        "Every stored image of the partition is the JPEG of the canvas size (1200×1200) that was recorded (same "
        "sha256) and order runs 0..n-1."
    ),
)
def stored_images_are_valid(
    context: AssetCheckExecutionContext, catalog: CatalogDatabaseResource, image_store: ImageStoreResource
) -> AssetCheckResult:
    settings = catalog.settings()
    store = image_store.build_store(settings)
    stored = StoredImages(catalog.session_factory())
    product_ids = _run_product_ids(context)
    if product_ids is None:
        product_ids = stored.recently_stored_products(RECENT_PRODUCTS)
    results = check_products(stored.by_product(product_ids), store, settings.canvas_size)
    failing = [r for r in results if not r.ok]
    return AssetCheckResult(
        passed=not failing,
        severity=AssetCheckSeverity.ERROR,
        description=(
            f"{len(results)} products checked, {sum(r.images for r in results)} images; {len(failing)} with problems"
        ),
        metadata={
            "products_checked": len(results),
            "images_checked": sum(r.images for r in results),
            "products_failing": MetadataValue.json([r.product_id for r in failing]),
            "results": MetadataValue.table(
                records=[
                    TableRecord(
                        {"product_id": r.product_id, "images": r.images, "ok": r.ok, "problems": "; ".join(r.problems)}
                    )
                    for r in results
                ],
                schema=_SCHEMA,
            ),
        },
    )
