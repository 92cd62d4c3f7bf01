"""Metadata a person reads in the Dagster UI: per product (per partition) and per batch."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dagster import MetadataValue, TableColumn, TableRecord, TableSchema

from ml_images.catalog.models import ProductMaster
from ml_images.orchestration.pictures import FullImageLink
from ml_images.outcomes import ProductStatus
from ml_images.pipeline.reports import BatchReport, ProductReport, StoredImage
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
    """One stored image as the UI shows it: an inline preview and a thumbnail (``data:`` URIs), a full-image link.

    Dagster 1.13 renders a markdown metadata value in place only when it is shorter than 1,000 characters; a
    longer one sits behind "[Show Markdown]" (a dialog, where its pictures do load). So each image gets a tiny
    preview that fits in its own entry, shown on the partition page, and a thumbnail of a few KB, shown together
    with the others in the ``thumbnails`` dialog.
    """

    image: StoredImage
    preview: str | None = None
    thumbnail: str | None = None
    link: FullImageLink | None = None


ImageFacts = Callable[[StoredImage], Mapping[str, str]]


def basic_image_facts(image: StoredImage) -> dict[str, str]:
    return {
        "size": f"{image.width}×{image.height}",
        "background": "removed" if image.background_removed else "kept",
        "source": image.source_url,
    }


def provenance_facts(image: StoredImage) -> dict[str, str]:
    """Where the picture came from and why it ranked where it did (``ml_images_image``)."""
    facts = {"from": image.source_label}
    if image.rank_score is not None:
        facts["rank score"] = f"{image.rank_score:g}"
    return facts


def judgement_facts(image: StoredImage) -> dict[str, str]:
    """How the picture was judged: its background method, quality score and cover verdict."""
    summary = image.check_summary()
    verdict = {True: "passes", False: "fails " + ", ".join(summary["failed"]), None: "not judged"}
    facts = {"cut-out": image.background_method or "none", "cover gate": verdict[image.cover_compliant]}
    if image.quality_score is not None:
        facts["quality"] = f"{image.quality_score:.2f}"
    return facts


#: Per-image fields, in order. Each becomes a column of the ``images`` table and a line under the image in the
#: ``thumbnails`` dialog; adding a field (provenance, a score) is adding a function here (or passing ``facts=`` to
#: ``product_metadata``).
IMAGE_FACTS: tuple[ImageFacts, ...] = (basic_image_facts, provenance_facts, judgement_facts)
#: Dagster renders markdown in place below this length (see ``PictureView``).
INLINE_MARKDOWN_LIMIT = 1000


def _facts(image: StoredImage, facts: Sequence[ImageFacts]) -> dict[str, str]:
    merged: dict[str, str] = {}
    for source in facts:
        merged.update((k, _clip(str(v), 300)) for k, v in source(image).items())
    return merged


def _alt(image: StoredImage, info: ProductInfo) -> str:
    return f"{'cover' if image.order == 0 else f'image {image.order + 1}'} of {info.label}"


def image_entry_key(image: StoredImage) -> str:
    return f"image_{image.order + 1}" + ("_cover" if image.order == 0 else "")


def image_entry(view: PictureView, info: ProductInfo) -> MetadataValue:
    """The image's inline preview, the cover marked; always below ``INLINE_MARKDOWN_LIMIT`` characters."""
    cover = " **cover**" if view.image.order == 0 else ""
    if view.preview and len(view.preview) + 80 < INLINE_MARKDOWN_LIMIT:
        return MetadataValue.md(f"![{_alt(view.image, info)}]({view.preview}){cover}")
    return MetadataValue.md(f"(no preview: the stored object could not be read; see `images`){cover}")


def thumbnails_entry(views: Sequence[PictureView], info: ProductInfo, facts: Sequence[ImageFacts]) -> MetadataValue:
    """Every image's thumbnail, cover first and marked, each with its facts and link ("[Show Markdown]")."""
    blocks = []
    for view in sorted(views, key=lambda v: v.image.order):
        image = view.image
        title = f"**{image.order + 1}. cover**" if image.order == 0 else f"**{image.order + 1}.**"
        picture = f"![{_alt(image, info)}]({view.thumbnail})" if view.thumbnail else "(no thumbnail)"
        lines = [f"{title} {picture}", *(f"{k}: {v}" for k, v in _facts(image, facts).items())]
        if view.link is not None:
            lines.append(f"[full image]({_markdown_url(view.link.url)}) ({view.link.describe()})")
        blocks.append("  \n".join(line.replace("\n", " ") for line in lines))
    return MetadataValue.md("\n\n".join(blocks))


def images_table(views: Sequence[PictureView], facts: Sequence[ImageFacts], no_link: str) -> MetadataValue:
    rows: list[dict[str, str | int | bool]] = [
        {
            "order": v.image.order,
            "cover": v.image.order == 0,
            **_facts(v.image, facts),
            "full_image": v.link.url if v.link is not None else f"no link ({no_link})",
            "link_validity": v.link.describe() if v.link is not None else "",
        }
        for v in views
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
    """Metadata of one product's partition: what the product is, its status, each stored image (inline preview,
    cover first and marked; thumbnails with their facts; full-image links), refusals, search calls.

    ``pictures`` are the report's images with their previews, thumbnails and links (``PictureViews`` builds them);
    without them the images are still listed, without pictures. At most ``REFUSAL_ROWS`` refused candidates are listed
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
        views = sorted(
            pictures if pictures is not None else [PictureView(image) for image in report.images],
            key=lambda v: v.image.order,
        )
        for view in views:
            metadata[image_entry_key(view.image)] = image_entry(view, info)
            if view.link is not None:
                metadata[f"image_{view.image.order + 1}_full"] = MetadataValue.url(view.link.url)
        links = {v.link.describe() for v in views if v.link is not None}
        metadata["full_image_links"] = ", ".join(sorted(links)) if links else f"none ({no_link})"
        metadata["thumbnails"] = thumbnails_entry(views, info, facts)
        metadata["images"] = images_table(views, facts, no_link)
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
    metadata.update(source_metadata(report))
    metadata.update(image_checks_metadata(report))
    return metadata


def source_metadata(report: ProductReport) -> dict[str, Any]:
    """Issue 13: where each stored picture came from, why the candidates ranked as they did, what it cost."""
    metadata: dict[str, Any] = {"downloads": report.downloads}
    if report.provider:
        metadata["search_provider"] = report.provider
    if report.search_calls_by_provider:
        metadata["search_calls_by_provider"] = MetadataValue.json(dict(report.search_calls_by_provider))
    if report.search_plan:
        metadata["search_plan"] = report.search_plan
    if report.images:
        metadata["image_sources"] = MetadataValue.json([f"#{i.order} {i.source_label}" for i in report.images])
    if report.candidates:
        metadata["ranked_candidates"] = MetadataValue.json(
            [
                {
                    "image_url": c.get("image_url"),
                    "source_kind": c.get("source_kind"),
                    "score": c.get("score", {}).get("total"),
                    "parts": {name: part.get("points") for name, part in c.get("score", {}).get("parts", {}).items()},
                }
                for c in report.candidates
            ]
        )
    return metadata


def image_checks_metadata(report: ProductReport) -> dict[str, Any]:
    """The cover verdict and every stored image's checks (issue 14): a markdown table, a failed check marked ✗,
    and the same figures as JSON."""
    metadata: dict[str, Any] = {}
    if report.cover_status:
        metadata["cover_status"] = report.cover_status
    if report.cover_flagged:
        metadata["cover_flagged"] = True
    if not report.images:
        return metadata
    summaries = [image.check_summary() for image in report.images]

    def figure(value: Any) -> str:
        return "–" if value is None else f"{value:.2f}" if isinstance(value, float) else str(value)

    rows = [
        "| # | background | quality | cover | text share | white border | fill | mask kept/unsure/left out/parts |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for item in summaries:
        verdict = {True: "✓ passes", False: "✗ " + ", ".join(item["failed"]), None: "not judged"}
        mask = item["mask"]
        parts = (
            "–"
            if not mask
            else " / ".join(figure(mask[k]) for k in ("kept_share", "doubtful_share", "left_out_share", "objects"))
        )
        rows.append(
            f"| {item['order']} | {item['background_method'] or 'none'} | {figure(item['quality_score'])} "
            f"| {verdict[item['cover_compliant']]} | {figure(item['text_share'])} "
            f"| {figure(item['white_border_share'])} | {figure(item['fill'])} "
            f"| {parts} |"
        )
    metadata["image_checks"] = MetadataValue.md("\n".join(rows))
    metadata["image_checks_json"] = MetadataValue.json(summaries)
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
