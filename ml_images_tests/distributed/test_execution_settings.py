"""ML_IMAGES_EXECUTOR and its refusals: the executor by configuration, shared state required for Celery."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import DagsterInstance, in_process_executor

from ml_images.cli.worker_command import check_worker_configuration, worker_argv, worker_environment
from ml_images.defs.executor import (
    CELERY_APP_SETTINGS,
    ExecutionSettings,
    build_executor,
    refuse_unshared_instance,
    refuse_unshared_store,
)
from ml_images.errors import ConfigurationError

BROKER = "amqp://guest:s3cret-pw@127.0.0.1:5672//"
REPO = Path(__file__).resolve().parents[2]


def test_in_process_is_the_default() -> None:
    settings = ExecutionSettings.from_env({})
    assert (settings.executor, settings.distributed) == ("in_process", False)
    assert build_executor(settings) is in_process_executor


def test_celery_needs_a_broker_and_a_known_executor_name() -> None:
    with pytest.raises(ConfigurationError, match="ML_IMAGES_CELERY_BROKER_URL"):
        ExecutionSettings.from_env({"ML_IMAGES_EXECUTOR": "celery"})
    with pytest.raises(ConfigurationError, match="in_process, celery"):
        ExecutionSettings.from_env({"ML_IMAGES_EXECUTOR": "k8s"})


def test_the_celery_executor_reads_its_urls_from_the_environment_never_from_stored_config() -> None:
    settings = ExecutionSettings.from_env(
        {
            "ML_IMAGES_EXECUTOR": "celery",
            "ML_IMAGES_CELERY_BROKER_URL": BROKER,
            "ML_IMAGES_CELERY_BACKEND_URL": "rpc://",
        }
    )
    executor = build_executor(settings)
    assert executor.name == "ml_images_celery"
    assert "s3cret" not in repr(settings)
    assert "s3cret" not in repr(executor.config_schema)


def test_celery_refuses_the_local_image_folder() -> None:
    settings = ExecutionSettings(executor="celery", broker_url=BROKER)
    with pytest.raises(ConfigurationError, match="AWS_STORAGE_BUCKET_NAME"):
        refuse_unshared_store(settings, None)
    refuse_unshared_store(settings, "bucket")
    refuse_unshared_store(ExecutionSettings(), None)  # the embedded default keeps its local folder


def test_celery_refuses_an_sqlite_or_ephemeral_instance(tmp_path: Path) -> None:
    settings = ExecutionSettings(executor="celery", broker_url=BROKER)
    with DagsterInstance.ephemeral() as instance, pytest.raises(ConfigurationError, match="in memory"):
        refuse_unshared_instance(settings, instance)
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with DagsterInstance.from_config(str(tmp_path)) as instance:
        with pytest.raises(ConfigurationError, match="SQLite"):
            refuse_unshared_instance(settings, instance)
        refuse_unshared_instance(ExecutionSettings(), instance)


def test_worker_command_line_and_environment() -> None:
    argv = worker_argv("w1", 1)
    assert argv[:6] == [sys.executable, "-m", "celery", "-A", "dagster_celery.app", "worker"]
    assert argv[argv.index("-n") + 1] == "w1@%h"
    assert argv[argv.index("-Q") + 1] == "dagster"
    with pytest.raises(ConfigurationError, match="--name"):
        worker_argv("w1; rm -rf /", 1)
    env = worker_environment({"PYTHONPATH": "/elsewhere"})
    first = env["PYTHONPATH"].split(os.pathsep)[0]
    assert (Path(first) / "dagster_celery_config.py").is_file()
    assert env["PYTHONPATH"].endswith("/elsewhere")
    assert CELERY_APP_SETTINGS["task_acks_late"] is True


def test_worker_refuses_without_celery_or_with_local_state(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="ML_IMAGES_EXECUTOR=celery"):
        check_worker_configuration({})
    celery = {"ML_IMAGES_EXECUTOR": "celery", "ML_IMAGES_CELERY_BROKER_URL": BROKER}
    with pytest.raises(ConfigurationError, match="AWS_STORAGE_BUCKET_NAME"):
        check_worker_configuration(celery)


def test_a_refused_worker_says_so_in_one_line_without_the_password(tmp_path: Path) -> None:
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {
        **os.environ,
        "ML_IMAGES_EXECUTOR": "celery",
        "ML_IMAGES_CELERY_BROKER_URL": BROKER,
        "AWS_STORAGE_BUCKET_NAME": "bucket",
        "DAGSTER_HOME": str(dagster_home),
    }
    result = subprocess.run(
        [str(Path(sys.executable).with_name("ml-images")), "worker", "--name", "w9"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("ml-images: configuration error: ML_IMAGES_EXECUTOR=celery needs a Dagster instance")
    assert "s3cret" not in result.stdout + result.stderr
