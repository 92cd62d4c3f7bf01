"""S3ImageStore against a real S3 API server (moto in server mode on 127.0.0.1)."""

from __future__ import annotations

import boto3
import pytest
import requests
from botocore.config import Config

from ml_images.errors import StorageUnavailableError
from ml_images.settings import Settings
from ml_images.storage.base import ImageStore
from ml_images.storage.factory import build_image_store
from ml_images.storage.s3 import DEFAULT_CACHE_CONTROL, S3ImageStore

KEY = "products/SKU-1/0-0123456789ab.jpg"
ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"


@pytest.fixture
def s3_client(s3_endpoint: dict[str, str]):
    return boto3.client("s3", endpoint_url=s3_endpoint["endpoint_url"], region_name=s3_endpoint["region"])


@pytest.fixture
def store(s3_client, s3_endpoint: dict[str, str]) -> S3ImageStore:
    return S3ImageStore(s3_client, s3_endpoint["bucket"], endpoint_url=s3_endpoint["endpoint_url"])


def grantees(s3_client, bucket: str, key: str) -> set[str]:
    grants = s3_client.get_object_acl(Bucket=bucket, Key=key)["Grants"]
    return {g["Grantee"].get("URI") or g["Grantee"].get("ID", "") for g in grants}


def test_put_get_exists_delete(store: S3ImageStore, s3_endpoint, jpeg_bytes: bytes):
    assert isinstance(store, ImageStore)
    assert not store.exists(KEY)
    url = store.put(KEY, jpeg_bytes)
    assert url == f"{s3_endpoint['endpoint_url']}/{s3_endpoint['bucket']}/{KEY}"
    assert store.exists(KEY)
    assert store.get(KEY) == jpeg_bytes
    store.delete([KEY, "products/SKU-1/7-ffffffffffff.jpg"])  # missing keys are ignored
    assert not store.exists(KEY)
    with pytest.raises(KeyError):
        store.get(KEY)
    store.delete([])


def test_objects_carry_content_type_cache_control_and_no_public_acl(store, s3_client, s3_endpoint, jpeg_bytes):
    store.put(KEY, jpeg_bytes)
    head = s3_client.head_object(Bucket=s3_endpoint["bucket"], Key=KEY)
    assert head["ContentType"] == "image/jpeg"
    assert head["CacheControl"] == DEFAULT_CACHE_CONTROL == "public, max-age=31536000, immutable"
    assert ALL_USERS not in grantees(s3_client, s3_endpoint["bucket"], KEY)
    assert requests.get(store.url_for(KEY), timeout=5).status_code == 403  # private: no anonymous read


def test_configured_acl_is_applied(s3_client, s3_endpoint, jpeg_bytes):
    store = S3ImageStore(s3_client, s3_endpoint["bucket"], acl="public-read", cache_control="max-age=60")
    store.put(KEY, jpeg_bytes)
    assert ALL_USERS in grantees(s3_client, s3_endpoint["bucket"], KEY)
    url = f"{s3_endpoint['endpoint_url']}/{s3_endpoint['bucket']}/{KEY}"
    assert requests.get(url, timeout=5).content == jpeg_bytes  # the recorded URL form serves it anonymously
    assert s3_client.head_object(Bucket=s3_endpoint["bucket"], Key=KEY)["CacheControl"] == "max-age=60"


def test_delete_many_objects_in_batches(store, s3_client, s3_endpoint):
    keys = [f"products/SKU-2/{i}-{i:012x}.jpg" for i in range(1005)]  # more than one DeleteObjects call
    for key in keys[:3] + keys[-3:]:
        store.put(key, b"x")
    store.delete(keys)
    assert s3_client.list_objects_v2(Bucket=s3_endpoint["bucket"]).get("KeyCount", 0) == 0


def test_url_forms(s3_client):
    key = "products/a/0-0123456789ab.jpg"
    assert (
        S3ImageStore(s3_client, "shop-images", region="sa-east-1").url_for(key)
        == f"https://shop-images.s3.sa-east-1.amazonaws.com/{key}"
    )
    assert (
        S3ImageStore(s3_client, "shop", public_base_url="https://cdn.example.com/").url_for(key)
        == f"https://cdn.example.com/{key}"
    )
    with_endpoint = S3ImageStore(s3_client, "shop", endpoint_url="https://user:secret@minio.example.com:9000/")
    assert with_endpoint.url_for(key) == f"https://minio.example.com:9000/shop/{key}"
    assert "secret" not in with_endpoint.describe()


def test_missing_bucket_is_storage_unavailable(s3_client, s3_endpoint):
    store = S3ImageStore(s3_client, "no-such-bucket-here", endpoint_url=s3_endpoint["endpoint_url"])
    with pytest.raises(StorageUnavailableError, match="NoSuchBucket"):
        store.put(KEY, b"x")


def test_unreachable_endpoint_is_storage_unavailable_without_credentials(closed_port, monkeypatch):
    secret = "SuperSecretKey-do-not-leak"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEKEYID")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    endpoint = f"http://127.0.0.1:{closed_port}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=2, read_timeout=2),
    )
    store = S3ImageStore(client, "bucket", endpoint_url=endpoint)
    for action in (lambda: store.put(KEY, b"x"), lambda: store.get(KEY), lambda: store.exists(KEY)):
        with pytest.raises(StorageUnavailableError) as info:
            action()
        assert secret not in str(info.value)
        assert "AKIAEXAMPLEKEYID" not in str(info.value)
        assert "s3://bucket" in str(info.value)
    with pytest.raises(StorageUnavailableError):
        store.delete([KEY])


def test_factory_builds_s3_through_dagster_aws_honouring_the_endpoint(s3_endpoint, jpeg_bytes):
    settings = Settings.from_env(
        {
            "ML_IMAGES_HOME": "/tmp/unused",
            "AWS_STORAGE_BUCKET_NAME": s3_endpoint["bucket"],
            "AWS_ENDPOINT_URL": s3_endpoint["endpoint_url"],
            "AWS_S3_REGION_NAME": s3_endpoint["region"],
            "ML_IMAGES_PUBLIC_BASE_URL": "https://cdn.example.com",
        }
    )
    store = build_image_store(settings)
    assert isinstance(store, S3ImageStore)
    assert store.put(KEY, jpeg_bytes) == f"https://cdn.example.com/{KEY}"
    assert store.get(KEY) == jpeg_bytes
    assert s3_endpoint["bucket"] in store.describe()


def test_factory_applies_the_acl_from_the_environment(s3_client, s3_endpoint, jpeg_bytes):
    settings = Settings.from_env(
        {
            "ML_IMAGES_HOME": "/tmp/unused",
            "AWS_STORAGE_BUCKET_NAME": s3_endpoint["bucket"],
            "AWS_ENDPOINT_URL": s3_endpoint["endpoint_url"],
            "AWS_S3_REGION_NAME": s3_endpoint["region"],
            "ML_IMAGES_S3_ACL": "public-read",
        }
    )
    build_image_store(settings).put(KEY, jpeg_bytes)
    assert ALL_USERS in grantees(s3_client, s3_endpoint["bucket"], KEY)


def test_factory_s3_with_an_unreachable_endpoint_fails_as_unavailable(closed_port, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    settings = Settings.from_env(
        {"AWS_STORAGE_BUCKET_NAME": "bucket", "AWS_ENDPOINT_URL": f"http://127.0.0.1:{closed_port}"}
    )
    with pytest.raises(StorageUnavailableError, match="EndpointConnectionError"):
        build_image_store(settings).put(KEY, b"x")
