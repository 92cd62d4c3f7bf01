"""The selection group through Dagster: metadata, partition registration, limit / product_ids, and the dry run."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from dagster import AssetKey, DagsterInstance
from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
from dagster._core.loader import LoadingContextForTest

from ml_images.catalog.models import Base
from ml_images.orchestration.config import DRY_RUN_TAG
from ml_images.orchestration.partitions import PRODUCTS_PARTITIONS_NAME
from ml_images_tests.defs.helpers import resources, run_images, run_selection, store_root
from ml_images_tests.pipeline.support import Catalog, ImageWeb, files_under


def _metadata(result: Any, node: str) -> dict[str, Any]:
    """The metadata of the node's materialisation (of its observation in a dry run)."""
    [event] = result.asset_materializations_for_node(node) or result.asset_observations_for_node(node)
    return {k: getattr(v, "value", v) for k, v in event.metadata.items()}


def _dump(catalog: Catalog) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every catalog table: what "no database writes" is checked against."""
    with catalog.engine.connect() as conn:
        return {
            table.name: [tuple(row) for row in conn.execute(sa.select(table).order_by(*table.primary_key.columns))]
            for table in Base.metadata.sorted_tables
        }


def test_selection_reports_and_registers_pending_products(catalog: Catalog, web: ImageWeb, instance: DagsterInstance):
    first = catalog.add_product("ZX4001")
    second = catalog.add_product("ZX4002")
    catalog.add_product("ZX4003", eligible=False)
    res = resources(catalog, web)

    result = run_selection(instance, res)

    eligible = _metadata(result, "eligible_products")
    assert eligible["eligible_count"] == 2
    preview = eligible["preview"]
    assert [r.data["product_id"] for r in preview.records] == [first, second]
    assert preview.records[0].data["search_query"] == "Acme ZX4001 MONITOR"
    pending = _metadata(result, "pending_image_products")
    assert (pending["pending_count"], pending["selected_count"], pending["newly_registered"]) == (2, 2, 2)
    assert pending["dry_run"] is False
    assert [r.data["search_query"] for r in pending["preview"].records] == [
        "Acme ZX4001 MONITOR",
        "Acme ZX4002 MONITOR",
    ]
    assert instance.get_dynamic_partitions(PRODUCTS_PARTITIONS_NAME) == [str(first), str(second)]

    again = run_selection(instance, res)  # idempotent
    assert _metadata(again, "pending_image_products")["newly_registered"] == 0
    assert instance.get_dynamic_partitions(PRODUCTS_PARTITIONS_NAME) == [str(first), str(second)]


def test_limit_and_product_ids_restrict_the_selection(
    sqlite_catalog: Catalog, web: ImageWeb, instance: DagsterInstance
):
    ids = [sqlite_catalog.add_product(f"ZX41{i:02d}") for i in range(3)]
    res = resources(sqlite_catalog, web)

    limited = _metadata(run_selection(instance, res, limit=1), "pending_image_products")
    assert (limited["selected_count"], limited["limit"]) == (1, 1)
    assert instance.get_dynamic_partitions(PRODUCTS_PARTITIONS_NAME) == [str(ids[0])]

    chosen = _metadata(run_selection(instance, res, product_ids=[ids[2], 424242]), "pending_image_products")
    assert chosen["selected_count"] == 1
    assert chosen["requested_not_pending"] == [{"product_id": 424242, "reason": "not_found"}]
    assert instance.get_dynamic_partitions(PRODUCTS_PARTITIONS_NAME) == [str(ids[0]), str(ids[2])]


def test_dry_run_writes_nothing_anywhere(catalog: Catalog, web: ImageWeb, instance: DagsterInstance):
    ids = [catalog.add_product(f"ZX42{i:02d}") for i in range(3)]
    for i in range(3):
        web.add(f"ZX42{i:02d}", 1)
    before = _dump(catalog)

    result = run_selection(instance, resources(catalog, web), dry_run=True, limit=2)

    pending = _metadata(result, "pending_image_products")
    assert pending["dry_run"] is True
    assert (pending["pending_count"], pending["selected_count"], pending["would_register"]) == (3, 2, 2)
    assert [r.data["product_id"] for r in pending["preview"].records] == ids[:2]
    assert instance.get_dynamic_partitions(PRODUCTS_PARTITIONS_NAME) == []
    assert _dump(catalog) == before
    assert web.search_calls == 0
    assert web.image_requests == []
    assert files_under(store_root()) == []


def _image_partition_status(instance: DagsterInstance, key: str) -> StaleStatus:
    """What the UI shows as "Unsynced" (STALE) for a product_images partition: Dagster's own stale-status
    resolver (the one behind GraphQL's staleStatus) over the code location's asset graph."""
    from ml_images.definitions import defs

    resolver = CachingStaleStatusResolver(
        instance, defs.resolve_asset_graph(), loading_context=LoadingContextForTest(instance)
    )
    return resolver.get_status(AssetKey("product_images"), key)


def _tags(instance: DagsterInstance, run_id: str) -> dict[str, str]:
    run = instance.get_run_by_id(run_id)
    assert run is not None
    return dict(run.tags)


def test_a_dry_run_is_tagged_and_leaves_image_partitions_in_sync(
    catalog: Catalog, web: ImageWeb, instance: DagsterInstance
):
    pid = catalog.add_product("ZX4300")
    web.add("ZX4300", 1)
    res = resources(catalog, web)
    run_selection(instance, res)
    [key] = instance.get_dynamic_partitions(PRODUCTS_PARTITIONS_NAME)
    assert run_images(instance, res, [key]).success
    assert _image_partition_status(instance, key) == StaleStatus.FRESH
    catalog.add_product("ZX4301")  # something for the dry run to select

    dry = run_selection(instance, res, dry_run=True)

    assert dry.success
    assert _tags(instance, dry.run_id)[DRY_RUN_TAG] == "true"
    assert dry.asset_materializations_for_node("pending_image_products") == []
    [observation] = dry.asset_observations_for_node("pending_image_products")
    assert observation.metadata["selected_count"].value == 1
    assert _image_partition_status(instance, key) == StaleStatus.FRESH
    assert str(pid) == key

    # A real selection does materialise the upstream asset: the partition becomes Unsynced, as the UI shows.
    real = run_selection(instance, res)
    assert DRY_RUN_TAG not in _tags(instance, real.run_id)
    assert _image_partition_status(instance, key) == StaleStatus.STALE
