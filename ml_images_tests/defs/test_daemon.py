"""The automation path for real: ``dagster-daemon`` over ``workspace.yaml`` ticks the sensor (running by default),
registers the new products, queues one run per batch with its partition range, and the queue runs them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRunStatus

from ml_images.defs.jobs import PRODUCT_IMAGES_JOB
from ml_images.orchestration.partitions import PRODUCTS_PARTITIONS_NAME, run_partition_keys
from ml_images_tests.pipeline.support import Catalog, ImageWeb, web_environment

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
DAEMON = str(Path(sys.executable).with_name("dagster-daemon"))
TIMEOUT_S = 150.0
DONE = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}


def test_the_daemon_runs_the_sensor_and_the_batches(sqlite_catalog: Catalog, web: ImageWeb, tmp_path: Path):
    ids = [sqlite_catalog.add_product(f"ZX96{i:02d}") for i in range(5)]
    for i in range(5):
        web.add(f"ZX96{i:02d}", 1)
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {
        **os.environ,
        **web_environment(web),
        "DAGSTER_HOME": str(dagster_home),
        "ML_IMAGES_DATABASE_URL": sqlite_catalog.url,
        "ML_IMAGES_SENSOR_BATCH_SIZE": "3",
    }
    log = (tmp_path / "daemon.log").open("w")
    daemon = subprocess.Popen(
        [DAEMON, "run", "-w", "workspace.yaml"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            assert daemon.poll() is None, (tmp_path / "daemon.log").read_text()[-3000:]
            with DagsterInstance.from_config(str(dagster_home)) as instance:
                # The image runs only: the coverage sensor adds runs of its own job after them.
                runs = [r for r in instance.get_runs() if r.job_name == PRODUCT_IMAGES_JOB]
                if len(runs) == 2 and all(r.status in DONE for r in runs):
                    batches = sorted(run_partition_keys(r.tags, instance) or [] for r in runs)
                    statuses = {r.status for r in runs}
                    registered = instance.get_dynamic_partitions(PRODUCTS_PARTITIONS_NAME)
                    break
            assert time.monotonic() < deadline, f"runs not done after {TIMEOUT_S:.0f} s: {runs}"
            time.sleep(2.0)
    finally:
        daemon.terminate()
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait(timeout=10)
        log.close()

    keys = [str(i) for i in ids]
    assert registered == keys
    assert batches == [keys[:3], keys[3:]]
    assert statuses == {DagsterRunStatus.SUCCESS}
    assert [len(sqlite_catalog.images(pid)) for pid in ids] == [1, 1, 1, 1, 1]
    assert web.search_calls == 5
