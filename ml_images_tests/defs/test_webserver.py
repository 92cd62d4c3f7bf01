"""The UI path: ``dagster-webserver`` over ``workspace.yaml`` lists the assets and the sensor, and runs launched through
its GraphQL API (the ``dagster-graphql`` client) succeed."""

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
from dagster import DagsterInstance, DagsterRunStatus
from dagster_graphql import DagsterGraphQLClient

from ml_images.orchestration.partitions import PRODUCTS_PARTITIONS_NAME
from ml_images_tests.pipeline.support import Catalog, ImageWeb, web_environment

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
WEBSERVER = str(Path(sys.executable).with_name("dagster-webserver"))
START_TIMEOUT_S = 90.0
RUN_TIMEOUT_S = 150.0

# Runs launched from the UI start at once (no daemon in this test): the queue needs `dagster-daemon`.
INSTANCE_YAML = """
run_coordinator:
  module: dagster._core.run_coordinator
  class: DefaultRunCoordinator
telemetry:
  enabled: false
"""

REPOSITORY_QUERY = """
{
  repositoriesOrError {
    ... on RepositoryConnection {
      nodes {
        name
        location { name }
        assetNodes { assetKey { path } groupName isPartitioned }
        sensors { name sensorState { status } }
        jobs { name }
      }
    }
  }
}
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def webserver(tmp_path: Path, web: ImageWeb) -> Iterator[tuple[int, Path]]:
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text(INSTANCE_YAML)
    port = _free_port()
    env = {**os.environ, **web_environment(web), "DAGSTER_HOME": str(dagster_home)}
    log = (tmp_path / "webserver.log").open("w")
    process = subprocess.Popen(
        [WEBSERVER, "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise AssertionError(f"dagster-webserver exited: {(tmp_path / 'webserver.log').read_text()[-3000:]}")
            try:
                if requests.get(f"http://127.0.0.1:{port}/server_info", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"dagster-webserver not up after {START_TIMEOUT_S:.0f} s")
            time.sleep(0.5)
        yield port, dagster_home
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


def _graphql(port: int, query: str) -> dict[str, Any]:
    response = requests.post(f"http://127.0.0.1:{port}/graphql", json={"query": query}, timeout=30)
    response.raise_for_status()
    body = response.json()
    assert "errors" not in body, body
    return dict(body["data"])


def _wait(client: DagsterGraphQLClient, run_id: str) -> DagsterRunStatus:
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        status = client.get_run_status(run_id)
        if status in (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED):
            return status
        time.sleep(1.0)
    raise AssertionError(f"run {run_id} did not finish within {RUN_TIMEOUT_S:.0f} s")


def test_the_ui_lists_the_graph_and_runs_what_it_launches(webserver: tuple[int, Path], web: ImageWeb):
    port, dagster_home = webserver
    catalog = Catalog(f"sqlite:///{Path(os.environ['ML_IMAGES_HOME']) / 'catalog.db'}")
    try:
        pid = catalog.add_product("ZX9900")
        web.add("ZX9900", 1)

        [repository] = _graphql(port, REPOSITORY_QUERY)["repositoriesOrError"]["nodes"]
        assert repository["location"]["name"] == "ml_images"
        assets = {"/".join(node["assetKey"]["path"]): node for node in repository["assetNodes"]}
        assert set(assets) == {"eligible_products", "pending_image_products", "product_images", "image_coverage"}
        assert assets["image_coverage"]["groupName"] == "reports"
        assert assets["product_images"]["isPartitioned"] is True
        assert assets["eligible_products"]["groupName"] == "selection"
        sensors = {s["name"]: s["sensorState"]["status"] for s in repository["sensors"]}
        assert sensors == {"new_eligible_products_sensor": "RUNNING", "image_coverage_sensor": "RUNNING"}
        jobs = {j["name"] for j in repository["jobs"]}
        assert {"fetch_ml_images", "product_images_job", "image_coverage_job"} <= jobs

        client = DagsterGraphQLClient("127.0.0.1", port_number=port)
        selection_run = client.submit_job_execution(
            "fetch_ml_images",
            repository_location_name="ml_images",
            run_config={"ops": {"pending_image_products": {"config": {"dry_run": False}}}},
        )
        assert _wait(client, selection_run) == DagsterRunStatus.SUCCESS
        with DagsterInstance.from_config(str(dagster_home)) as instance:
            assert instance.get_dynamic_partitions(PRODUCTS_PARTITIONS_NAME) == [str(pid)]

        images_run = client.submit_job_execution(
            "product_images_job", repository_location_name="ml_images", tags={"dagster/partition": str(pid)}
        )
        assert _wait(client, images_run) == DagsterRunStatus.SUCCESS
        assert [r.order for r in catalog.images(pid)] == [0]
    finally:
        catalog.close()
