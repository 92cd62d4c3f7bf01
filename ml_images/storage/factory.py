"""Choose the image store from the settings: S3 when a bucket is configured, else a local folder.

The S3 client is built here, from dagster-aws's ``S3Resource`` fields (the Dagster resource stays the holder of the
S3 configuration the UI shows), because ``S3Resource.get_client()`` takes no timeouts: botocore's defaults (60 s
connect, 60 s read, per attempt) let an endpoint that accepts and never answers hold a batch for minutes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ml_images.errors import ConfigurationError
from ml_images.settings import Settings
from ml_images.storage.base import ImageStore
from ml_images.storage.local import LocalImageStore
from ml_images.storage.s3 import S3ImageStore

if TYPE_CHECKING:
    from dagster_aws.s3 import S3Resource

#: Attempts per S3 call, the first included (botocore "standard" retries): a blip is retried, a dead endpoint is
#: given up on. ``S3Resource.max_attempts`` is documented with this meaning, but dagster-aws hands it to botocore's
#: ``max_attempts``, which counts retries after the first call (one more attempt than asked); the client built
#: here passes it as ``total_max_attempts``.
S3_MAX_ATTEMPTS = 3


def s3_client_config(settings: Settings, *, max_attempts: int = S3_MAX_ATTEMPTS, unsigned: bool = False) -> Any:
    """Timeouts and retries of every S3 client of the project.

    Worst case for one call against a silent endpoint: ``max_attempts`` × (connect or read timeout) plus the
    standard mode's jittered backoff (under 1 s, then under 2 s): 3 × 10 s + 3 s = 33 s with the defaults.
    """
    from botocore import UNSIGNED
    from botocore.config import Config

    return Config(
        connect_timeout=settings.s3_connect_timeout,
        read_timeout=settings.s3_read_timeout,
        retries={"total_max_attempts": max_attempts, "mode": "standard"},
        **({"signature_version": UNSIGNED} if unsigned else {}),
    )


def build_s3_client(settings: Settings, resource: S3Resource | None = None) -> Any:
    """A boto3 S3 client with the project's timeouts, configured by ``resource`` (an ``S3Resource``; by default
    one built from ``AWS_S3_REGION_NAME`` and ``AWS_ENDPOINT_URL``). Credentials come from the resource when it
    names them, else from boto3's usual chain. ``settings`` wins for the region and endpoint (it already carries
    the resource's values when the Dagster resource resolved them)."""
    import boto3
    from botocore.exceptions import BotoCoreError

    if resource is None:
        from dagster_aws.s3 import S3Resource

        resource = S3Resource(
            region_name=settings.s3_region, endpoint_url=settings.aws_endpoint_url, max_attempts=S3_MAX_ATTEMPTS
        )
    try:
        session = boto3.session.Session(profile_name=resource.profile_name)
        return session.client(
            "s3",
            region_name=settings.s3_region or resource.region_name,
            endpoint_url=settings.aws_endpoint_url or resource.endpoint_url,
            use_ssl=resource.use_ssl,
            verify=resource.verify,
            aws_access_key_id=resource.aws_access_key_id,
            aws_secret_access_key=resource.aws_secret_access_key,
            aws_session_token=resource.aws_session_token,
            config=s3_client_config(
                settings, max_attempts=resource.max_attempts, unsigned=resource.use_unsigned_session
            ),
        )
    except BotoCoreError as exc:  # a malformed region, an unknown profile: botocore's message names the value
        raise ConfigurationError(f"the S3 client cannot be built: {type(exc).__name__}: {exc}"[:400]) from None
    except ValueError:  # botocore's "Invalid endpoint: <url>" would repeat a URL that may hold credentials
        raise ConfigurationError(
            "the S3 client cannot be built: AWS_ENDPOINT_URL is not a valid URL (the value is not shown: it may "
            "hold credentials)"
        ) from None


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
