"""The S3 client has connect and read timeouts (issue 10.9): an endpoint that never answers fails a call within
seconds, as ``StorageUnavailableError``, instead of botocore's 60 s per attempt."""

from __future__ import annotations

import time

import pytest
from dagster_aws.s3 import S3Resource

from ml_images.defs.resources import ImageStoreResource, default_resources, image_store_s3_resource
from ml_images.errors import ConfigurationError, StorageUnavailableError
from ml_images.settings import Settings
from ml_images.storage.factory import S3_MAX_ATTEMPTS, build_image_store, build_s3_client
from ml_images_tests.storage.blackhole import silent_server, unaccepting_server

KEY = "products/1/0-0123456789ab.jpg"


@pytest.fixture(autouse=True)
def _dummy_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


def _settings(endpoint: str, **env: str) -> Settings:
    return Settings.from_env({"AWS_STORAGE_BUCKET_NAME": "bucket", "AWS_ENDPOINT_URL": endpoint, **env})


def test_the_client_carries_the_timeouts_and_one_attempts_constant() -> None:
    client = build_s3_client(_settings("http://127.0.0.1:9"))
    assert (client.meta.config.connect_timeout, client.meta.config.read_timeout) == (5.0, 10.0)
    # Three attempts in all, the first included (botocore's plain "max_attempts" would count retries only).
    assert S3_MAX_ATTEMPTS == 3
    assert client.meta.config.retries == {"total_max_attempts": 3, "mode": "standard"}
    tuned = build_s3_client(
        _settings(
            "http://127.0.0.1:9",
            ML_IMAGES_S3_CONNECT_TIMEOUT_SECONDS="2.5",
            ML_IMAGES_S3_READ_TIMEOUT_SECONDS="30",
        )
    )
    assert (tuned.meta.config.connect_timeout, tuned.meta.config.read_timeout) == (2.5, 30.0)
    # The code location's resource and the CLI's default use the same constant.
    s3 = default_resources()["image_store"].s3  # type: ignore[attr-defined]
    assert s3.max_attempts == image_store_s3_resource().max_attempts == S3_MAX_ATTEMPTS


def test_the_resource_builds_its_client_with_the_timeouts_and_its_own_fields() -> None:
    resource = ImageStoreResource(
        bucket="bucket", s3=S3Resource(endpoint_url="http://127.0.0.1:9", region_name="sa-east-1", max_attempts=2)
    )
    store = resource.build_store(Settings.from_env({}))
    client = store.client  # type: ignore[attr-defined]
    assert client.meta.region_name == "sa-east-1"
    assert client.meta.endpoint_url == "http://127.0.0.1:9"
    assert client.meta.config.read_timeout == 10.0
    assert client.meta.config.retries["total_max_attempts"] == 2


@pytest.mark.slow
def test_an_endpoint_that_never_answers_fails_on_the_read_timeout() -> None:
    with silent_server() as server:
        store = build_image_store(_settings(server.endpoint, ML_IMAGES_S3_READ_TIMEOUT_SECONDS="1"))
        started = time.monotonic()
        with pytest.raises(StorageUnavailableError, match="ReadTimeoutError"):
            store.put(KEY, b"\xff\xd8\xff" + b"x" * 100_000)
        elapsed = time.monotonic() - started
        assert server.connections == S3_MAX_ATTEMPTS  # each attempt gives up on its connection and opens a new one
    # 3 attempts × 1 s, plus the standard mode's jittered backoff (< 1 s, then < 2 s); botocore's own default
    # read timeout alone is 60 s per attempt.
    assert elapsed < 10, elapsed


@pytest.mark.slow
def test_an_endpoint_that_never_accepts_fails_on_the_connect_timeout() -> None:
    with unaccepting_server() as endpoint:
        store = build_image_store(_settings(endpoint, ML_IMAGES_S3_CONNECT_TIMEOUT_SECONDS="1"))
        started = time.monotonic()
        with pytest.raises(StorageUnavailableError, match="ConnectTimeoutError"):
            store.exists(KEY)
        elapsed = time.monotonic() - started
    assert elapsed < 10, elapsed


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"AWS_ENDPOINT_URL": "not a url user:s3cret@host"}, "AWS_ENDPOINT_URL is not a valid URL"),
        ({"AWS_S3_REGION_NAME": "not a region!"}, "InvalidRegionError"),
    ],
)
def test_an_s3_configuration_that_cannot_build_a_client_is_a_configuration_error(
    env: dict[str, str], fragment: str
) -> None:
    with pytest.raises(ConfigurationError, match=fragment) as info:
        build_image_store(Settings.from_env({"AWS_STORAGE_BUCKET_NAME": "bucket", **env}))
    assert "s3cret" not in str(info.value)
