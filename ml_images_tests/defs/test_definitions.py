"""The code location: what it defines, how resources read the environment, and the partition batching rules."""

from __future__ import annotations

import pytest
from dagster import AssetKey, DagsterInstance, Definitions, EnvVar
from dagster._core.definitions.backfill_policy import BackfillPolicyType

from ml_images.definitions import defs
from ml_images.defs.assets.images import build_product_images_asset
from ml_images.defs.resources import CatalogDatabaseResource, ImageSearchResource, default_resources
from ml_images.orchestration.partitions import (
    PartitionBatch,
    parse_product_key,
    plan_batches,
    register_products,
    run_partition_keys,
)

ASSETS = {
    AssetKey("eligible_products"),
    AssetKey("pending_image_products"),
    AssetKey("product_images"),
    AssetKey("image_coverage"),
}


def test_the_code_location_loads_with_its_jobs_sensor_and_resources():
    Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    assert graph.get_all_asset_keys() == ASSETS
    assert graph.get(AssetKey("eligible_products")).group_name == "selection"
    assert graph.get(AssetKey("pending_image_products")).group_name == "selection"
    images = graph.get(AssetKey("product_images"))
    assert images.group_name == "images"
    assert images.partitions_def is not None
    assert images.backfill_policy is not None
    # A UI backfill becomes runs of at most ML_IMAGES_SENSOR_BATCH_SIZE partitions (default 25), never one giant run.
    assert images.backfill_policy.policy_type == BackfillPolicyType.MULTI_RUN
    assert images.backfill_policy.max_partitions_per_run == 25
    # A selection string that resolves to nothing would make an empty job and still validate: check the keys.
    selection = defs.resolve_job_def("fetch_ml_images").asset_layer.executable_asset_keys
    assert selection == {AssetKey("eligible_products"), AssetKey("pending_image_products")}
    images_job = defs.resolve_job_def("product_images_job")
    assert images_job.asset_layer.executable_asset_keys == {AssetKey("product_images")}
    assert images_job.partitions_def is not None
    assert [s.name for s in defs.sensors or []] == ["new_eligible_products_sensor", "image_coverage_sensor"]
    assert defs.resolve_sensor_def("new_eligible_products_sensor").job_name == "product_images_job"
    assert graph.get(AssetKey("image_coverage")).group_name == "reports"
    coverage_job = defs.resolve_job_def("image_coverage_job")
    assert coverage_job.asset_layer.executable_asset_keys == {AssetKey("image_coverage")}
    assert defs.resolve_sensor_def("image_coverage_sensor").job_name == "image_coverage_job"
    assert set(defs.resources or {}) == {"catalog", "image_search", "image_store", "background_remover"}
    [check] = defs.resolve_asset_graph().asset_check_keys
    assert (check.asset_key, check.name) == (AssetKey("product_images"), "stored_images_are_valid")


def test_resources_use_env_vars_only_when_set(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("BRAVE_SEARCH_API_KEY", "brave-secret-value")
    monkeypatch.setenv("ML_IMAGES_DATABASE_URL", "postgresql+psycopg2://shop:pw-secret@127.0.0.1/shop")
    monkeypatch.delenv("SERPAPI_API_KEY", raising=False)

    resources = default_resources()

    search = resources["image_search"]
    assert isinstance(search, ImageSearchResource)
    assert isinstance(search.brave_api_key, EnvVar)
    assert search.brave_api_key.env_var_name == "BRAVE_SEARCH_API_KEY"
    assert search.serpapi_api_key is None
    catalog = resources["catalog"]
    assert isinstance(catalog, CatalogDatabaseResource)
    assert isinstance(catalog.database_url, EnvVar)
    # The values are resolved at run time: nothing of them is in the definitions.
    assert "brave-secret-value" not in repr(resources)
    assert "pw-secret" not in repr(resources)


def test_plan_batches_for_new_keys_and_registered_positions():
    registered = ["10", "11", "12", "50", "13", "14"]
    batches = plan_batches(["14", "11", "12", "99", "98", "13", "10", "97"], registered, 3)
    assert [b.keys for b in batches] == [("10", "11", "12"), ("13", "14"), ("99", "98", "97")]
    assert plan_batches([], registered, 3) == []
    assert [b.keys for b in plan_batches(["50", "13"], registered, 25)] == [("50", "13")]
    with pytest.raises(ValueError, match="batch_size"):
        plan_batches(["1"], [], 0)


def test_batch_tags():
    assert PartitionBatch(("7",)).run_tags() == {"dagster/partition": "7"}
    assert PartitionBatch(("7", "8")).run_tags() == {
        "dagster/asset_partition_range_start": "7",
        "dagster/asset_partition_range_end": "8",
    }


@pytest.mark.parametrize(
    ("key", "expected"), [("42", 42), ("0", None), ("007", None), ("-3", None), ("4a", None), ("", None), ("٣", None)]
)
def test_parse_product_key(key: str, expected: int | None):
    assert parse_product_key(key) == expected


def test_registration_is_idempotent_and_ranges_resolve_in_registration_order():
    with DagsterInstance.ephemeral() as instance:
        assert register_products(instance, ["3", "1", "2"]) == ["3", "1", "2"]
        assert register_products(instance, ["1", "4", "4"]) == ["4"]
        assert instance.get_dynamic_partitions("products") == ["3", "1", "2", "4"]
        assert run_partition_keys({"dagster/partition": "2"}, instance) == ["2"]
        tags = {"dagster/asset_partition_range_start": "1", "dagster/asset_partition_range_end": "4"}
        assert run_partition_keys(tags, instance) == ["1", "2", "4"]
        assert run_partition_keys({}, instance) is None
        with pytest.raises(ValueError, match="registered"):
            run_partition_keys(
                {"dagster/asset_partition_range_start": "1", "dagster/asset_partition_range_end": "9"}, instance
            )


@pytest.mark.parametrize(("bucket", "kind"), [("shop-images", "s3"), ("", "filesystem"), (None, "filesystem")])
def test_the_kind_tag_of_product_images_is_the_configured_store(
    monkeypatch: pytest.MonkeyPatch, bucket: str | None, kind: str
):
    if bucket is None:
        monkeypatch.delenv("AWS_STORAGE_BUCKET_NAME", raising=False)
    else:
        monkeypatch.setenv("AWS_STORAGE_BUCKET_NAME", bucket)

    [spec] = build_product_images_asset().specs

    assert set(spec.kinds) == {"python", kind}
