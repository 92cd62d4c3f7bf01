"""Metadata a person reads in the Dagster UI: per product (per partition) and per batch."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dagster import MetadataValue, TableColumn, TableRecord, TableSchema

from ml_images.catalog.models import ProductMaster
from ml_images.dagster_defs.pictures import FullImageLink
from ml_images.pipeline.reports import BatchReport, ProductReport, ProductStatus, StoredImage
from ml_images.search.query import QueryConstructor

PREVIEW_ROWS = 50
#: Refused candidates listed per product (the attempt row keeps the same bounded sample); counts cover them all.
REFUSAL_ROWS = 50

_PREVIEW_SCHEMA = TableSchema(
    columns=[
        TableColumn("product_id", "int"),
        TableColumn("code", "string"),
        TableColumn("category", "string"),
        TableColumn("description", "string"),
        TableColumn("search_query", "string"),
    ]
)
_REFUSAL_SCHEMA = TableSchema(
    columns=[
        TableColumn("stage", "string"),
        TableColumn("reason", "string"),
        TableColumn("url", "string"),
        TableColumn("detail", "string"),
    ]
)
_BATCH_SCHEMA = TableSchema(
    columns=[
        TableColumn("product_id", "int"),
        TableColumn("code", "string"),
        TableColumn("outcome", "string"),
        TableColumn("images", "int"),
        TableColumn("search_calls", "int"),
        TableColumn("reason", "string"),
    ]
)


def _clip(text: str | None, length: int) -> str:
    text = (text or "").replace("\n", " ").strip()
    return text if len(text) <= length else text[: length - 1] + "…"


def _markdown_url(url: str) -> str:
    return url.replace(" ", "%20").replace("(", "%28").replace(")", "%29")


def preview_rows(products: Iterable[ProductMaster], queries: QueryConstructor) -> list[dict[str, Any]]:
    """One row per product with the search query it would use (the same builder the pipeline uses)."""
    return [
        {
            "product_id": p.id,
            "code": p.code or "",
            "category": p.category or "",
            "description": _clip(p.description, 80),
            "search_query": queries.build(p),
        }
        for p in products
    ]


def preview_table(rows: Sequence[dict[str, Any]]) -> MetadataValue:
    return MetadataValue.table(records=[TableRecord(row) for row in rows[:PREVIEW_ROWS]], schema=_PREVIEW_SCHEMA)


@dataclass(frozen=True)
class ProductInfo:
    """What names a product to a person: its code and description (from ``product_master``)."""

    code: str | None = None
    description: str | None = None

    @classmethod
    def of(cls, product: ProductMaster | None) -> ProductInfo:
        return cls() if product is None else cls(code=product.code, description=product.description)

    @property
    def label(self) -> str:
        return self.code or "(no code)"


@dataclass(frozen=True)
class PictureView:
    """One stored image as the UI shows it: the image, its thumbnail (``data:`` URI) and a full-image link."""

    image: StoredImage
    thumbnail: str | None = None
    link: FullImageLink | None = None


ImageFacts = Callable[[StoredImage], Mapping[str, str]]


def basic_image_facts(image: StoredImage) -> dict[str, str]:
    return {
        "size": f"{image.width}×{image.height}",
        "background": "removed" if image.background_removed else "kept",
        "source": image.source_url,
    }


#: Per-image fields, in order. Each is shown beside the image's thumbnail and as a column of the ``images`` table;
#: adding a field (provenance, a score) is adding a function here (or passing ``facts=`` to ``product_metadata``).
IMAGE_FACTS: tuple[ImageFacts, ...] = (basic_image_facts,)


def _facts(image: StoredImage, facts: Sequence[ImageFacts]) -> dict[str, str]:
    merged: dict[str, str] = {}
    for source in facts:
        merged.update((k, _clip(str(v), 300)) for k, v in source(image).items())
    return merged


def image_entry_key(view: PictureView) -> str:
    return f"image_{view.image.order + 1}" + ("_cover" if view.image.order == 0 else "")


def image_entry(view: PictureView, info: ProductInfo, facts: Sequence[ImageFacts], no_link: str) -> MetadataValue:
    """One line of markdown (the UI renders single-line markdown in place; a multi-line value is folded away)."""
    image = view.image
    cover = image.order == 0
    alt = f"{'cover' if cover else f'image {image.order + 1}'} of {info.label}"
    parts = [f"![{alt}]({view.thumbnail})" if view.thumbnail else "(no thumbnail: the stored object is unreadable)"]
    if cover:
        parts.append("**cover**")
    parts.extend(f"{k}: {v}" for k, v in _facts(image, facts).items())
    if view.link is not None:
        parts.append(f"[full image]({_markdown_url(view.link.url)}) ({view.link.describe()})")
    else:
        parts.append(f"no link ({no_link})")
    return MetadataValue.md(" · ".join(p.replace("\n", " ") for p in parts))


def images_table(views: Sequence[PictureView], facts: Sequence[ImageFacts]) -> MetadataValue:
    rows: list[dict[str, str | int | bool]] = [
        {"order": v.image.order, "cover": v.image.order == 0, **_facts(v.image, facts)} for v in views
    ]
    names = list(dict.fromkeys(k for row in rows for k in row))
    types = {"order": "int", "cover": "bool"}
    return MetadataValue.table(
        records=[TableRecord({k: row.get(k, "") for k in names}) for row in rows],
        schema=TableSchema(columns=[TableColumn(k, types.get(k, "string")) for k in names]),
    )


def product_metadata(
    report: ProductReport,
    info: ProductInfo | None = None,
    pictures: Sequence[PictureView] | None = None,
    *,
    facts: Sequence[ImageFacts] = IMAGE_FACTS,
    no_link: str = "no public URL",
) -> dict[str, Any]:
    """Metadata of one product's partition: what the product is, its status, each stored image (thumbnail, cover
    first and marked, link), refusals, search calls.

    ``pictures`` are the report's images with their thumbnails and links (``PictureViews`` builds them); without
    them the images are still listed, without thumbnails. At most ``REFUSAL_ROWS`` refused candidates are listed
    (a bounded event however many results a search gave); ``refusal_counts`` and ``refusals_total`` cover every
    refusal.
    """
    info = info or ProductInfo()
    metadata: dict[str, Any] = {
        "product_code": info.code or "",
        "product_description": _clip(info.description, 500),
        "status": report.status.value,
        "images_stored": len(report.images),
        "search_calls": report.search_calls,
        "candidates_found": report.candidates_found,
        "seconds": report.seconds,
    }
    if report.query:
        metadata["search_query"] = report.query
    if report.search_cached:
        metadata["search_cached"] = True
    if report.reason_code:
        metadata["reason_code"] = report.reason_code
    if report.reason:
        metadata["reason"] = _clip(report.reason, 1000)
    if report.images:
        views = list(pictures) if pictures is not None else [PictureView(image) for image in report.images]
        for view in sorted(views, key=lambda v: v.image.order):
            metadata[image_entry_key(view)] = image_entry(view, info, facts, no_link)
        metadata["images"] = images_table(views, facts)
        metadata["image_urls"] = MetadataValue.json([image.url for image in report.images])
    if report.replaced_objects:
        metadata["replaced_objects_deleted"] = report.replaced_objects
    if report.refusals:
        metadata["refused_candidates"] = MetadataValue.table(
            records=[
                TableRecord(
                    {
                        "stage": r.stage,
                        "reason": r.reason,
                        "url": _clip(r.url, 300),
                        "detail": _clip(r.detail, 300),
                    }
                )
                for r in report.refusals[:REFUSAL_ROWS]
            ],
            schema=_REFUSAL_SCHEMA,
        )
    counts = report.refusal_counts()
    if counts:
        metadata["refusal_counts"] = MetadataValue.json(counts)
        metadata["refusals_total"] = sum(counts.values())
    return metadata


def batch_table(batch: BatchReport, products: Mapping[int, ProductInfo] | None = None) -> MetadataValue:
    """The run's products: code, outcome, images, reason (one row each, in the run's order)."""
    products = products or {}
    return MetadataValue.table(
        records=[
            TableRecord(
                {
                    "product_id": r.product_id,
                    "code": products.get(r.product_id, ProductInfo()).code or "",
                    "outcome": r.status.value,
                    "images": len(r.images),
                    "search_calls": r.search_calls,
                    "reason": _clip(r.reason_code or "", 64)
                    + (f": {_clip(r.reason, 200)}" if r.reason and r.status is not ProductStatus.STORED else ""),
                }
            )
            for r in batch.reports
        ],
        schema=_BATCH_SCHEMA,
    )


def batch_metadata(batch: BatchReport, products: Mapping[int, ProductInfo] | None = None) -> dict[str, Any]:
    """Shared by every partition of the run (each partition's own metadata is added on top): counts, and the
    table of the run's products."""
    counts = batch.counts()
    return {
        "run_products": batch_table(batch, products),
        "batch_products": len(batch.reports),
        "batch_stored": counts["stored"],
        "batch_no_images": counts["no_images"],
        "batch_skipped": counts["skipped"],
        "batch_failed": counts["failed"],
        "batch_search_calls": batch.search_calls,
    }
