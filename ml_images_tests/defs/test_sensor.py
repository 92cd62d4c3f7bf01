"""``new_eligible_products_sensor`` with ``build_sensor_context``: new products, cooldown, in flight, batches."""

from __future__ import annotations

import json

import pytest
from dagster import (
    AddDynamicPartitionsRequest,
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    SensorResult,
    build_sensor_context,
)
from dagster._core.test_utils import create_run_for_test

from ml_images.catalog.recorder import ImageRecorder
from ml_images.defs.jobs import PRODUCT_IMAGES_JOB
from ml_images.defs.resources import CatalogDatabaseResource
from ml_images.defs.sensors.new_products import build_new_eligible_products_sensor
from ml_images.orchestration.config import SensorSettings
from ml_images.orchestration.partitions import PRODUCTS_PARTITIONS_NAME, run_partition_keys
from ml_images.orchestration.run_holders import holder_tags
from ml_images.outcomes import AttemptStats
from ml_images_tests.defs.helpers import observed_partition_metadata, partition_metadata, resources, run_images
from ml_images_tests.holders import exited_process
from ml_images_tests.pipeline.support import Catalog, ImageWeb


def _tick(sensor, instance: DagsterInstance, catalog: Catalog, cursor: str | None = None) -> SensorResult:
    context = build_sensor_context(
        instance=instance, cursor=cursor, resources={"catalog": CatalogDatabaseResource(database_url=catalog.url)}
    )
    result = sensor(context)
    assert isinstance(result, SensorResult)
    return result


def _runs(result: SensorResult) -> list[RunRequest]:
    return list(result.run_requests or [])


def _adds(result: SensorResult) -> list[AddDynamicPartitionsRequest]:
    return [r for r in result.dynamic_partitions_requests or [] if isinstance(r, AddDynamicPartitionsRequest)]


def _apply(instance: DagsterInstance, result: SensorResult) -> None:
    """What the daemon does with the tick's partition requests before it launches the runs."""
    for request in _adds(result):
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))


def _batches(instance: DagsterInstance, result: SensorResult) -> list[list[str]]:
    return [run_partition_keys(r.tags, instance) or [] for r in _runs(result)]


def test_the_sensor_is_running_by_default():
    new_eligible_products_sensor = build_new_eligible_products_sensor(SensorSettings())
    assert new_eligible_products_sensor.default_status == DefaultSensorStatus.RUNNING
    assert new_eligible_products_sensor.minimum_interval_seconds == 60
    assert new_eligible_products_sensor.job_name == PRODUCT_IMAGES_JOB


def test_new_products_are_registered_and_requested_in_batches(sqlite_catalog: Catalog, instance: DagsterInstance):
    ids = [sqlite_catalog.add_product(f"ZX60{i:02d}") for i in range(5)]
    sensor = build_new_eligible_products_sensor(SensorSettings(batch_size=2))

    result = _tick(sensor, instance, sqlite_catalog)

    [add] = _adds(result)
    assert add.partitions_def_name == PRODUCTS_PARTITIONS_NAME
    assert list(add.partition_keys) == [str(i) for i in ids]
    assert [dict(r.tags) for r in _runs(result)] == [
        {"dagster/asset_partition_range_start": str(ids[0]), "dagster/asset_partition_range_end": str(ids[1])},
        {"dagster/asset_partition_range_start": str(ids[2]), "dagster/asset_partition_range_end": str(ids[3])},
        {"dagster/partition": str(ids[4])},
    ]
    run_keys = [r.run_key for r in _runs(result)]
    assert len(set(run_keys)) == 3
    assert not any(key == str(pid) for key in run_keys for pid in ids)
    _apply(instance, result)
    assert _batches(instance, result) == [[str(ids[0]), str(ids[1])], [str(ids[2]), str(ids[3])], [str(ids[4])]]

    # The next tick does not ask again for products already requested (their runs may still be queued) ...
    second = _tick(sensor, instance, sqlite_catalog, result.cursor)
    assert _runs(second) == []
    assert second.skip_reason is not None
    # ... but a new product is requested on its own, with a run key of its own.
    newcomer = sqlite_catalog.add_product("ZX6099")
    third = _tick(sensor, instance, sqlite_catalog, second.cursor)
    assert [dict(r.tags) for r in _runs(third)] == [{"dagster/partition": str(newcomer)}]
    assert _runs(third)[0].run_key not in run_keys


def test_requested_products_come_back_after_the_ttl(sqlite_catalog: Catalog, instance: DagsterInstance):
    pid = sqlite_catalog.add_product("ZX6100")
    sensor = build_new_eligible_products_sensor(SensorSettings(requested_ttl_hours=1.0))
    first = _tick(sensor, instance, sqlite_catalog)
    assert len(_runs(first)) == 1
    _apply(instance, first)
    cursor = json.loads(first.cursor or "{}")
    # An hour and a bit later the product is still pending (its run failed, say): it is requested again.
    cursor["requested"] = {k: v - 3700 for k, v in cursor["requested"].items()}

    again = _tick(sensor, instance, sqlite_catalog, json.dumps(cursor))

    assert [dict(r.tags) for r in _runs(again)] == [{"dagster/partition": str(pid)}]
    assert _adds(again) == []  # already registered
    assert _runs(again)[0].run_key != _runs(first)[0].run_key


def test_cooling_down_and_in_flight_products_are_left_out(sqlite_catalog: Catalog, instance: DagsterInstance):
    fresh = sqlite_catalog.add_product("ZX6200")
    cooling = sqlite_catalog.add_product("ZX6201")
    in_flight = sqlite_catalog.add_product("ZX6202")
    recorder = ImageRecorder(sqlite_catalog.session_factory)
    claim = recorder.claim(cooling, "earlier-run")
    assert claim is not None
    recorder.record_no_images(
        claim, "no_search_results", "nothing found", stats=AttemptStats(search_calls=1, candidates_found=0, refusals=())
    )
    assert recorder.claim(in_flight, "running-run") is not None

    result = _tick(build_new_eligible_products_sensor(SensorSettings()), instance, sqlite_catalog)

    assert [dict(r.tags) for r in _runs(result)] == [{"dagster/partition": str(fresh)}]


def test_no_new_runs_while_enough_image_runs_are_active(sqlite_catalog: Catalog, instance: DagsterInstance):
    sqlite_catalog.add_product("ZX6300")
    for status in (DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTED):
        create_run_for_test(instance, job_name=PRODUCT_IMAGES_JOB, status=status)
    sensor = build_new_eligible_products_sensor(SensorSettings(max_active_runs=2))

    result = _tick(sensor, instance, sqlite_catalog)

    assert _runs(result) == []
    assert "2 image runs queued or running" in str(result.skip_reason)


def test_a_run_whose_fetch_process_died_is_failed_and_not_counted(sqlite_catalog: Catalog, instance: DagsterInstance):
    sqlite_catalog.add_product("ZX6310")
    # `ml-images fetch` tags its in-process runs with its process; this one was killed (SIGKILL): still STARTED.
    killed = create_run_for_test(
        instance, job_name=PRODUCT_IMAGES_JOB, status=DagsterRunStatus.STARTED, tags=holder_tags(exited_process())
    )
    alive = create_run_for_test(
        instance, job_name=PRODUCT_IMAGES_JOB, status=DagsterRunStatus.STARTED, tags=holder_tags()
    )
    launched = create_run_for_test(instance, job_name=PRODUCT_IMAGES_JOB, status=DagsterRunStatus.STARTED)
    sensor = build_new_eligible_products_sensor(SensorSettings(max_active_runs=3))

    result = _tick(sensor, instance, sqlite_catalog)

    assert len(_runs(result)) == 1  # the dead run no longer holds one of the three slots
    statuses = {run.run_id: run.status for run in instance.get_runs()}
    assert statuses[killed.run_id] == DagsterRunStatus.FAILURE
    assert statuses[alive.run_id] == DagsterRunStatus.STARTED  # this process is alive
    assert statuses[launched.run_id] == DagsterRunStatus.STARTED  # no process tags: run monitoring's business


def test_budget_per_tick_and_free_run_slots(sqlite_catalog: Catalog, instance: DagsterInstance):
    ids = [sqlite_catalog.add_product(f"ZX64{i:02d}") for i in range(7)]
    create_run_for_test(instance, job_name=PRODUCT_IMAGES_JOB, status=DagsterRunStatus.STARTED)
    sensor = build_new_eligible_products_sensor(
        SensorSettings(batch_size=2, max_products_per_tick=10, max_active_runs=3)
    )

    result = _tick(sensor, instance, sqlite_catalog)

    # Two free run slots: two runs of two products; the other three wait for a later tick.
    _apply(instance, result)
    assert _batches(instance, result) == [[str(ids[0]), str(ids[1])], [str(ids[2]), str(ids[3])]]
    assert list(_adds(result)[0].partition_keys) == [str(i) for i in ids[:4]]


def test_already_registered_keys_are_batched_by_their_position(sqlite_catalog: Catalog, instance: DagsterInstance):
    ids = [sqlite_catalog.add_product(f"ZX65{i:02d}") for i in range(4)]
    # Registered earlier in another order, with an unrelated product in between.
    instance.add_dynamic_partitions(PRODUCTS_PARTITIONS_NAME, [str(ids[2]), "888888", str(ids[0]), str(ids[1])])
    sensor = build_new_eligible_products_sensor(SensorSettings(batch_size=25))

    result = _tick(sensor, instance, sqlite_catalog)

    _apply(instance, result)
    batches = _batches(instance, result)
    assert batches == [[str(ids[2])], [str(ids[0]), str(ids[1])], [str(ids[3])]]
    assert all("888888" not in batch for batch in batches)


def test_a_requested_range_is_exactly_the_batch_inside_the_run(
    sqlite_catalog: Catalog, web: ImageWeb, instance: DagsterInstance
):
    # The search finds nothing: quick runs, whose products all end up as failed partitions with an observation.
    ids = [sqlite_catalog.add_product(f"ZX66{i:02d}") for i in range(3)]
    sensor = build_new_eligible_products_sensor(SensorSettings(batch_size=2))
    result = _tick(sensor, instance, sqlite_catalog)
    _apply(instance, result)
    instance.add_dynamic_partitions(PRODUCTS_PARTITIONS_NAME, ["777777"])  # registered later: outside every range

    seen = []
    for request in _runs(result):
        keys = run_partition_keys(request.tags, instance) or []
        run = run_images(instance, resources(sqlite_catalog, web), keys, raise_on_error=False)
        assert not run.success
        assert partition_metadata(run, instance) == {}
        seen.append(sorted(observed_partition_metadata(run, instance)))
    assert seen == [sorted([str(ids[0]), str(ids[1])]), [str(ids[2])]]


def test_a_tick_never_reads_every_registered_key(
    sqlite_catalog: Catalog, instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch
):
    for i in range(30):
        sqlite_catalog.add_product(f"ZX67{i:02d}")
    instance.add_dynamic_partitions(PRODUCTS_PARTITIONS_NAME, [f"9{i:06d}" for i in range(20_000)])
    sensor = build_new_eligible_products_sensor(SensorSettings())

    def every_key(*_: object, **__: object) -> None:
        raise AssertionError("the sensor read every registered partition key")

    with monkeypatch.context() as patch:
        patch.setattr(type(instance), "get_dynamic_partitions", every_key)
        result = _tick(sensor, instance, sqlite_catalog)

    assert sum(len(b) for b in _batches_after_apply(instance, result)) == 30


def test_a_registered_product_older_than_the_window_gets_a_run_of_its_own(
    sqlite_catalog: Catalog, instance: DagsterInstance
):
    old = [sqlite_catalog.add_product(f"ZX68{i:02d}") for i in range(2)]
    recent = [sqlite_catalog.add_product(f"ZX69{i:02d}") for i in range(2)]
    limits = SensorSettings(batch_size=25, max_products_per_tick=5)  # reads back the last 4 × 5 keys
    instance.add_dynamic_partitions(PRODUCTS_PARTITIONS_NAME, [str(old[0]), str(old[1])])
    instance.add_dynamic_partitions(PRODUCTS_PARTITIONS_NAME, [f"8{i:05d}" for i in range(100)])
    instance.add_dynamic_partitions(PRODUCTS_PARTITIONS_NAME, [str(recent[0]), str(recent[1])])

    result = _tick(build_new_eligible_products_sensor(limits), instance, sqlite_catalog)

    _apply(instance, result)
    assert not _adds(result)  # nothing new to register
    # The recent ones are consecutive in the window: one range; the old ones' neighbours are unknown: one run each.
    assert _batches(instance, result) == [[str(recent[0]), str(recent[1])], [str(old[0])], [str(old[1])]]


def _batches_after_apply(instance: DagsterInstance, result: SensorResult) -> list[list[str]]:
    _apply(instance, result)
    return _batches(instance, result)
