"""An S3 endpoint that accepts connections and never answers fails an image batch within 60 s, as
``storage_unavailable``: every product stays pending, none goes to ERROR (issue 10.9: it took 254 s for 3 products
with botocore's default 60 s timeouts).

Real parts: the code location's own ``image_store`` resource (``default_resources()``, configured from the
environment as the UI and the daemon configure it), a silent TCP server on 127.0.0.1 as the endpoint, the search
and image web on 127.0.0.1, the real rembg model. One attempt of the step is timed (no retry policy), with the
default timeouts.
"""

from __future__ import annotations

import time

import pytest
from dagster import DagsterEventType, DagsterInstance, RetryPolicy, materialize

from ml_images.defs.assets.images import build_product_images_asset
from ml_images.defs.resources import default_resources
from ml_images_tests.defs.helpers import range_tags, register, resources
from ml_images_tests.pipeline.builders import pending_ids
from ml_images_tests.pipeline.support import Catalog, ImageWeb
from ml_images_tests.storage.blackhole import silent_server

pytestmark = pytest.mark.slow

no_retry_product_images = build_product_images_asset(RetryPolicy(max_retries=0))


def test_a_silent_s3_endpoint_fails_the_batch_within_60_s_and_leaves_products_pending(
    sqlite_catalog: Catalog, web: ImageWeb, instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch
):
    ids = [sqlite_catalog.add_product(f"ZX81{i:02d}") for i in range(3)]
    for i in range(3):
        web.add(f"ZX81{i:02d}", 2)
    keys = register(instance, ids)
    with silent_server() as s3:
        for name, value in {
            "AWS_STORAGE_BUCKET_NAME": "images",
            "AWS_ENDPOINT_URL": s3.endpoint,
            "AWS_S3_REGION_NAME": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }.items():
            monkeypatch.setenv(name, value)
        res = {**resources(sqlite_catalog, web), "image_store": default_resources()["image_store"]}

        started = time.monotonic()
        result = materialize(
            [no_retry_product_images],
            instance=instance,
            resources=res,
            tags=range_tags(keys),
            raise_on_error=False,
        )
        elapsed = time.monotonic() - started
        connections = s3.connections

    assert not result.success
    assert elapsed < 60, elapsed
    assert connections >= 3  # the uploads did reach the endpoint (and were retried) before giving up
    [failure] = [e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE]
    user_failure = failure.step_failure_data.user_failure_data
    assert user_failure is not None, failure.step_failure_data.error
    description = str(user_failure.description)
    assert description.startswith("storage_unavailable (StorageUnavailableError: S3 put s3://images/"), description
    assert "ReadTimeoutError" in description
    assert sorted(pending_ids(sqlite_catalog)) == sorted(ids)
    assert all(sqlite_catalog.listing(pid) is None for pid in ids)
    assert sqlite_catalog.image_count() == 0
    reasons = {a.reason_code for pid in ids for a in sqlite_catalog.attempts(pid)}
    assert reasons <= {"storage_unavailable", "batch_aborted"}
    assert "storage_unavailable" in reasons
