"""The cover gate inside the pipeline, with real parts: catalog (SQLite and PostgreSQL), HTTP search + images on
127.0.0.1, the real rembg model and OCR, a local store.

Strict policy: no compliant cover → nothing stored, ``no_compliant_cover``, listing ERROR with the failed checks.
Lenient: stored and flagged. The model runs spent on covers are bounded; every stored image carries its checks.
"""

from __future__ import annotations

import io

import pytest
import sqlalchemy as sa
from PIL import Image

from demo import labelled_pictures as lp
from ml_images.catalog.models import ImageDetail, ListingStatus
from ml_images.catalog.recorder import IMAGE_ERROR_PREFIX
from ml_images.orchestration.metadata import product_metadata
from ml_images.outcomes import ProductStatus
from ml_images.processing.processor import ImageProcessorService
from ml_images_tests.pipeline.builders import make_pipeline, pending_ids
from ml_images_tests.pipeline.support import Catalog, ImageWeb, files_under
from ml_images_tests.processing.cover_images import CountingRemover, printed_box


def jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=92)
    return out.getvalue()


@pytest.fixture(scope="module")
def pictures() -> dict[str, bytes]:
    """Generated candidates with a known verdict (``demo.labelled_pictures``)."""
    cup_wood = lp.photo_on("cup", "wood", seed=2)
    return {
        "good_wood": jpeg(cup_wood.image),  # the model's cut-out passes
        "cut_wood": jpeg(lp.truncated(cup_wood, side="right").image),  # cover_truncated
        "cut_wood_left": jpeg(lp.truncated(lp.photo_on("retina", "wood", seed=8), side="left").image),
        "cut_brick": jpeg(lp.truncated(lp.photo_on("print", "brick", seed=9), side="bottom").image),
        "banner": jpeg(lp.with_banner(lp.photo_on("print", "white", seed=4), across_object=True).image),  # cover_text
        "other_model": jpeg(printed_box(("ACME", "ZX1999")).image),  # wrong_product for the Acme ZX1701
    }


def detail_rows(catalog: Catalog, product_id: int) -> list[ImageDetail]:
    with catalog.session_factory() as session:
        query = sa.select(ImageDetail).where(ImageDetail.product_id == product_id)
        return sorted(session.scalars(query), key=lambda d: d.product_image_id)


def test_strict_no_compliant_cover_sets_the_listing_to_error_with_the_failed_checks(
    catalog: Catalog, web: ImageWeb, remover, image_root, pictures
):
    pid = catalog.add_product("ZX1501")
    web.add("ZX1501", [pictures["cut_wood"], pictures["banner"]])
    pipeline = make_pipeline(catalog, web, remover, root=image_root)

    report = pipeline.process_product(pid, "run-1")

    assert (report.status, report.reason_code) == (ProductStatus.NO_IMAGES, "no_compliant_cover")
    assert report.cover_status == "no_compliant_cover"
    assert not report.cover_flagged
    reason = str(report.reason)
    assert "cover_truncated" in reason
    assert "cover_text" in reason
    assert "zx1501-0.jpg: cover_truncated" in reason  # per candidate, with the measured values
    assert report.refusal_counts() == {"cover_truncated": 1, "cover_text": 1}
    listing = catalog.listing(pid)
    assert listing is not None
    assert listing.status == ListingStatus.ERROR
    assert str(listing.sync_error).startswith(IMAGE_ERROR_PREFIX + "no candidate passes Mercado Libre's cover rules")
    assert "cover_text" in str(listing.sync_error)
    assert catalog.images(pid) == []
    assert files_under(image_root) == []
    [attempt] = catalog.attempts(pid)
    assert (attempt.outcome, attempt.reason_code) == (ProductStatus.NO_IMAGES.value, "no_compliant_cover")
    cover = attempt.cover_report
    assert cover is not None
    assert (cover["policy"], cover["status"], cover["flagged"]) == ("strict", "no_compliant_cover", False)
    assert cover["model_runs"] == 1  # the banner picture is on white: flood fill, no model
    # Studio candidates are tried first.
    assert [a["failed"] for a in cover["attempts"]] == [["cover_text"], ["cover_truncated"]]
    assert cover["attempts"][0]["checks"]["text"]["text_share"] > 0
    assert cover["attempts"][1]["checks"]["truncated_edges"] == ["right"]
    assert pending_ids(catalog) == []  # cooling down like no_usable_image


def test_lenient_stores_the_pictures_and_flags_the_attempt(
    catalog: Catalog, web: ImageWeb, remover, image_root, pictures
):
    pid = catalog.add_product("ZX1502")
    web.add("ZX1502", [pictures["cut_wood"], pictures["banner"]])
    processor = ImageProcessorService(remover, cover_policy="lenient")
    pipeline = make_pipeline(catalog, web, remover, root=image_root, processor=processor)

    report = pipeline.process_product(pid, "run-1")

    assert report.status is ProductStatus.STORED
    assert (report.reason_code, report.cover_status, report.cover_flagged) == (
        "no_compliant_cover",
        "no_compliant_cover",
        True,
    )
    assert "lenient" in str(report.reason)
    rows = catalog.images(pid)
    assert len(rows) == 2
    assert catalog.listing(pid) is None  # no ERROR: the pictures are there, the attempt says what is wrong
    [attempt] = catalog.attempts(pid)
    assert (attempt.outcome, attempt.reason_code, attempt.images_stored) == ("stored", "no_compliant_cover", 2)
    assert attempt.cover_report is not None
    assert (attempt.cover_report["policy"], attempt.cover_report["flagged"]) == ("lenient", True)
    details = detail_rows(catalog, pid)
    assert [d.cover_compliant for d in details] == [False, False]  # both judged as cover, both failed
    assert all(d.checks is not None and d.checks["cover"]["failed"] for d in details)
    summaries = [image.check_summary() for image in report.images]
    assert all(s["cover_compliant"] is False and s["failed"] for s in summaries)
    metadata = product_metadata(report)
    assert metadata["cover_flagged"] is True
    assert "✗ cover_" in metadata["image_checks"].value


def test_cover_attempts_bound_the_model_runs(catalog: Catalog, web: ImageWeb, remover, image_root, pictures):
    pid = catalog.add_product("ZX1503")
    web.add("ZX1503", [pictures["cut_wood"], pictures["cut_wood_left"], pictures["cut_brick"]])
    counting = CountingRemover(remover)
    processor = ImageProcessorService(counting, cover_attempts=2)
    pipeline = make_pipeline(catalog, web, counting, root=image_root, processor=processor)

    report = pipeline.process_product(pid, "run-1")

    assert (report.status, report.reason_code) == (ProductStatus.NO_IMAGES, "no_compliant_cover")
    assert counting.runs == 2
    [attempt] = catalog.attempts(pid)
    assert attempt.cover_report is not None
    assert attempt.cover_report["model_runs"] == 2
    assert len(attempt.cover_report["attempts"]) == 2
    assert "2 tried, 2 model runs" in str(report.reason)


def test_a_compliant_cover_and_every_stored_image_carry_their_checks(
    catalog: Catalog, web: ImageWeb, remover, image_root, pictures
):
    pid = catalog.add_product("ZX1504")
    web.add("ZX1504", [pictures["cut_wood"], pictures["good_wood"]])
    pipeline = make_pipeline(catalog, web, remover, root=image_root)

    report = pipeline.process_product(pid, "run-1")

    assert report.status is ProductStatus.STORED
    assert (report.reason_code, report.cover_status, report.cover_flagged) == (None, "compliant", False)
    cover, gallery = report.images
    assert cover.source_url.endswith("zx1504-1.jpg")  # the first candidate failed, the second passed
    assert (cover.background_method, cover.cover_compliant) == ("u2netp", True)
    assert (gallery.background_method, gallery.cover_compliant) == (None, False)
    rows = catalog.images(pid)
    details = detail_rows(catalog, pid)
    assert [d.product_image_id for d in details] == [r.id for r in rows]
    first, second = details
    assert (first.background_method, first.cover_compliant) == ("u2netp", True)
    assert first.quality_score is not None
    assert second.quality_score is not None
    assert first.quality_score > second.quality_score
    assert first.checks is not None
    assert second.checks is not None
    assert first.checks["cover"]["passed"] is True
    assert first.checks["cover"]["mask"]["objects"] == 1
    assert second.checks["cover"]["failed"] == ["cover_truncated"]
    summary = cover.check_summary()
    assert summary["failed"] == []
    assert summary["white_border_share"] == 1.0
    assert summary["text_share"] == 0.0
    assert 0.8 < summary["fill"] <= 0.92
    assert summary["mask"]["objects"] == 1
    [attempt] = catalog.attempts(pid)
    assert attempt.reason_code is None
    assert attempt.cover_report is not None
    assert attempt.cover_report["status"] == "compliant"
    assert [a["passed"] for a in attempt.cover_report["attempts"]] == [False, True]
    metadata = product_metadata(report)
    assert metadata["cover_status"] == "compliant"
    table = metadata["image_checks"].value
    assert "| 0 | u2netp |" in table
    assert "✓ passes" in table
    assert "✗ cover_truncated" in table
    assert [item["order"] for item in metadata["image_checks_json"].value] == [0, 1]


def test_the_products_identity_refuses_a_picture_of_another_model(
    catalog: Catalog, web: ImageWeb, remover, image_root, pictures
):
    pid = catalog.add_product("ZX1701")  # brand Acme (specs), model ZX1701
    web.add("ZX1701", [pictures["other_model"], pictures["good_wood"]])
    pipeline = make_pipeline(catalog, web, remover, root=image_root)

    report = pipeline.process_product(pid, "run-1")

    assert report.status is ProductStatus.STORED
    assert [image.source_url.rsplit("/", 1)[-1] for image in report.images] == ["zx1701-1.jpg"]
    assert [(r.reason, str(r.url).rsplit("/", 1)[-1]) for r in report.refusals] == [("wrong_product", "zx1701-0.jpg")]
    [attempt] = catalog.attempts(pid)
    assert attempt.cover_report is not None
    product = attempt.cover_report["attempts"][0]["checks"]["product"]
    assert product["other_model"] == "zx1999"


def test_lenient_with_nothing_usable_is_no_usable_image(catalog: Catalog, web: ImageWeb, remover, image_root, pictures):
    # Both candidates name another model of the brand: refused whatever the policy, so nothing is left to keep.
    pid = catalog.add_product("ZX1702")
    web.add("ZX1702", [pictures["other_model"], jpeg(printed_box(("ACME", "ZX1888")).image)])
    processor = ImageProcessorService(remover, cover_policy="lenient")
    pipeline = make_pipeline(catalog, web, remover, root=image_root, processor=processor)

    report = pipeline.process_product(pid, "run-1")

    assert (report.status, report.reason_code) == (ProductStatus.NO_IMAGES, "no_usable_image")
    assert report.refusal_counts() == {"wrong_product": 2}
    [attempt] = catalog.attempts(pid)
    assert attempt.cover_report is not None
    assert attempt.cover_report["policy"] == "lenient"
    assert [a["failed"] for a in attempt.cover_report["attempts"]] == [["wrong_product"], ["wrong_product"]]
