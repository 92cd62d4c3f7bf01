"""The folder of ``dagster_celery_config``: ``ml-images worker`` puts it on the worker's PYTHONPATH."""
