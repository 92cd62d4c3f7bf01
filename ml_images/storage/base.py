"""The image store interface: S3 (or S3-compatible) in production, a local folder on the embedded default."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, runtime_checkable


@runtime_checkable
class ImageStore(Protocol):
    """Stores JPEG objects under keys like ``products/{id}-{code slug}/{order}-{hash prefix}.jpg`` (see ``keys``).

    Implementations raise ``ml_images.errors.StorageUnavailableError`` for infrastructure faults.
    """

    def put(self, key: str, data: bytes, content_type: str = "image/jpeg") -> str:
        """Write the object and return the public URL to record in ``product_image.url``."""
        ...

    def get(self, key: str) -> bytes:
        """Read an object back (asset checks, tests)."""
        ...

    def delete(self, keys: Iterable[str]) -> None:
        """Delete objects; keys that do not exist are ignored."""
        ...

    def exists(self, key: str) -> bool: ...

    def url_for(self, key: str) -> str: ...

    def describe(self) -> str:
        """Where objects go, for logs and metadata (never includes credentials)."""
        ...
