"""``product_images`` through ``materialize()`` with real resources: local servers, moto S3, SQLite and PostgreSQL."""

from __future__ import annotations

import socket
from typing import Any

import boto3
import pytest
from dagster import DagsterEventType, DagsterInstance
from dagster._serdes import serialize_value

from ml_images.catalog.models import ListingStatus
from ml_images.dagster_defs.partitions import PRODUCTS_PARTITIONS_NAME
from ml_images.dagster_defs.resources import BackgroundRemoverResource, CatalogDatabaseResource
from ml_images_tests.dagster_defs.helpers import (
    partition_metadata,
    register,
    resources,
    run_images,
    run_selection,
    store_root,
)
from ml_images_tests.pipeline.support import API_KEY, Catalog, ImageWeb, files_under


def _check(result: Any) -> Any:
    [evaluation] = result.get_asset_check_evaluations()
    return evaluation


def _failure_description(result: Any) -> str:
    [failure] = [e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE]
    data = failure.step_failure_data
    return str(data.user_failure_data.description if data.user_failure_data else data.error.message)


def _error_text(result: Any) -> str:
    """Every error message of the run (step failures, resource start-up failures, the run failure)."""
    texts = []
    for event in result.all_events:
        error = getattr(event.event_specific_data, "error", None)
        if error is not None:
            texts.append(error.to_string())
    return "\n".join(texts)


def _retries(result: Any) -> int:
    return sum(1 for e in result.all_events if e.event_type == DagsterEventType.STEP_UP_FOR_RETRY)


def test_a_range_run_processes_the_batch_with_metadata_per_partition(
    catalog: Catalog, web: ImageWeb, instance: DagsterInstance
):
    ids = [catalog.add_product(f"ZX500{i}") for i in range(3)]
    web.add("ZX5000", 2)
    web.add("ZX5002", 1)  # ZX5001: the search finds nothing
    res = resources(catalog, web)
    run_selection(instance, res)
    keys = instance.get_dynamic_partitions(PRODUCTS_PARTITIONS_NAME)
    assert keys == [str(i) for i in ids]

    result = run_images(instance, res, keys)

    assert result.success
    metadata = partition_metadata(result)
    assert sorted(metadata) == sorted(keys)  # context.partition_keys was the whole batch
    stored = metadata[keys[0]]
    assert (stored["status"], stored["images_stored"], stored["search_calls"]) == ("stored", 2, 1)
    assert stored["search_query"] == "Acme ZX5000 MONITOR"
    assert stored["image_urls"] == [row.url for row in catalog.images(ids[0])]
    assert stored["main_picture"].startswith(f"![main picture of product {ids[0]}](")
    assert "background removed" in stored["main_picture"]
    nothing = metadata[keys[1]]
    assert (nothing["status"], nothing["reason_code"], nothing["images_stored"]) == (
        "no_images",
        "no_search_results",
        0,
    )
    assert "main_picture" not in nothing
    assert all(m["batch_products"] == 3 and m["batch_stored"] == 2 for m in metadata.values())
    listing = catalog.listing(ids[1])
    assert listing is not None
    assert listing.status == ListingStatus.ERROR
    check = _check(result)
    assert check.passed
    assert check.metadata["products_checked"].value == 3
    assert check.metadata["images_checked"].value == 3


def test_re_running_a_batch_adds_no_rows(sqlite_catalog: Catalog, web: ImageWeb, instance: DagsterInstance):
    ids = [sqlite_catalog.add_product(f"ZX510{i}") for i in range(2)]
    web.add("ZX5100", 2)
    web.add("ZX5101", 1)
    res = resources(sqlite_catalog, web)
    keys = register(instance, ids)
    run_images(instance, res, keys)
    rows, files, calls = sqlite_catalog.image_count(), files_under(store_root()), web.search_calls

    again = run_images(instance, res, keys)

    assert {m["status"] for m in partition_metadata(again).values()} == {"skipped"}
    assert {m["reason_code"] for m in partition_metadata(again).values()} == {"has_images"}
    assert (sqlite_catalog.image_count(), files_under(store_root()), web.search_calls) == (rows, files, calls)


def test_refused_candidates_are_listed_per_product(sqlite_catalog: Catalog, web: ImageWeb, instance: DagsterInstance):
    pid = sqlite_catalog.add_product("ZX5200")
    web.add("ZX5200", 1)
    web.add_urls("ZX5200", [web.url("zx5200-0.jpg"), web.url("gone.jpg")])
    keys = register(instance, [pid])

    result = run_images(instance, resources(sqlite_catalog, web), keys)

    metadata = partition_metadata(result)[keys[0]]
    assert metadata["status"] == "stored"
    assert metadata["refusal_counts"] == {"http_404": 1}
    [row] = metadata["refused_candidates"].records
    assert (row.data["stage"], row.data["reason"]) == ("download", "http_404")
    assert row.data["url"].endswith("/img/gone.jpg")


def test_search_unavailable_fails_the_step_retries_and_sets_no_error(
    sqlite_catalog: Catalog, web: ImageWeb, instance: DagsterInstance
):
    pid = sqlite_catalog.add_product("ZX5300")
    web.add("ZX5300", 1)
    web.search_status = 503
    keys = register(instance, [pid])

    result = run_images(instance, resources(sqlite_catalog, web), keys, raise_on_error=False)

    assert not result.success
    assert _retries(result) == 1  # the RetryPolicy tried again (transient)
    description = _failure_description(result)
    assert description.startswith("search_unavailable (")
    assert f"Left pending (not finished): [{pid}]" in description
    assert sqlite_catalog.listing(pid) is None
    assert [a.outcome for a in sqlite_catalog.attempts(pid)] == ["failed", "failed"]
    assert sqlite_catalog.image_count() == 0


def test_exhausted_quota_fails_without_retrying(sqlite_catalog: Catalog, web: ImageWeb, instance: DagsterInstance):
    pid = sqlite_catalog.add_product("ZX5400")
    web.search_status = 429
    web.search_body = {"error": {"code": "QUOTA_LIMITED"}}
    keys = register(instance, [pid])

    result = run_images(instance, resources(sqlite_catalog, web), keys, raise_on_error=False)

    assert not result.success
    assert _retries(result) == 0
    assert _failure_description(result).startswith("search_quota (SearchQuotaError")
    assert sqlite_catalog.listing(pid) is None


def test_force_replaces_the_images_of_a_product(sqlite_catalog: Catalog, web: ImageWeb, instance: DagsterInstance):
    pid = sqlite_catalog.add_product("ZX5500")
    web.add("ZX5500", 1, seed=55)
    res = resources(sqlite_catalog, web)
    keys = register(instance, [pid])
    run_images(instance, res, keys)
    old = sqlite_catalog.images(pid)

    web.add("ZX5500", 2, seed=56)
    result = run_images(instance, res, keys, force=True)

    metadata = partition_metadata(result)[keys[0]]
    assert (metadata["status"], metadata["images_stored"], metadata["replaced_objects_deleted"]) == ("stored", 2, 1)
    new = sqlite_catalog.images(pid)
    assert [r.order for r in new] == [0, 1]
    assert {r.storage_key for r in new}.isdisjoint({r.storage_key for r in old})
    assert files_under(store_root()) == sorted(str(r.storage_key) for r in new)


def test_s3_store_through_the_dagster_aws_resource(
    sqlite_catalog: Catalog, web: ImageWeb, instance: DagsterInstance, s3_endpoint: dict[str, str]
):
    pid = sqlite_catalog.add_product("ZX5600")
    web.add("ZX5600", 2)
    keys = register(instance, [pid])

    result = run_images(instance, resources(sqlite_catalog, web, s3=s3_endpoint), keys)

    assert result.success
    client = boto3.client("s3", endpoint_url=s3_endpoint["endpoint_url"], region_name="us-east-1")
    listed = sorted(o["Key"] for o in client.list_objects_v2(Bucket=s3_endpoint["bucket"]).get("Contents", []))
    assert listed == sorted(str(r.storage_key) for r in sqlite_catalog.images(pid))
    assert _check(result).passed  # read back from S3: 1200×1200 JPEGs, order 0..n-1
    assert files_under(store_root()) == []


def test_unreachable_catalog_fails_the_run_clearly(sqlite_catalog: Catalog, web: ImageWeb, instance: DagsterInstance):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    res = resources(sqlite_catalog, web)
    res["catalog"] = CatalogDatabaseResource(database_url=f"postgresql+psycopg2://nobody:s3cret@127.0.0.1:{port}/shop")
    keys = register(instance, [1])

    result = run_images(instance, res, keys, raise_on_error=False, with_check=False)

    assert not result.success
    text = _error_text(result)
    assert "CatalogUnavailableError" in text
    assert f"nobody:***@127.0.0.1:{port}/shop" in text  # says where, without the password
    assert "s3cret" not in text


def test_missing_model_stops_the_run_at_start_up(sqlite_catalog: Catalog, web: ImageWeb, instance: DagsterInstance):
    pid = sqlite_catalog.add_product("ZX5700")
    res = resources(sqlite_catalog, web)
    res["background_remover"] = BackgroundRemoverResource(model_name="isnet-general-use")
    keys = register(instance, [pid])

    result = run_images(instance, res, keys, raise_on_error=False, with_check=False)

    assert not result.success
    text = _error_text(result)
    assert "ModelNotInstalledError" in text
    assert "isnet-general-use" in text
    assert web.search_calls == 0
    assert sqlite_catalog.attempt_count() == 0


@pytest.mark.parametrize("broken", ["format", "order"])
def test_the_check_fails_on_a_wrong_stored_image(
    sqlite_catalog: Catalog, web: ImageWeb, instance: DagsterInstance, broken: str
):
    pid = sqlite_catalog.add_product("ZX5800")
    web.add("ZX5800", 2)
    res = resources(sqlite_catalog, web)
    keys = register(instance, [pid])
    run_images(instance, res, keys)
    rows = sqlite_catalog.images(pid)
    if broken == "format":
        from PIL import Image

        Image.new("RGB", (800, 800), "white").save(store_root() / str(rows[1].storage_key), "PNG")
    else:
        import sqlalchemy as sa

        from ml_images.catalog.models import ProductImage

        with sqlite_catalog.session_factory() as session, session.begin():
            session.execute(sa.update(ProductImage).where(ProductImage.id == rows[1].id).values(order=5))

    from dagster import AssetSelection, materialize

    from ml_images.dagster_defs.checks import stored_images_are_valid
    from ml_images_tests.dagster_defs.helpers import fast_product_images, range_tags

    result = materialize(
        [fast_product_images, stored_images_are_valid],
        selection=AssetSelection.checks(stored_images_are_valid),
        instance=instance,
        resources=res,
        tags=range_tags(keys),
    )

    check = _check(result)
    assert not check.passed
    [row] = check.metadata["results"].value.records
    expected = "PNG, not JPEG" if broken == "format" else "order is [0, 5]"
    assert expected in row.data["problems"]


def test_the_api_key_never_reaches_the_event_log(sqlite_catalog: Catalog, web: ImageWeb, instance: DagsterInstance):
    stored = sqlite_catalog.add_product("ZX5900")
    web.add("ZX5900", 1)
    res = resources(sqlite_catalog, web)
    run_images(instance, res, register(instance, [stored]))
    web.search_status = 503
    failing = sqlite_catalog.add_product("ZX5901")
    run_images(instance, res, register(instance, [failing]), raise_on_error=False)

    runs = instance.get_runs()
    records = [serialize_value(run) for run in runs]
    records += [serialize_value(entry) for run in runs for entry in instance.all_logs(run.run_id)]
    assert len(records) > 20
    assert not [r for r in records if API_KEY in r]
