"""Dagster-side helpers: an instance per test, resources pointed at the test's catalog, web and store."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from dagster import (
    AssetKey,
    AssetMaterialization,
    AssetSelection,
    DagsterEventType,
    DagsterInstance,
    ExecuteInProcessResult,
    RetryPolicy,
    instance_for_test,
    materialize,
)

from ml_images.defs.assets.images import build_product_images_asset
from ml_images.defs.assets.selection import eligible_products, pending_image_products
from ml_images.defs.checks import stored_images_are_valid
from ml_images.defs.resources import (
    BackgroundRemoverResource,
    CatalogDatabaseResource,
    ImageSearchResource,
    ImageStoreResource,
    image_store_s3_resource,
)
from ml_images.orchestration.partitions import PRODUCTS_PARTITIONS_NAME, PartitionBatch
from ml_images_tests.pipeline.support import API_KEY, Catalog, ImageWeb

# No backoff in tests: a transient failure is retried once, at once.
fast_product_images = build_product_images_asset(RetryPolicy(max_retries=1, delay=0))


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    with instance_for_test() as dagster_instance:
        yield dagster_instance


def store_root() -> Path:
    """Where the local image store of the resources writes (``$ML_IMAGES_HOME/images``, per test)."""
    return Path(os.environ["ML_IMAGES_HOME"]) / "images"


def resources(catalog: Catalog, web: ImageWeb, *, s3: Mapping[str, str] | None = None) -> dict[str, Any]:
    store = (
        ImageStoreResource(
            bucket=s3["bucket"], s3=image_store_s3_resource(endpoint_url=s3["endpoint_url"], region_name=s3["region"])
        )
        if s3 is not None
        else ImageStoreResource()
    )
    return {
        "catalog": CatalogDatabaseResource(database_url=catalog.url),
        "image_search": ImageSearchResource(
            provider="brave", endpoint=web.search_endpoint, brave_api_key=API_KEY, allowed_private_hosts="127.0.0.1"
        ),
        "image_store": store,
        "background_remover": BackgroundRemoverResource(model_name="u2netp"),
    }


def run_selection(instance: DagsterInstance, res: Mapping[str, Any], **config: Any) -> ExecuteInProcessResult:
    return materialize(
        [eligible_products, pending_image_products],
        instance=instance,
        resources=dict(res),
        run_config={"ops": {"pending_image_products": {"config": config}}},
    )


def range_tags(keys: Sequence[str]) -> dict[str, str]:
    """The tags of a run over ``keys`` (consecutive partitions), exactly as production launches it."""
    return PartitionBatch(tuple(keys)).run_tags()


def run_images(
    instance: DagsterInstance,
    res: Mapping[str, Any],
    keys: Sequence[str],
    *,
    force: bool = False,
    with_check: bool = True,
    raise_on_error: bool = True,
) -> ExecuteInProcessResult:
    selection = AssetSelection.assets("product_images")
    return materialize(
        [fast_product_images, eligible_products, pending_image_products, stored_images_are_valid],
        selection=selection if with_check else selection.without_checks(),
        instance=instance,
        resources=dict(res),
        tags=range_tags(keys),
        run_config={"ops": {"product_images": {"config": {"force": force}}}},
        raise_on_error=raise_on_error,
    )


def register(instance: DagsterInstance, ids: Sequence[int]) -> list[str]:
    keys = [str(i) for i in ids]
    instance.add_dynamic_partitions(PRODUCTS_PARTITIONS_NAME, keys)
    return keys


def partition_metadata(
    result: ExecuteInProcessResult, instance: DagsterInstance | None = None
) -> dict[str, dict[str, Any]]:
    """Per partition: the metadata values of its product_images materialisation. With ``instance``, read from its
    event log: that includes the materialisations logged by a step that then failed, which the result leaves out."""
    if instance is None:
        events: Sequence[AssetMaterialization] = result.asset_materializations_for_node("product_images")
    else:
        events = [
            entry.asset_materialization
            for entry in instance.all_logs(result.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION)
            if entry.asset_materialization is not None
            and entry.asset_materialization.asset_key == AssetKey("product_images")
        ]
    return {str(e.partition): {k: getattr(v, "value", v) for k, v in e.metadata.items()} for e in events}


def observed_partition_metadata(result: ExecuteInProcessResult, instance: DagsterInstance) -> dict[str, dict[str, Any]]:
    """Per partition: the metadata of its product_images observation (a product that got no pictures)."""
    events = [
        entry.asset_observation
        for entry in instance.all_logs(result.run_id, of_type=DagsterEventType.ASSET_OBSERVATION)
        if entry.asset_observation is not None and entry.asset_observation.asset_key == AssetKey("product_images")
    ]
    return {str(e.partition): {k: getattr(v, "value", v) for k, v in e.metadata.items()} for e in events}
