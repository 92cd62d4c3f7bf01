"""What the UI gets of a stored image: previews and thumbnails read back from the store, and full-image links
(public base URL, public-read ACL, presigned S3 URL with its validity, or none) that a browser can follow."""

from __future__ import annotations

import base64
import io
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import requests
from PIL import Image

from ml_images.errors import ConfigurationError
from ml_images.orchestration.pictures import (
    PREVIEW_MAX_CHARS,
    THUMBNAIL_SIDE,
    PictureViews,
)
from ml_images.settings import Settings
from ml_images.storage.local import LocalImageStore
from ml_images.storage.s3 import S3ImageStore

KEY = "products/7-SKU-7/0-abcdef012345.jpg"


def _photo(seed: int = 3) -> bytes:
    """A 1200×1200 product-like JPEG: a textured object on white (what the store holds)."""
    image = Image.new("RGB", (1200, 1200), "white")
    pixels = image.load()
    assert pixels is not None
    for x in range(300, 900):
        for y in range(200, 1000, 2):
            pixels[x, y] = ((x * seed) % 256, (y * 7) % 256, (x + y) % 256)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def _jpeg(uri: str | None) -> Image.Image:
    assert uri is not None
    assert uri.startswith("data:image/jpeg;base64,")
    return Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))


def test_preview_and_thumbnail_from_the_local_store_and_no_link_without_a_public_url(tmp_path: Path):
    store = LocalImageStore(tmp_path)
    url = store.put(KEY, _photo())
    views = PictureViews(store)

    preview, thumbnail = views.pictures(KEY)

    assert preview is not None
    assert len(preview) <= PREVIEW_MAX_CHARS
    with _jpeg(preview) as small:
        assert max(small.size) <= 64
    with _jpeg(thumbnail) as larger:
        assert max(larger.size) == THUMBNAIL_SIDE
    assert views.link(KEY, url) is None  # file:// would not load in a browser
    assert "ML_IMAGES_PUBLIC_BASE_URL" in views.no_link_reason()
    assert views.pictures("products/7-SKU-7/missing.jpg") == (None, None)  # said in the metadata, not raised


def test_public_base_url_gives_a_permanent_link(tmp_path: Path):
    store = LocalImageStore(tmp_path, public_base_url="http://127.0.0.1:8080/media")
    url = store.put(KEY, _photo())

    link = PictureViews(store).link(KEY, url)

    assert link is not None
    assert (link.url, link.expires_hours, link.describe()) == (url, None, "permanent link")
    assert url.startswith("http://127.0.0.1:8080/media/products/")


def _s3_store(s3_endpoint: dict[str, str], **options: str) -> S3ImageStore:
    client = boto3.client("s3", endpoint_url=s3_endpoint["endpoint_url"], region_name=s3_endpoint["region"])
    return S3ImageStore(client, s3_endpoint["bucket"], endpoint_url=s3_endpoint["endpoint_url"], **options)


def test_private_s3_objects_get_a_presigned_link_only_when_asked(s3_endpoint: dict[str, str]):
    store = _s3_store(s3_endpoint)
    data = _photo()
    url = store.put(KEY, data)

    assert PictureViews(store).link(KEY, url) is None  # the default: no credential-bearing URL in metadata
    link = PictureViews(store, presigned_link_hours=24).link(KEY, url)

    assert link is not None
    assert (link.expires_hours, link.describe()) == (24, "link valid 24 h")
    query = parse_qs(urlsplit(link.url).query)
    if "X-Amz-Expires" in query:  # SigV4
        assert query["X-Amz-Expires"] == ["86400"]
    else:  # SigV2 (what botocore picks for this client): an absolute expiry time
        assert abs(int(query["Expires"][0]) - (time.time() + 86400)) < 120
    fetched = requests.get(link.url, timeout=30)  # the moto server honours the signature
    assert fetched.status_code == 200
    assert fetched.content == data
    preview, thumbnail = PictureViews(store).pictures(KEY)  # read back through the client, whatever the ACL
    assert preview is not None
    assert thumbnail is not None


def test_public_read_s3_objects_link_their_recorded_url(s3_endpoint: dict[str, str]):
    store = _s3_store(s3_endpoint, acl="public-read")
    url = store.put(KEY, _photo())

    link = PictureViews(store, presigned_link_hours=24).link(KEY, url)

    assert link is not None
    assert (link.url, link.expires_hours) == (url, None)


@pytest.mark.parametrize(("raw", "hours"), [(None, 0.0), ("", 0.0), ("12", 12.0), ("168", 168.0)])
def test_presigned_link_hours(raw: str | None, hours: float):
    env = {} if raw is None else {"ML_IMAGES_PRESIGNED_LINK_HOURS": raw}
    assert Settings.from_env(env).presigned_link_hours == hours


@pytest.mark.parametrize("raw", ["169", "-1", "a day"])
def test_presigned_link_hours_refuses_bad_values(raw: str):
    with pytest.raises(ConfigurationError, match="ML_IMAGES_PRESIGNED_LINK_HOURS"):
        Settings.from_env({"ML_IMAGES_PRESIGNED_LINK_HOURS": raw})


def test_each_images_facts_name_its_source_and_its_judgement() -> None:
    from ml_images.orchestration.metadata import IMAGE_FACTS, _facts
    from ml_images.pipeline.reports import StoredImage

    image = StoredImage(
        order=0,
        url="https://cdn.example.test/products/7/0.jpg",
        storage_key="products/7/0.jpg",
        source_url="http://127.0.0.1:9/dist/lg/7.jpg",
        width=1200,
        height=1200,
        background_removed=True,
        source_kind="distributor",
        rank_score=73.0,
        background_method="studio",
        quality_score=0.914,
        cover_compliant=False,
        checks={"cover": {"failed": ["cover_text"]}},
    )
    facts = _facts(image, IMAGE_FACTS)
    assert facts["from"] == "distributor"
    assert facts["rank score"] == "73"
    assert (facts["cut-out"], facts["quality"], facts["cover gate"]) == ("studio", "0.91", "fails cover_text")
