"""Celery settings of an ``ml-images worker`` (dagster-celery's app imports this module by name when present).

The broker and backend URLs are read from the environment here, in the worker, so no credential is written to a
file. The task settings match the executor's (``ml_images.defs.executor.CELERY_APP_SETTINGS``).
"""

import os

from ml_images.defs.executor import BACKEND_ENV, BROKER_ENV, CELERY_APP_SETTINGS, DEFAULT_BACKEND

broker_url = os.environ[BROKER_ENV]
result_backend = os.environ.get(BACKEND_ENV) or DEFAULT_BACKEND
task_acks_late = CELERY_APP_SETTINGS["task_acks_late"]
task_reject_on_worker_lost = CELERY_APP_SETTINGS["task_reject_on_worker_lost"]
worker_prefetch_multiplier = CELERY_APP_SETTINGS["worker_prefetch_multiplier"]
