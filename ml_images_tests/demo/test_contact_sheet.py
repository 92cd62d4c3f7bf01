"""Status read-back, contact sheet (HTML + PNG) and summary on a small synthetic catalog database."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from PIL import Image
from sqlalchemy.orm import Session, sessionmaker

from demo import sample_catalog as sc
from demo.contact_sheet import render_html, render_png, write_contact_sheet
from demo.photos import MANIFEST, PhotoSpec, write_photos
from demo.product_models import ProductKind, ProductLook
from demo.runner import write_jsonl
from demo.scenes import Scene, Shot
from demo.status import ProductStatus, collect_status
from demo.summary import format_summary
from ml_images.catalog.loader import CatalogLoader
from ml_images.catalog.models import (
    ImageDetail,
    ImageFetchAttempt,
    ListingStatus,
    MercadoLibreListing,
    ProductImage,
    ProductMaster,
)
from ml_images.catalog.rules import DEFAULT_PUBLICATION_RULES
from ml_images.catalog.selection import MercadoLibreFilter
from ml_images.outcomes import ProductStatus as Outcome
from ml_images.outcomes import Refusal
from ml_images.processing.results import CheckFailure, CoverChecks, MaskFigures, TextFigures

NOW = datetime.now(UTC).replace(microsecond=0)
LOOK = ProductLook(ProductKind.MONITOR, "AOC", wallpaper="rocket")
SERVER = "http://127.0.0.1:45678/images/"


def _photo(name: str, size: tuple[int, int], fmt: str = "jpeg") -> PhotoSpec:
    return PhotoSpec(name, LOOK, Shot(Scene.LOFT, size[0], size[1], seed=5), fmt)


PRODUCTS = (
    sc.DemoProduct(
        "MN-A", "SKU-A", "Monitor AOC 24G2 24 IPS", Decimal("299999.00"), "MONITOR", sc.ELIGIBLE, "24G2",
        (_photo("mn-a-1", (240, 180)), _photo("mn-a-2", (200, 200), "png"), _photo("mn-a-3", (90, 60))),
        specs={"brand": "AOC", "model": "24G2"},
    ),
    sc.DemoProduct(
        "PC-B", "SKU-B", "Mini PC Genérico N100", Decimal("389999.00"), "COMPUTER", sc.NO_RESULTS, None, (),
        specs={"brand": "Genérico", "model": "MiniBox"},
    ),
    sc.DemoProduct(
        "NB-C", "SKU-C", "Notebook HP Pavilion 14", Decimal("999999.00"), "NOTEBOOK", sc.INACTIVE, "Pavilion",
        (_photo("nb-c-1", (240, 180)),), is_active=False,
    ),
)  # fmt: skip


MASK = MaskFigures(
    kept_share=0.3, doubtful_share=0.0, islands_dropped=0, island_share=0.0, holes_filled=0, hole_share=0.0,
    objects=1, second_object_ratio=0.0, fragment_share=0.0, core_share=0.8, box_fill=0.7,
)  # fmt: skip
TRUNCATED_CHECKS = CoverChecks(
    white_border_share=1.0, background_white_share=1.0, fill=0.9, area_fill=0.5, truncated_edges=("right",),
    mask=MASK, text=TextFigures(lines=(), text_share=0.0, off_object_share=0.0, repeated=0, words=(), seconds=0.1),
    product=None, failures=(CheckFailure("cover_truncated", "the object runs into the photo's right edge"),),
)  # fmt: skip


@pytest.fixture
def demo_db(session_factory: sessionmaker[Session], tmp_path: Path):
    """The three products loaded; MN-A stored 2 images (one refusal), PC-B went to ERROR, NB-C untouched."""
    photos_dir = tmp_path / "home" / "demo" / "photos"
    photo_paths = write_photos([s for p in PRODUCTS for s in p.photos], photos_dir, workers=1)
    catalog = tmp_path / "catalog.jsonl"
    catalog.write_text(write_jsonl(PRODUCTS, NOW), encoding="utf-8")
    CatalogLoader(session_factory).load(catalog)
    store = tmp_path / "home" / "images"
    started = NOW + timedelta(seconds=5)
    with session_factory() as session, session.begin():
        ids = {p.code: p.id for p in session.scalars(sa.select(ProductMaster))}
        for order, source in enumerate(("mn-a-1.jpg", "mn-a-2.png")):
            key = f"products/MN-A/{order}-abc{order}.jpg"
            (store / "products" / "MN-A").mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (120, 120), "white").save(store / key, "JPEG")
            image = ProductImage(
                product_id=ids["MN-A"], url=(store / key).as_uri(), order=order, is_processed=True,
                storage_key=key, source_url=SERVER + source, width=1200, height=1200,
                background_removed=order == 0, created_at=started + timedelta(seconds=1),
            )  # fmt: skip
            session.add(image)
            session.flush()
            if order == 1:  # the gallery picture failed as cover (cut off on the right); the main picture has no detail
                session.add(
                    ImageDetail(
                        product_image_id=image.id, product_id=ids["MN-A"], background_method=None,
                        quality_score=0.41, cover_compliant=False,
                        checks={"background_method": None, "cover": TRUNCATED_CHECKS.to_dict()},
                    )
                )  # fmt: skip
        session.add(
            ImageFetchAttempt(
                product_id=ids["MN-A"], started_at=started, finished_at=started + timedelta(seconds=2),
                outcome=Outcome.STORED.value, search_calls=1, candidates_found=3, images_stored=2,
                refusals=[Refusal("search", "too_small", SERVER + "mn-a-3.jpg", "90x60 is under 500 px").to_dict()],
            )
        )  # fmt: skip
        reason = "the search for 'Genérico MiniBox COMPUTER' found no candidates"
        session.add(
            ImageFetchAttempt(
                product_id=ids["PC-B"], started_at=started, finished_at=started + timedelta(seconds=1),
                outcome=Outcome.NO_IMAGES.value, reason_code="no_candidates", reason=reason, search_calls=1,
                refusals=[],
            )
        )  # fmt: skip
        session.add(
            MercadoLibreListing(
                product_master_id=ids["PC-B"], status=ListingStatus.ERROR, sync_error="images: " + reason
            )
        )
    manifest = json.loads((photos_dir / MANIFEST).read_text())
    product_filter = MercadoLibreFilter(session_factory, DEFAULT_PUBLICATION_RULES, 24.0)
    statuses = collect_status(session_factory, PRODUCTS, product_filter, photo_paths, manifest, store_root=store)
    return statuses, tmp_path / "home", started


def test_status_is_read_back_from_the_database(demo_db) -> None:
    statuses, _home, _ = demo_db
    a, b, c = statuses
    assert a.eligible
    assert a.attempt_outcome == "stored"
    assert [(i.order, i.background_removed, i.pre_existing) for i in a.stored] == [(0, True, False), (1, False, False)]
    assert all(i.path is not None and i.path.is_file() for i in a.stored)
    assert [(c_.stored_as, c_.refusal.reason if c_.refusal else None) for c_ in a.candidates] == [
        (0, None), (1, None), (None, "too_small"),
    ]  # fmt: skip
    assert (a.candidates[1].width, a.candidates[1].height, a.candidates[1].format) == (200, 200, "png")
    assert b.eligible
    assert b.listing_status == "ERROR"
    assert b.attempt_outcome == "no_images"
    assert b.sync_error is not None
    assert "found no candidates" in b.sync_error
    assert b.candidates == []
    assert b.stored == []
    assert not c.eligible
    assert c.ineligible_reason == "inactive"
    assert c.attempt_outcome is None


def test_contact_sheet_html_and_png(demo_db) -> None:
    statuses, home, _ = demo_db
    out = home / "demo"
    html_path, png_path = write_contact_sheet(statuses, out)
    assert (html_path.name, png_path.name) == ("contact_sheet.html", "contact_sheet.png")
    page = html_path.read_text(encoding="utf-8")
    for text in ("MN-A", "PC-B", "NB-C", "too_small", "background removed", "listing ERROR", "found no candidates",
                 "not eligible: inactive", "stored as #1", "no candidates: the search returns nothing"):  # fmt: skip
        assert text in page, text
    sources = re.findall(r'src="([^"]+)"', page)
    assert len(sources) == 3 + 2 + 1  # candidates of MN-A, its stored images, the candidate of NB-C
    for src in sources:
        assert not src.startswith(("/", "file:")), src  # relative: the folder can be moved
        assert (out / src).resolve().is_file(), src
    assert "../images/products/MN-A/0-abc0.jpg" in sources
    # The gallery picture's checks, the failed one in red; the main picture (no detail row) says it was not judged.
    assert '<span class="why">✗ cover_truncated</span>' in page
    assert '<span class="why">cut off right</span>' in page
    assert "text 0.00 · white 1.00" in page
    assert "as shot · q 0.41" in page
    assert "not judged as cover" in page
    with Image.open(png_path) as im:
        im.load()
        assert im.format == "PNG"
        assert im.width > 1500
        assert im.height > 3 * 150
    assert render_png(statuses[:1], title="t").height < render_png(statuses, title="t").height
    # A failed check is drawn red under the stored pictures (right of the candidates), and only there on MN-A's row.
    sheet = render_png(statuses[:1], title="t").convert("RGB")
    after_x = 430 + 6 * 158 + 30
    pixels = np.asarray(sheet.crop((after_x, 64 + 12 + 140, sheet.width, sheet.height))).astype(int)
    red = int(np.count_nonzero((pixels[..., 0] > 140) & (pixels[..., 1] < 90) & (pixels[..., 2] < 90)))
    assert red > 20, red


def test_summary_of_a_run(demo_db) -> None:
    statuses, home, started = demo_db
    text = format_summary(
        statuses,
        run_started=started - timedelta(seconds=1),
        images_dir=home / "images",
        contact_sheet=home / "demo" / "contact_sheet.html",
        dagster_home=home / "dagster_home",
        fetch_exit_code=0,
    )
    assert "This run processed 2 products (1 no_images, 1 stored) and stored 2 images." in text
    assert "MN-A" in text
    assert "2 images stored (main picture: background removed); refused: too_small" in text
    assert "Listings set to ERROR:" in text
    assert "images: the search for 'Genérico MiniBox COMPUTER'" in text
    assert "NB-C" in text
    assert "inactive" in text
    assert str(home / "images") in text
    assert "contact_sheet.html" in text
    assert "make dev" in text
    assert "a run failed" not in text


def test_summary_when_nothing_was_pending(demo_db) -> None:
    statuses, home, started = demo_db
    text = format_summary(
        statuses,
        run_started=started + timedelta(minutes=5),
        images_dir=None,
        contact_sheet=None,
        dagster_home=home / "dagster_home",
        fetch_exit_code=1,
    )
    assert "Nothing was pending: this run processed 0 products." in text
    assert "In the catalog: 2 images on 1 product." in text
    assert "ml-images fetch exited with 1" in text


def test_status_of_a_product_missing_from_the_catalog(session_factory: sessionmaker[Session]) -> None:
    product_filter = MercadoLibreFilter(session_factory, DEFAULT_PUBLICATION_RULES, 24.0)
    (status,) = collect_status(session_factory, PRODUCTS[1:2], product_filter, {}, {}, store_root=None)
    assert isinstance(status, ProductStatus)
    assert "not searched (not eligible)" in render_html([status], Path("."), title="t", generated_at=NOW)
    assert (status.product_id, status.eligible, status.ineligible_reason) == (None, False, "not in the catalog")


def test_the_summary_says_how_the_main_pictures_background_was_separated(demo_db) -> None:
    from dataclasses import replace

    from demo.summary import main_picture_note

    statuses, _, _ = demo_db
    main = next(i for s in statuses for i in s.stored if i.order == 0 and not i.pre_existing)
    assert main_picture_note(replace(main, background_method="studio")) == (
        " (main picture: studio shot, background separated without the model)"
    )
    assert main_picture_note(replace(main, background_method="u2netp")) == (
        " (main picture: background removed by u2netp)"
    )
    assert main_picture_note(replace(main, background_method=None, background_removed=False)) == ""
    assert main_picture_note(None) == ""
