"""Celery settings of an ``ml-images worker`` (dagster-celery's app imports this module by name when present).

The broker and backend URLs come from the settings registry here, in the worker, so no credential is written to a
file. The task settings match the executor's (``ml_images.defs.executor.CELERY_APP_SETTINGS``).
"""

from ml_images.defs.executor import CELERY_APP_SETTINGS, DEFAULT_BACKEND
from ml_images.settings import current_settings

_settings = current_settings()  # `ml-images worker` validated it before starting Celery
broker_url = _settings.celery_broker_url
result_backend = _settings.celery_backend_url or DEFAULT_BACKEND
task_acks_late = CELERY_APP_SETTINGS["task_acks_late"]
task_reject_on_worker_lost = CELERY_APP_SETTINGS["task_reject_on_worker_lost"]
worker_prefetch_multiplier = CELERY_APP_SETTINGS["worker_prefetch_multiplier"]
