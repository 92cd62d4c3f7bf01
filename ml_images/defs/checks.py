"""Asset check on ``product_images``: what was stored is what Mercado Libre gets.

For every product of the run's partitions: the ``product_image`` rows have ``order`` 0..n-1, and each stored
object reads back as a JPEG of the configured canvas size (1200×1200 by default). A product without images
passes (nothing stored, nothing wrong). Run on its own, without partitions, it checks the products whose images
were stored most recently.

It is an unpartitioned check of a partitioned asset on purpose: partitioned checks are a preview feature in
Dagster 1.13, and in a partition-range run a check result cannot carry a partition anyway. The result's
metadata lists every product checked and its problems.
"""

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
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

from ml_images.catalog.layout import layout_of
from ml_images.catalog.models import ProductImage
from ml_images.defs.resources import CatalogDatabaseResource, ImageStoreResource
from ml_images.errors import StorageUnavailableError
from ml_images.orchestration.partitions import parse_product_key, run_partition_keys
from ml_images.storage.base import ImageStore

RECENT_PRODUCTS = 50
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


def check_product_images(
    rows: Sequence[ProductImage] | Sequence[Any], store: ImageStore, canvas_size: int, product_id: int
) -> ProductCheck:
    """Checks one product's rows (already ordered by ``order``) and their objects."""
    result = ProductCheck(product_id=product_id, images=len(rows))
    orders = [row.order for row in rows]
    if orders != list(range(len(rows))):
        result.problems.append(f"order is {orders}, expected 0..{len(rows) - 1}")
    for row in rows:
        if not row.storage_key:
            result.problems.append(f"image {row.order}: no storage key")
            continue
        try:
            data = store.get(row.storage_key)
        except StorageUnavailableError:
            raise
        except Exception as exc:  # a missing object is a finding, not a crash of the check
            result.problems.append(f"image {row.order}: cannot be read ({type(exc).__name__})")
            continue
        try:
            with Image.open(io.BytesIO(data)) as image:
                fmt, size = image.format, image.size
        except (UnidentifiedImageError, OSError):
            result.problems.append(f"image {row.order}: not a decodable image")
            continue
        if fmt != "JPEG":
            result.problems.append(f"image {row.order}: {fmt}, not JPEG")
        if size != (canvas_size, canvas_size):
            result.problems.append(f"image {row.order}: {size[0]}×{size[1]}, expected {canvas_size}×{canvas_size}")
    return result


def _run_product_ids(context: AssetCheckExecutionContext) -> list[int] | None:
    keys = run_partition_keys(context.run.tags, context.instance)
    if keys is None:
        return None
    return [pid for pid in (parse_product_key(key) for key in keys) if pid is not None]


@asset_check(
    asset="product_images",
    name="stored_images_are_valid",
    description="Every stored image of the partition is a JPEG of the canvas size (1200×1200) and order runs 0..n-1.",
)
def stored_images_are_valid(
    context: AssetCheckExecutionContext, catalog: CatalogDatabaseResource, image_store: ImageStoreResource
) -> AssetCheckResult:
    settings = catalog.settings()
    store = image_store.build_store(settings)
    session_factory = catalog.session_factory()
    product_ids = _run_product_ids(context)
    # The picture rows as (product_id, order, storage_key, created_at), on either catalog layout.
    pictures = layout_of(session_factory).picture_rows().subquery()
    with session_factory() as session:
        if product_ids is None:
            recent = (
                sa.select(pictures.c.product_id)
                .group_by(pictures.c.product_id)
                .order_by(sa.func.max(pictures.c.created_at).desc())
                .limit(RECENT_PRODUCTS)
            )
            product_ids = list(session.scalars(recent))
        rows = (
            session.execute(
                sa.select(pictures)
                .where(pictures.c.product_id.in_(product_ids))
                .order_by(pictures.c.product_id, pictures.c.order)
            ).all()
            if product_ids
            else []
        )
    by_product: dict[int, list[Any]] = {pid: [] for pid in product_ids}
    for row in rows:
        by_product[row.product_id].append(row)
    results = [check_product_images(by_product[pid], store, settings.canvas_size, pid) for pid in product_ids]
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
