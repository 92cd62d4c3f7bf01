"""What the Dagster UI can show of a stored image: a thumbnail embedded as a ``data:`` URI, and a link to the full
image when a browser can reach it.

A markdown image pointing at the store itself does not render: a ``file://`` source (local store) is refused by
the browser, and an S3 object is private under the default ACL. A small JPEG embedded in the metadata renders
whatever the store and its ACL (``ml_images_tests/browser/test_ui_facts.py`` checks both facts in Chromium).

Links: the public base URL (``ML_IMAGES_PUBLIC_BASE_URL``) or a public-read S3 ACL give a permanent link; otherwise
a presigned S3 URL, only when ``ML_IMAGES_PRESIGNED_LINK_HOURS`` is set, because a presigned URL carries the
access key id (and, with temporary credentials, the session token) — values this project otherwise keeps out of
every stored record. The local store without a public base URL has no link a browser can follow.
"""

from __future__ import annotations

import base64
import io
import logging
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from ml_images.errors import StorageUnavailableError
from ml_images.storage.base import ImageStore
from ml_images.storage.local import LocalImageStore
from ml_images.storage.s3 import S3ImageStore

log = logging.getLogger(__name__)

THUMBNAIL_SIDE = 160
THUMBNAIL_QUALITY = 70
#: Inline previews, largest first: the first whose ``data:`` URI fits ``PREVIEW_MAX_CHARS`` is used (side, quality).
PREVIEW_STEPS = ((64, 40), (56, 30), (48, 30), (48, 20), (40, 20), (32, 20))
#: Leaves room for the markdown around it below Dagster's 1,000-character limit for in-place markdown.
PREVIEW_MAX_CHARS = 900
PUBLIC_ACLS = frozenset({"public-read", "public-read-write"})


@dataclass(frozen=True)
class FullImageLink:
    url: str
    expires_hours: float | None = None  # None: permanent

    def describe(self) -> str:
        return "permanent link" if self.expires_hours is None else f"link valid {self.expires_hours:g} h"


def thumbnail_jpeg(data: bytes, side: int = THUMBNAIL_SIDE, quality: int = THUMBNAIL_QUALITY) -> bytes:
    """A JPEG at most ``side`` pixels on its longer edge (a few KB for a product on a white canvas)."""
    with Image.open(io.BytesIO(data)) as image:
        image.draft("RGB", (side, side))  # JPEG: decode at a reduced scale, cheaper than a full decode
        small = image.convert("RGB")
        small.thumbnail((side, side))
        out = io.BytesIO()
        small.save(out, "JPEG", quality=quality, optimize=True)
    return out.getvalue()


def data_uri(jpeg: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


class PictureViews:
    """Thumbnails (read back from the store) and full-image links for the metadata of a product."""

    def __init__(self, store: ImageStore, *, presigned_link_hours: float = 0.0) -> None:
        self.store = store
        self.presigned_link_hours = presigned_link_hours

    def pictures(self, storage_key: str) -> tuple[str | None, str | None]:
        """The inline preview and the thumbnail as ``data:`` URIs, from one read of the object; ``(None, None)``
        (logged) when it cannot be read or decoded: the metadata then says so instead of failing the product,
        whose images are stored and recorded already. The preview is ``None`` when even the smallest step does
        not fit ``PREVIEW_MAX_CHARS``."""
        try:
            data = self.store.get(storage_key)
            thumbnail = data_uri(thumbnail_jpeg(data))
            preview = next(
                (
                    uri
                    for side, quality in PREVIEW_STEPS
                    if len(uri := data_uri(thumbnail_jpeg(data, side, quality))) <= PREVIEW_MAX_CHARS
                ),
                None,
            )
        except (StorageUnavailableError, KeyError, OSError, UnidentifiedImageError, ValueError) as exc:
            log.warning("no thumbnail for %s: %s", storage_key, type(exc).__name__)
            return None, None
        return preview, thumbnail

    def link(self, storage_key: str, recorded_url: str) -> FullImageLink | None:
        store = self.store
        if isinstance(store, LocalImageStore):
            return FullImageLink(recorded_url) if store.public_base_url else None
        if isinstance(store, S3ImageStore):
            if store.public_base_url or store.acl in PUBLIC_ACLS:
                return FullImageLink(recorded_url)
            if self.presigned_link_hours > 0:
                url = store.client.generate_presigned_url(
                    "get_object",
                    Params={"Bucket": store.bucket, "Key": storage_key},
                    ExpiresIn=int(self.presigned_link_hours * 3600),
                )
                return FullImageLink(str(url), self.presigned_link_hours)
            return None
        return FullImageLink(recorded_url) if recorded_url.startswith(("http://", "https://")) else None

    def no_link_reason(self) -> str:
        if isinstance(self.store, LocalImageStore):
            return "local store: set ML_IMAGES_PUBLIC_BASE_URL to link the full images"
        return "private objects: set ML_IMAGES_PUBLIC_BASE_URL or ML_IMAGES_PRESIGNED_LINK_HOURS to link them"


def store_kind(bucket: str | None) -> str:
    """The asset kind tag of the image store the code location is configured with (``AWS_STORAGE_BUCKET_NAME``)."""
    return "s3" if bucket else "filesystem"
