"""``ml-images worker``: a dagster-celery worker with the project's configuration, in the foreground.

It runs the steps that runs launched with ``ML_IMAGES_EXECUTOR=celery`` send to the broker, on any machine with
the project installed and the same environment (catalog, Dagster instance, S3, broker). It logs each task it
receives and finishes (Celery's own log at INFO), and stops on SIGTERM after its current step (Celery's warm
shutdown); a step whose worker dies goes back to the broker and runs on another worker.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ml_images.orchestration.celery_worker as worker_config
from ml_images.defs.executor import (
    BROKER_ENV,
    CELERY_QUEUE,
    EXECUTOR_ENV,
    ExecutionSettings,
    refuse_unshared_instance,
    refuse_unshared_store,
)
from ml_images.errors import ConfigurationError
from ml_images.settings import Settings

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "worker",
        help="run a Celery worker for ML_IMAGES_EXECUTOR=celery (foreground)",
        description=(__doc__ or "").strip().splitlines()[0],
    )
    parser.add_argument(
        "--name",
        help="node name of this worker (shown in each step's events as NAME@host; default: the host name)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=1,
        help="steps this worker runs at once (default 1: a step already uses every core)",
    )
    parser.set_defaults(handler=worker_command)


def worker_argv(name: str | None, concurrency: int) -> list[str]:
    """The Celery command line of a worker: dagster-celery's app, its queue, one task fetched at a time."""
    if name is not None and not _NAME.match(name):
        raise ConfigurationError(f"--name must be letters, digits, '.', '_' or '-' (at most 64), got {name!r}")
    if concurrency < 1:
        raise ConfigurationError(f"--concurrency must be >= 1, got {concurrency}")
    argv = [sys.executable, "-m", "celery", "-A", "dagster_celery.app", "worker"]
    argv += ["--loglevel", "INFO", "-Q", CELERY_QUEUE, "--prefetch-multiplier", "1"]
    argv += ["--concurrency", str(concurrency), "--without-gossip", "--without-mingle"]
    argv += ["-n", f"{name or 'ml-images'}@%h"]
    return argv


def worker_environment(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` with the folder of ``dagster_celery_config`` first on PYTHONPATH."""
    folder = str(Path(worker_config.__file__).parent)
    out = dict(env)
    out["PYTHONPATH"] = os.pathsep.join(p for p in (folder, env.get("PYTHONPATH", "")) if p)
    return out


def check_worker_configuration(env: Mapping[str, str]) -> ExecutionSettings:
    """What a worker needs before it takes a step: celery selected, a broker, shared storage and instance."""
    settings = ExecutionSettings.from_env(env)
    if not settings.distributed:
        raise ConfigurationError(f"a worker serves {EXECUTOR_ENV}=celery deployments; set it and {BROKER_ENV}")
    refuse_unshared_store(settings, Settings.from_env(env).bucket)
    from dagster import DagsterInstance

    with DagsterInstance.get() as instance:
        refuse_unshared_instance(settings, instance)
    return settings


def worker_command(args: argparse.Namespace) -> int:
    check_worker_configuration(os.environ)
    argv = worker_argv(args.name, args.concurrency)
    print(f"ml-images worker: starting {' '.join(argv[1:])}", file=sys.stderr, flush=True)
    # Replaces this process: signals (SIGTERM for a warm shutdown, SIGKILL) reach Celery directly.
    os.execve(argv[0], argv, worker_environment(os.environ))  # noqa: S606 - a fixed argv, no shell
    return 0  # pragma: no cover - execve does not return
