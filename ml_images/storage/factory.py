"""Choose the image store from the settings: S3 when a bucket is configured, else a local folder."""

from __future__ import annotations

from typing import Any

from ml_images.settings import Settings
from ml_images.storage.base import ImageStore
from ml_images.storage.local import LocalImageStore
from ml_images.storage.s3 import S3ImageStore

S3_MAX_ATTEMPTS = 3  # botocore "standard" retries: a blip is retried, a dead endpoint fails within seconds


def build_s3_client(settings: Settings) -> Any:
    """A boto3 S3 client built by dagster-aws's ``S3Resource`` (the same one the Dagster resource uses), honouring
    ``AWS_ENDPOINT_URL`` and ``AWS_S3_REGION_NAME``; credentials come from boto3's usual chain."""
    from dagster_aws.s3 import S3Resource

    resource = S3Resource(
        region_name=settings.s3_region,
        endpoint_url=settings.aws_endpoint_url,
        max_attempts=S3_MAX_ATTEMPTS,
    )
    return resource.get_client()


def build_image_store(settings: Settings, *, s3_client: Any = None) -> ImageStore:
    if settings.bucket:
        client = s3_client if s3_client is not None else build_s3_client(settings)
        return S3ImageStore(
            client,
            settings.bucket,
            public_base_url=settings.public_base_url,
            acl=settings.s3_acl,
            region=settings.s3_region,
            endpoint_url=settings.aws_endpoint_url,
        )
    return LocalImageStore(settings.home / "images", public_base_url=settings.public_base_url)
