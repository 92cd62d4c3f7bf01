"""The UI's "Materialize all" is bounded: a backfill of ``product_images`` launched the way the UI launches it
(GraphQL ``launchPartitionBackfill`` against ``dagster-webserver``) and carried out by ``dagster-daemon`` becomes
runs of at most ``ML_IMAGES_SENSOR_BATCH_SIZE`` partitions each (``BackfillPolicy.multi_run``), never one giant
run, and every product is processed exactly once."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from ml_images.orchestration.partitions import PRODUCTS_PARTITIONS_NAME, run_partition_keys
from ml_images_tests.pipeline.support import Catalog, ImageWeb, web_environment

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
START_TIMEOUT_S = 90.0
BACKFILL_TIMEOUT_S = 300.0
PRODUCTS = 7
BATCH_SIZE = 3

# The queue runs one run at a time: the test is about how the backfill splits, and the CPU is shared.
INSTANCE_YAML = """
run_queue:
  max_concurrent_runs: 1
telemetry:
  enabled: false
"""

SENSORS_QUERY = """
{
  repositoriesOrError {
    ... on RepositoryConnection { nodes { sensors { name sensorState { id selectorId status } } } }
  }
}
"""

STOP_SENSOR = """
mutation StopSensor($id: String!) {
  stopSensor(id: $id) {
    __typename
    ... on StopSensorMutationResult { instigationState { status } }
    ... on Error { message }
  }
}
"""

# What the UI's launch dialog sends for a partitioned asset: the asset selection and the chosen partitions.
LAUNCH_BACKFILL = """
mutation LaunchPartitionBackfill($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on Error { message }
  }
}
"""

BACKFILL_STATUS = """
query BackfillStatus($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { status numPartitions }
    ... on PythonError { message }
  }
}
"""

BACKFILL_DONE = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


class Server:
    def __init__(self, port: int) -> None:
        self.port = port

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = requests.post(
            f"http://127.0.0.1:{self.port}/graphql", json={"query": query, "variables": variables or {}}, timeout=60
        )
        response.raise_for_status()
        body = response.json()
        assert "errors" not in body, body
        return dict(body["data"])


@pytest.fixture
def environment(tmp_path: Path, web: ImageWeb) -> dict[str, str]:
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text(INSTANCE_YAML)
    return {
        **os.environ,
        **web_environment(web),
        "DAGSTER_HOME": str(dagster_home),
        "ML_IMAGES_DATABASE_URL": f"sqlite:///{Path(os.environ['ML_IMAGES_HOME']) / 'catalog.db'}",
        "ML_IMAGES_SENSOR_BATCH_SIZE": str(BATCH_SIZE),
    }


@pytest.fixture
def webserver(tmp_path: Path, environment: dict[str, str]) -> Iterator[Server]:
    port = _free_port()
    log_path = tmp_path / "webserver.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(BIN / "dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
            cwd=REPO,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while True:
                assert process.poll() is None, f"dagster-webserver exited: {log_path.read_text()[-3000:]}"
                try:
                    if requests.get(f"http://127.0.0.1:{port}/server_info", timeout=2).ok:
                        break
                except requests.RequestException:
                    pass
                assert time.monotonic() < deadline, f"dagster-webserver not up after {START_TIMEOUT_S:.0f} s"
                time.sleep(0.5)
            yield Server(port)
        finally:
            _stop(process)


def test_a_ui_backfill_of_all_partitions_runs_in_batches(
    webserver: Server, environment: dict[str, str], web: ImageWeb, tmp_path: Path
):
    catalog = Catalog(environment["ML_IMAGES_DATABASE_URL"])
    try:
        ids = [catalog.add_product(f"ZX97{i:02d}") for i in range(PRODUCTS)]
        for i in range(PRODUCTS):
            web.add(f"ZX97{i:02d}", 1)
        keys = [str(pid) for pid in ids]
        dagster_home = environment["DAGSTER_HOME"]
        with DagsterInstance.from_config(dagster_home) as instance:
            instance.add_dynamic_partitions(PRODUCTS_PARTITIONS_NAME, keys)

        # The sensors would pick the same products up on their own: stopped from the UI, only the backfill runs.
        [repository] = webserver.graphql(SENSORS_QUERY)["repositoriesOrError"]["nodes"]
        for sensor in repository["sensors"]:
            stopped = webserver.graphql(STOP_SENSOR, {"id": sensor["sensorState"]["id"]})["stopSensor"]
            assert stopped["instigationState"]["status"] == "STOPPED", stopped

        launched = webserver.graphql(
            LAUNCH_BACKFILL,
            {"params": {"assetSelection": [{"path": ["product_images"]}], "partitionNames": keys}},
        )["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched
        backfill_id = launched["backfillId"]

        log_path = tmp_path / "daemon.log"
        with log_path.open("w") as log:
            daemon = subprocess.Popen(
                [str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"],
                cwd=REPO,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                deadline = time.monotonic() + BACKFILL_TIMEOUT_S
                while True:
                    assert daemon.poll() is None, log_path.read_text()[-3000:]
                    backfill = webserver.graphql(BACKFILL_STATUS, {"id": backfill_id})["partitionBackfillOrError"]
                    if backfill.get("status") in BACKFILL_DONE:
                        break
                    assert time.monotonic() < deadline, (
                        f"backfill not done after {BACKFILL_TIMEOUT_S:.0f} s: {backfill}"
                    )
                    time.sleep(2.0)
            finally:
                _stop(daemon)

        with DagsterInstance.from_config(dagster_home) as instance:
            runs = instance.get_runs(RunsFilter(tags={"dagster/backfill": backfill_id}))
            ranges = sorted(
                (run_partition_keys(run.tags, instance) or [] for run in runs), key=lambda r: keys.index(r[0])
            )
            statuses = {run.status for run in runs}
            all_runs = instance.get_runs()

        assert backfill["status"] in {"COMPLETED", "COMPLETED_SUCCESS"}, backfill
        assert len(all_runs) == len(runs) == 3  # nothing but the backfill's runs
        assert ranges == [keys[0:3], keys[3:6], keys[6:7]]
        assert all(len(r) <= BATCH_SIZE for r in ranges)
        assert statuses == {DagsterRunStatus.SUCCESS}
        # Every product processed once: one search each, its one image stored once.
        assert web.search_calls == PRODUCTS
        assert [len(catalog.images(pid)) for pid in ids] == [1] * PRODUCTS
    finally:
        catalog.close()
