"""Which executor runs the steps: in this process (the embedded default) or on Celery workers (dagster-celery).

``ML_IMAGES_EXECUTOR=celery`` sends every step to the broker named by ``ML_IMAGES_CELERY_BROKER_URL`` (e.g. RabbitMQ)
with results in ``ML_IMAGES_CELERY_BACKEND_URL`` (e.g. Redis, default ``rpc://``); ``ml-images worker`` starts a
worker that takes them. The executor reads both URLs from the environment when a run starts (Dagster's ``{"env": ...}``
config source), so they never appear in a run's stored configuration.

Workers on other machines share nothing with the process that launched the run but the broker, the catalog
database, the Dagster instance and the image store: a Celery deployment whose instance storage is SQLite, or whose
images go to the local folder, would lose runs or pictures, and is refused at start-up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dagster import ExecutorDefinition, in_process_executor

from ml_images.errors import ConfigurationError
from ml_images.settings import DEFAULT_CELERY_BACKEND, EXECUTORS, Settings

EXECUTOR_ENV = "ML_IMAGES_EXECUTOR"
BROKER_ENV = "ML_IMAGES_CELERY_BROKER_URL"
BACKEND_ENV = "ML_IMAGES_CELERY_BACKEND_URL"
IN_PROCESS, CELERY = EXECUTORS
DEFAULT_BACKEND = DEFAULT_CELERY_BACKEND
#: The queue dagster-celery routes steps to (its default); workers listen on it.
CELERY_QUEUE = "dagster"

# A step is acknowledged only once it finished, and a worker that dies mid-step hands it back to the broker:
# another worker runs it again (the catalog's claims make that safe, see ml_images.catalog.recorder). One task
# at a time per worker process: a step already runs its products in parallel.
CELERY_APP_SETTINGS: Mapping[str, Any] = {
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    "worker_prefetch_multiplier": 1,
}


@dataclass(frozen=True)
class ExecutionSettings:
    executor: str = IN_PROCESS
    broker_url: str | None = field(default=None, repr=False)
    backend_url: str | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> ExecutionSettings:
        return cls(
            executor=settings.executor, broker_url=settings.celery_broker_url, backend_url=settings.celery_backend_url
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ExecutionSettings:
        """The executor part of ``Settings.from_env(env)`` (validated with everything else)."""
        return cls.from_settings(Settings.from_env(env))

    @property
    def distributed(self) -> bool:
        return self.executor == CELERY


def build_executor(settings: ExecutionSettings) -> ExecutorDefinition:
    """The executor of every job of the code location."""
    if not settings.distributed:
        return in_process_executor
    from dagster_celery import celery_executor

    backend: Any = {"env": BACKEND_ENV} if settings.backend_url else DEFAULT_BACKEND
    return celery_executor.configured(
        {
            "broker": {"env": BROKER_ENV},
            "backend": backend,
            "config_source": dict(CELERY_APP_SETTINGS),
        },
        name="ml_images_celery",
    )


def refuse_unshared_store(settings: ExecutionSettings, bucket: str | None) -> None:
    """A Celery deployment keeps its pictures where every worker and the UI reach them (S3)."""
    if settings.distributed and not bucket:
        raise ConfigurationError(
            f"{EXECUTOR_ENV}=celery needs a shared image store: set AWS_STORAGE_BUCKET_NAME (the local folder "
            "is private to each machine)"
        )


def refuse_unshared_instance(settings: ExecutionSettings, instance: Any) -> None:
    """A Celery deployment keeps its runs and events where every worker writes them (PostgreSQL)."""
    if not settings.distributed:
        return
    storage = type(instance.run_storage).__name__
    if instance.is_ephemeral or storage.lower().startswith("sqlite"):
        raise ConfigurationError(
            f"{EXECUTOR_ENV}=celery needs a Dagster instance every worker shares: its storage is "
            f"{'in memory' if instance.is_ephemeral else 'SQLite'} (see dagster.yaml: storage: postgres)"
        )
