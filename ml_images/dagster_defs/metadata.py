"""Metadata a person reads in the Dagster UI: per product (per partition) and per batch."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from dagster import MetadataValue, TableColumn, TableRecord, TableSchema

from ml_images.catalog.models import ProductMaster
from ml_images.pipeline.reports import BatchReport, ProductReport
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
        TableColumn("status", "string"),
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


def product_metadata(report: ProductReport) -> dict[str, Any]:
    """Metadata of one product's partition: status, images and URLs, main picture, refusals, search calls.

    At most ``REFUSAL_ROWS`` refused candidates are listed (a bounded event however many results a search gave);
    ``refusal_counts`` and ``refusals_total`` cover every refusal.
    """
    metadata: dict[str, Any] = {
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
        metadata["image_urls"] = MetadataValue.json([image.url for image in report.images])
        main = report.images[0]
        removed = " (background removed)" if main.background_removed else ""
        metadata["main_picture"] = MetadataValue.md(
            f"![main picture of product {report.product_id}]({_markdown_url(main.url)})\n\n"
            f"{main.width}×{main.height}{removed}, from {main.source_url}"
        )
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


def batch_table(batch: BatchReport) -> MetadataValue:
    return MetadataValue.table(
        records=[
            TableRecord(
                {
                    "product_id": r.product_id,
                    "status": r.status.value,
                    "images": len(r.images),
                    "search_calls": r.search_calls,
                    "reason": _clip(r.reason, 200),
                }
            )
            for r in batch.reports
        ],
        schema=_BATCH_SCHEMA,
    )


def batch_metadata(batch: BatchReport) -> dict[str, Any]:
    """Shared by every partition of the run (each partition's own metadata is added on top)."""
    counts = batch.counts()
    return {
        "batch_products": len(batch.reports),
        "batch_stored": counts["stored"],
        "batch_no_images": counts["no_images"],
        "batch_skipped": counts["skipped"],
        "batch_failed": counts["failed"],
        "batch_search_calls": batch.search_calls,
    }
