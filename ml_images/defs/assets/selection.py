"""The selection group: which products are eligible, and which of them still need images.

``pending_image_products`` registers the pending products as partitions of ``products`` (idempotent). With
``dry_run`` it only reports: no partition registered, nothing searched, downloaded, uploaded or written. A dry
run records an observation instead of a materialisation (a new materialisation of this upstream asset would
mark every ``product_images`` partition "Unsynced") and tags its run ``ml_images/dry_run=true``.
"""

from collections.abc import Iterator
from typing import Any

from dagster import AssetExecutionContext, AssetObservation, MaterializeResult, MetadataValue, asset

from ml_images.defs.resources import CatalogDatabaseResource
from ml_images.orchestration.config import DRY_RUN_TAG, SelectionConfig
from ml_images.orchestration.metadata import PREVIEW_ROWS, preview_rows, preview_table
from ml_images.orchestration.partitions import PRODUCTS_PARTITIONS_NAME, register_products, unregistered
from ml_images.orchestration.stops import marking_interrupts
from ml_images.outcomes import ReasonCode
from ml_images.search.cost_estimate import SearchCostEstimator


@asset(
    group_name="selection",
    kinds={"sql"},
    description="Products eligible for Mercado Libre (active, flagged, fresh, above the category's price threshold).",
)
def eligible_products(context: AssetExecutionContext, catalog: CatalogDatabaseResource) -> MaterializeResult:
    with marking_interrupts(context):
        services = catalog.selection()
        count = services.product_filter.count_eligible()
        sample = services.product_filter.get_eligible_products(limit=PREVIEW_ROWS)
    context.log.info(f"{count} eligible products")
    return MaterializeResult(
        metadata={
            "eligible_count": count,
            "preview": preview_table(preview_rows(sample, services.queries)),
        }
    )


@asset(
    group_name="selection",
    kinds={"sql"},
    deps=[eligible_products],
    description=(
        "Eligible products without images (not in cooldown after a fruitless attempt), oldest first; registers "
        "them as partitions of `products`. Config: dry_run, limit, product_ids. A dry run is recorded as an "
        "observation (tag ml_images/dry_run=true), not a materialisation."
    ),
    output_required=False,
)
def pending_image_products(
    context: AssetExecutionContext, config: SelectionConfig, catalog: CatalogDatabaseResource
) -> Iterator[MaterializeResult]:
    with marking_interrupts(context):
        yield from _select_pending(context, config, catalog)


def _select_pending(
    context: AssetExecutionContext, config: SelectionConfig, catalog: CatalogDatabaseResource
) -> Iterator[MaterializeResult]:
    """The body of ``pending_image_products`` (a generator: the stop-request tagging wraps all of it)."""
    services = catalog.selection()
    pending_count = services.selector.count_pending()
    selected = services.select_ids(limit=config.limit, product_ids=config.product_ids)
    keys = [str(pid) for pid in selected]

    if config.dry_run:
        # Set here rather than by the launcher, so a dry run launched from the UI or the CLI is tagged alike.
        context.instance.add_run_tags(context.run.run_id, {DRY_RUN_TAG: "true"})
        new_keys = unregistered(keys, context.instance.get_dynamic_partitions(PRODUCTS_PARTITIONS_NAME))
        context.log.info(
            f"dry run: {len(keys)} of {pending_count} pending products would be processed; "
            f"{len(new_keys)} would be registered as partitions; nothing was written"
        )
    else:
        new_keys = register_products(context.instance, keys)
        context.log.info(
            f"{len(keys)} of {pending_count} pending products selected; {len(new_keys)} newly registered as partitions"
        )

    metadata: dict[str, Any] = {
        "dry_run": config.dry_run,
        "pending_count": pending_count,
        "selected_count": len(keys),
        ("would_register" if config.dry_run else "newly_registered"): len(new_keys),
        "preview": preview_table(preview_rows(services.preview(selected), services.queries)),
    }
    # What the selected products' searches will cost (distributor photos spared by the mode and cached results: 0).
    estimator = SearchCostEstimator(
        catalog.session_factory(),
        services.queries,
        mode=catalog.settings().search_mode,
        provider=catalog.settings().search_provider,
    )
    metadata.update(estimator.estimate(selected).metadata())
    if config.limit is not None:
        metadata["limit"] = config.limit
    if config.product_ids:
        chosen = set(selected)
        not_pending = [pid for pid in dict.fromkeys(config.product_ids) if pid not in chosen]
        metadata["requested_ids"] = MetadataValue.json(list(dict.fromkeys(config.product_ids)))
        metadata["requested_not_pending"] = MetadataValue.json(
            [
                {
                    "product_id": pid,
                    "reason": str(services.selector.needs_images(pid)[1] or ReasonCode.COOLDOWN_OR_IN_FLIGHT),
                }
                for pid in not_pending[:PREVIEW_ROWS]
            ]
        )
    if config.dry_run:
        context.log_event(AssetObservation(asset_key=context.asset_key, metadata=metadata))
        return
    yield MaterializeResult(metadata=metadata)
