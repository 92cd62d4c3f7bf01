"""The demo's distributor photos (issue 13): the sample catalog links thumbnails on the fixture server, the demo's
rewrite rule turns them into the large photos, and the summary and contact sheet say where each picture came from.
Real parts: the fixture server on 127.0.0.1, the catalog loader, the pipeline with rembg, the demo's status code."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import requests
from PIL import Image

from demo import sample_catalog as sc
from demo.contact_sheet import write_contact_sheet
from demo.fixture_server import THUMBNAIL_SIDE, FixtureSearchServer
from demo.runner import DEMO_API_KEY, write_jsonl
from demo.status import collect_status
from demo.summary import format_summary
from ml_images.catalog.loader import CatalogLoader
from ml_images.catalog.product_reader import CatalogProducts
from ml_images.catalog.recorder import ImageRecorder
from ml_images.catalog.rules import parse_publication_rules
from ml_images.catalog.selection import ImageCandidateSelector, MercadoLibreFilter
from ml_images.download.safe_downloader import SafeDownloader
from ml_images.pipeline.candidate_sources import CandidateSources
from ml_images.pipeline.product_pipeline import ProductImagePipeline
from ml_images.processing.background import get_shared_remover
from ml_images.processing.processor import ImageProcessorService
from ml_images.search.distributor import UrlRewrites
from ml_images.search.factory import build_search_service
from ml_images.search.query import QueryConstructor
from ml_images.settings import Settings
from ml_images.storage.local import LocalImageStore
from ml_images_tests.pipeline.support import Catalog
from ml_images_tests.processing.images import product_photo

WITH_PHOTO, BROKEN = sc.by_code("MN-LG-27MP400"), sc.by_code("MN-PHILIPS-221V8")
FORMATS = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}


def test_some_sample_products_have_distributor_thumbnails() -> None:
    with_url = [p for p in sc.PRODUCTS if p.image_url]
    assert len(with_url) >= 3
    assert all(p.image_url and p.image_url.startswith(sc.DISTRIBUTOR_THUMBNAILS) for p in with_url)
    rows = [p.row(datetime.now(UTC)) for p in with_url]
    assert all(row["image_url"] == p.image_url for row, p in zip(rows, with_url, strict=True))


def _photos(folder: Path) -> dict[str, Path]:
    """Product-like photos (the demo renders 3D scenes; processing only needs real pictures) for two products."""
    folder.mkdir()
    paths = {}
    for seed, spec in enumerate(WITH_PHOTO.photos + BROKEN.photos):
        path = folder / spec.filename
        product_photo(720, 720, seed=900 + seed * 7).save(path, FORMATS[spec.format])
        paths[spec.name] = path
    return paths


def test_distributor_photos_flow_into_the_summary_and_contact_sheet(sqlite_url: str, tmp_path: Path) -> None:
    products = (WITH_PHOTO, BROKEN)
    photos = _photos(tmp_path / "photos")
    catalog = Catalog(sqlite_url)
    jsonl = tmp_path / "catalog.jsonl"
    jsonl.write_text(write_jsonl(products, datetime.now(UTC)), encoding="utf-8")
    assert CatalogLoader(catalog.session_factory).load(jsonl).inserted == 2
    names = sc.fixture_catalog_names(products)
    search_catalog = {key: [tmp_path / "photos" / n for n in files] for key, files in names.items()}
    distributor = [tmp_path / "photos" / n for n in sc.distributor_photo_names(products)]

    with FixtureSearchServer(search_catalog, api_key=DEMO_API_KEY, distributor=distributor) as server:
        # The thumbnail address is a small picture; the rewritten address serves the photo itself.
        name = WITH_PHOTO.distributor_photo
        thumb = requests.get(f"{server.base_url}/distributor/sm/{name}", timeout=10)
        with Image.open(io.BytesIO(thumb.content)) as im:
            assert max(im.size) <= THUMBNAIL_SIDE
        large = requests.get(f"{server.base_url}/distributor/lg/{name}", timeout=10)
        assert large.content == (tmp_path / "photos" / str(name)).read_bytes()

        settings = Settings.from_env(
            {
                "ML_IMAGES_SEARCH_ENDPOINT": server.search_endpoint,
                "BRAVE_SEARCH_API_KEY": DEMO_API_KEY,
                "ML_IMAGES_DISTRIBUTOR_URL_REWRITES": sc.distributor_url_rewrites(server.base_url),
                "ML_IMAGES_SEARCH_RATE_LIMIT": "1000",
            }
        )
        assert settings.distributor_url_rewrites == UrlRewrites.parse(sc.distributor_url_rewrites(server.base_url))
        product_filter = MercadoLibreFilter(catalog.session_factory, parse_publication_rules(None))
        pipeline = ProductImagePipeline(
            products=CatalogProducts(catalog.session_factory),
            selector=ImageCandidateSelector(product_filter),
            recorder=ImageRecorder(catalog.session_factory),
            queries=QueryConstructor(),
            search=build_search_service(settings),
            downloader=SafeDownloader(allowed_private_hosts=("127.0.0.1",)),
            processor=ImageProcessorService(get_shared_remover("u2netp")),
            store=LocalImageStore(tmp_path / "images"),
            max_images=3,
            sources=CandidateSources.from_settings(settings),
        )
        ids = [p.id for p in ImageCandidateSelector(product_filter).get_pending_image_products()]
        batch = pipeline.process_batch(ids, "demo-run")
    assert batch.counts()["stored"] == 2, batch.summary()

    statuses = collect_status(
        catalog.session_factory, products, product_filter, photos, {}, store_root=tmp_path / "images"
    )
    lg, philips = statuses
    assert lg.stored[0].source_label == "distributor"
    assert lg.stored[0].source_name == WITH_PHOTO.distributor_photo
    assert all(s.source_label and s.source_label.startswith("search brave #") for s in lg.stored[1:])
    assert philips.stored
    assert all(s.source_label and s.source_label.startswith("search brave #") for s in philips.stored)
    assert [r.reason for r in philips.refusals if "discontinued" in (r.url or "")] == ["http_404"]

    summary = format_summary(
        statuses,
        run_started=datetime(2000, 1, 1, tzinfo=UTC),
        images_dir=tmp_path / "images",
        contact_sheet=None,
        dagster_home=tmp_path,
        fetch_exit_code=0,
    )
    assert "sources: #0 distributor, #1 search brave #" in summary
    html_path, png_path = write_contact_sheet(statuses, tmp_path / "sheet")
    page = html_path.read_text(encoding="utf-8")
    assert '<span class="source">distributor</span>' in page
    assert page.count('<span class="source">search brave #') == len(lg.stored) - 1 + len(philips.stored)
    assert png_path.stat().st_size > 0
    catalog.close()
