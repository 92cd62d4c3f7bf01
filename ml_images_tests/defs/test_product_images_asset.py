"""``product_images`` through ``materialize()`` with real resources: local servers, moto S3, SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import io
import re
import socket
from typing import Any

import boto3
import pytest
from dagster import AssetKey, AssetPartitionStatus, DagsterEventType, DagsterInstance
from dagster._serdes import serialize_value
from PIL import Image

from ml_images.catalog.models import ListingStatus
from ml_images.defs.resources import BackgroundRemoverResource, CatalogDatabaseResource
from ml_images.orchestration.partitions import PRODUCTS_PARTITIONS_NAME, products_partitions
from ml_images.orchestration.pictures import THUMBNAIL_SIDE
from ml_images_tests.defs.helpers import (
    observed_partition_metadata,
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


def _embedded(markdown: str) -> list[bytes]:
    """The JPEGs embedded in a markdown entry (``![alt](data:image/jpeg;base64,...)``)."""
    found = re.findall(r"\]\(data:image/jpeg;base64,([A-Za-z0-9+/=]+)\)", markdown)
    assert found, markdown[:200]
    return [base64.b64decode(data) for data in found]


def test_a_range_run_stores_pictures_with_thumbnails_and_names_each_product(
    catalog: Catalog, web: ImageWeb, instance: DagsterInstance
):
    ids = [catalog.add_product(f"ZX500{i}", code=f"SKU-50{i}") for i in range(2)]
    web.add("ZX5000", 2)
    web.add("ZX5001", 1)
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
    assert (stored["product_code"], stored["product_description"]) == ("SKU-500", "Monitor Acme ZX5000 24 pulgadas")
    assert stored["search_query"] == "Acme ZX5000 MONITOR"
    assert stored["image_urls"] == [row.url for row in catalog.images(ids[0])]
    cover, second = stored["image_1_cover"], stored["image_2"]
    assert cover.startswith("![cover of SKU-500](data:image/jpeg;base64,")
    assert cover.endswith(") **cover**")
    assert second.startswith("![image 2 of SKU-500](data:image/jpeg;base64,")
    assert "**cover**" not in second
    for entry in (cover, second):
        assert len(entry) < 1000  # Dagster renders shorter markdown in place (longer: behind "Show Markdown")
        with Image.open(io.BytesIO(_embedded(entry)[0])) as preview:
            assert preview.format == "JPEG"
            assert 32 <= max(preview.size) <= 64
    thumbnails = stored["thumbnails"]
    assert thumbnails.index("**1. cover** ![cover of SKU-500](data:") < thumbnails.index("**2.** ![image 2 of")
    assert "size: 1200×1200  \nbackground: removed  \nsource: http://127.0.0.1:" in thumbnails
    for jpeg in _embedded(thumbnails):
        with Image.open(io.BytesIO(jpeg)) as thumbnail:
            assert thumbnail.format == "JPEG"
            assert max(thumbnail.size) == THUMBNAIL_SIDE
        assert len(jpeg) < 8_000  # a few KB
    assert stored["full_image_links"].startswith("none (local store: set ML_IMAGES_PUBLIC_BASE_URL")
    assert [(r.data["order"], r.data["cover"]) for r in stored["images"].records] == [(0, True), (1, False)]
    run_table = [
        (r.data["product_id"], r.data["code"], r.data["outcome"], r.data["images"])
        for r in stored["run_products"].records
    ]
    assert run_table == [(ids[0], "SKU-500", "stored", 2), (ids[1], "SKU-501", "stored", 1)]
    assert all(m["batch_products"] == 2 and m["batch_stored"] == 2 for m in metadata.values())
    check = _check(result)
    assert check.passed
    assert check.metadata["products_checked"].value == 2
    assert check.metadata["images_checked"].value == 3


def test_products_without_pictures_fail_their_partitions_and_are_not_retried(
    catalog: Catalog, web: ImageWeb, instance: DagsterInstance
):
    ids = [catalog.add_product(f"ZX502{i}", code=f"SKU-52{i}") for i in range(3)]
    web.add("ZX5020", 2)
    web.add("ZX5022", 1)  # ZX5021: the search finds nothing
    res = resources(catalog, web)
    keys = register(instance, ids)

    result = run_images(instance, res, keys, raise_on_error=False)

    assert not result.success
    assert _retries(result) == 0  # the products' outcome, not a fault: the RetryPolicy does not apply
    description = _failure_description(result)
    assert description.startswith(f"1 of 3 products got no pictures: {ids[1]} SKU-521 (no_search_results)")
    metadata = partition_metadata(result, instance)
    assert sorted(metadata) == sorted([keys[0], keys[2]])  # the product without pictures is not materialised
    observed = observed_partition_metadata(result, instance)  # its page still says what happened
    assert list(observed) == [keys[1]]
    assert (observed[keys[1]]["status"], observed[keys[1]]["reason_code"]) == ("no_images", "no_search_results")
    assert observed[keys[1]]["product_code"] == "SKU-521"
    assert metadata[keys[0]]["image_1_cover"].startswith("![cover of SKU-520](data:image/jpeg;base64,")
    assert "product_code" in metadata[keys[0]]
    outcomes = {
        r.data["code"]: (r.data["outcome"], r.data["reason"]) for r in metadata[keys[2]]["run_products"].records
    }
    assert outcomes["SKU-521"][0] == "no_images"
    assert outcomes["SKU-521"][1].startswith("no_search_results: ")
    assert outcomes["SKU-522"] == ("stored", "")
    listing = catalog.listing(ids[1])
    assert listing is not None
    assert listing.status == ListingStatus.ERROR
    assert [a.outcome for a in catalog.attempts(ids[1])] == ["no_images"]
    assert result.get_asset_check_evaluations() == []  # the check step is skipped after the failed step
    status = instance.get_status_by_partition(AssetKey("product_images"), keys, products_partitions)
    assert status == {
        keys[0]: AssetPartitionStatus.MATERIALIZED,
        keys[1]: AssetPartitionStatus.FAILED,
        keys[2]: AssetPartitionStatus.MATERIALIZED,
    }


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

    from ml_images.defs.checks import stored_images_are_valid
    from ml_images_tests.defs.helpers import fast_product_images, range_tags

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
