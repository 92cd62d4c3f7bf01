"""The shipped ``dagster.yaml``: an instance on PostgreSQL (credentials from the environment) that runs the jobs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from dagster import DagsterInstance
from dagster_shared.yaml_utils import load_yaml_from_path
from sqlalchemy.engine import make_url

from ml_images.orchestration.config import IMAGE_SEARCH_POOL
from ml_images.orchestration.partitions import PRODUCTS_PARTITIONS_NAME
from ml_images_tests.defs.helpers import partition_metadata, resources, run_images, run_selection
from ml_images_tests.pipeline.support import Catalog, ImageWeb

REPO = Path(__file__).resolve().parents[2]


def test_the_config_reads_credentials_from_the_environment_only():
    config = load_yaml_from_path(str(REPO / "dagster.yaml"))
    assert isinstance(config, dict)
    database = config["storage"]["postgres"]["postgres_db"]
    assert database["scheme"] == "postgresql+psycopg2"
    for field in ("username", "password", "hostname", "db_name", "port"):
        assert set(database[field]) == {"env"}, field
    assert config["concurrency"]["pools"]["default_limit"] >= 1
    assert config["telemetry"] == {"enabled": False}


def test_run_monitoring_watches_daemon_launched_runs():
    config = load_yaml_from_path(str(REPO / "dagster.yaml"))
    assert isinstance(config, dict)
    monitoring = config["run_monitoring"]
    assert monitoring["enabled"] is True
    assert monitoring["start_timeout_seconds"] > 0
    assert monitoring["max_runtime_seconds"] > 0
    assert monitoring["max_resume_run_attempts"] == 0  # the default run launcher cannot resume a run
    assert monitoring["free_slots_after_run_end_seconds"] > 0


@pytest.mark.postgres
def test_an_instance_from_dagster_yaml_runs_the_jobs_on_postgres(
    postgres_url: str, sqlite_catalog: Catalog, web: ImageWeb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    url = make_url(postgres_url)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_PG_USERNAME", url.username or "postgres")
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", url.password or "")
    monkeypatch.setenv("DAGSTER_PG_HOST", url.host or "127.0.0.1")
    monkeypatch.setenv("DAGSTER_PG_DB", str(url.database))
    monkeypatch.setenv("DAGSTER_PG_PORT", str(url.port or 5432))
    pid = sqlite_catalog.add_product("ZX9500")
    web.add("ZX9500", 1)
    res = resources(sqlite_catalog, web)

    with DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert instance.run_monitoring_enabled  # the config is valid for this launcher (no resume attempts)
        assert instance.run_monitoring_max_runtime_seconds == 21600
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"

        run_selection(instance, res)
        assert instance.get_dynamic_partitions(PRODUCTS_PARTITIONS_NAME) == [str(pid)]
        result = run_images(instance, res, [str(pid)])

        assert result.success
        assert partition_metadata(result)[str(pid)]["status"] == "stored"
        # The step ran under the image_search_api pool, limited by the config's default.
        assert instance.event_log_storage.get_concurrency_info(IMAGE_SEARCH_POOL).slot_count == 1
        assert {r.status.value for r in instance.get_runs()} == {"SUCCESS"}

    # Another process (a new instance object) sees the same runs and partitions: they live in PostgreSQL.
    with DagsterInstance.from_config(str(home)) as again:
        assert again.get_dynamic_partitions(PRODUCTS_PARTITIONS_NAME) == [str(pid)]
        assert len(again.get_runs()) == 2
