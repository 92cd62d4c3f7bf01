"""``image_coverage`` (group ``reports``): how far the eligible products are covered with pictures, at a glance.

Materialised after each selection and image run (``image_coverage_sensor``; ``ml-images fetch`` does it itself
at the end) and on demand. Numeric entries are plotted over time by the UI; the table lists the products a person
should look at. It reads the catalog only.
"""

from typing import Any

from dagster import (
    AssetExecutionContext,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableRecord,
    TableSchema,
    asset,
)

from ml_images.catalog.coverage import ATTENTION_ROWS, CoverageReport, CoverageReporter
from ml_images.defs.resources import CatalogDatabaseResource
from ml_images.orchestration.stops import marking_interrupts

IMAGE_COVERAGE = "image_coverage"

_ATTENTION_SCHEMA = TableSchema(
    columns=[
        TableColumn("product_id", "int"),
        TableColumn("code", "string"),
        TableColumn("name", "string"),
        TableColumn("reason", "string"),
        TableColumn("since", "string"),
    ]
)


def coverage_metadata(report: CoverageReport) -> dict[str, Any]:
    share = report.with_pictures / report.eligible if report.eligible else 1.0
    return {
        "eligible": report.eligible,
        "with_pictures": report.with_pictures,
        "with_pictures_percent": MetadataValue.float(round(100 * share, 1)),
        "without_pictures": report.without_pictures,
        "pending": report.pending,
        "in_cooldown": report.in_cooldown,
        "listings_in_error": report.listings_in_error,
        "errors_by_reason": MetadataValue.json(report.errors_by_reason),
        **{f"errors_{reason}": count for reason, count in report.errors_by_reason.items()},
        "search_calls_last_day": report.search_calls_day,
        "search_calls_last_week": report.search_calls_week,
        "pictures_stored_last_day": report.pictures_stored_day,
        "pictures_stored_last_week": report.pictures_stored_week,
        "needing_attention": report.needing_attention,
        "needing_attention_products": MetadataValue.table(
            records=[
                TableRecord(
                    {
                        "product_id": row.product_id,
                        "code": row.code,
                        "name": row.name,
                        "reason": row.reason,
                        "since": row.since.isoformat(timespec="minutes") if row.since else "",
                    }
                )
                for row in report.attention
            ],
            schema=_ATTENTION_SCHEMA,
        ),
    }


@asset(
    name=IMAGE_COVERAGE,
    group_name="reports",
    kinds={"sql"},
    description=(
        "Picture coverage of the eligible products: with pictures, pending, in cooldown, listings in ERROR by "
        "reason, search calls and pictures stored over the last day and week, and the products needing attention "
        f"(latest {ATTENTION_ROWS}). Materialised after each selection and image run, and on demand."
    ),
)
def image_coverage(context: AssetExecutionContext, catalog: CatalogDatabaseResource) -> MaterializeResult:
    with marking_interrupts(context):
        report = CoverageReporter(catalog.selection().selector).report()
    context.log.info(
        f"{report.with_pictures} of {report.eligible} eligible products have pictures; {report.pending} pending, "
        f"{report.in_cooldown} in cooldown, {report.listings_in_error} listings in ERROR"
    )
    return MaterializeResult(metadata=coverage_metadata(report))
