"""S3 (or any S3-compatible store: MinIO, R2, ...) through a boto3 client, usually dagster-aws's ``S3Resource``.

Objects are written with ``ContentType: image/jpeg`` and a long, immutable Cache-Control (keys carry the content
hash, so an object never changes under its key), and without an ACL unless one is configured: modern buckets have
ACLs disabled and serve public files through a bucket policy or a CDN.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from botocore.exceptions import BotoCoreError, ClientError

from ml_images.errors import StorageUnavailableError
from ml_images.storage.keys import validate_key

log = logging.getLogger(__name__)

DEFAULT_CACHE_CONTROL = "public, max-age=31536000, immutable"
_DELETE_BATCH = 1000  # DeleteObjects accepts at most 1000 keys
_NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound"})
_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")


def _strip_userinfo(url: str) -> str:
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url.rstrip("/")
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)).rstrip("/")


def _describe_error(exc: Exception) -> str:
    """A short, credential-free description: the S3 error code, or botocore's exception class."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return f"{error.get('Code', 'error')} (HTTP {status})"
    return _USERINFO.sub("***@", f"{type(exc).__name__}: {exc}")[:300]


class S3ImageStore:
    def __init__(
        self,
        client: Any,
        bucket: str,
        *,
        public_base_url: str | None = None,
        cache_control: str = DEFAULT_CACHE_CONTROL,
        acl: str | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
    ) -> None:
        if not bucket:
            raise ValueError("bucket must be set")
        self.client = client
        self.bucket = bucket
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None
        self.cache_control = cache_control
        self.acl = acl
        self.region = region or getattr(getattr(client, "meta", None), "region_name", None) or "us-east-1"
        self.endpoint_url = _strip_userinfo(endpoint_url) if endpoint_url else None

    def __repr__(self) -> str:
        return f"S3ImageStore({self.describe()})"

    def _fail(self, action: str, key: str | None, exc: Exception) -> StorageUnavailableError:
        where = f"s3://{self.bucket}/{key}" if key else f"s3://{self.bucket}"
        return StorageUnavailableError(f"S3 {action} {where} failed: {_describe_error(exc)}")

    def put(self, key: str, data: bytes, content_type: str = "image/jpeg") -> str:
        validate_key(key)
        extra: dict[str, Any] = {"ContentType": content_type, "CacheControl": self.cache_control}
        if self.acl:
            extra["ACL"] = self.acl
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data, **extra)
        except (BotoCoreError, ClientError) as exc:
            raise self._fail("put", key, exc) from exc
        return self.url_for(key)

    def get(self, key: str) -> bytes:
        """The object's bytes; ``KeyError`` when it does not exist."""
        validate_key(key)
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
            body: bytes = response["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _NOT_FOUND:
                raise KeyError(key) from exc
            raise self._fail("get", key, exc) from exc
        except BotoCoreError as exc:
            raise self._fail("get", key, exc) from exc
        return body

    def delete(self, keys: Iterable[str]) -> None:
        batch = [validate_key(k) for k in keys]
        for start in range(0, len(batch), _DELETE_BATCH):
            chunk = batch[start : start + _DELETE_BATCH]
            try:
                response = self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True}
                )
            except (BotoCoreError, ClientError) as exc:
                raise self._fail("delete", None, exc) from exc
            errors = [e for e in response.get("Errors", []) if e.get("Code") not in _NOT_FOUND]
            if errors:
                first = errors[0]
                raise StorageUnavailableError(
                    f"S3 delete in s3://{self.bucket} failed for {len(errors)} object(s), first "
                    f"{first.get('Key')}: {first.get('Code')}"
                )

    def exists(self, key: str) -> bool:
        validate_key(key)
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _NOT_FOUND:
                return False
            raise self._fail("head", key, exc) from exc
        except BotoCoreError as exc:
            raise self._fail("head", key, exc) from exc
        return True

    def url_for(self, key: str) -> str:
        path = quote(validate_key(key))
        if self.public_base_url:
            return f"{self.public_base_url}/{path}"
        if self.endpoint_url:
            return f"{self.endpoint_url}/{self.bucket}/{path}"
        return f"https://{self.bucket}.s3.{self.region}.amazonaws.com/{path}"

    def describe(self) -> str:
        where = f" at {self.endpoint_url}" if self.endpoint_url else f" ({self.region})"
        return f"s3://{self.bucket}{where}"
