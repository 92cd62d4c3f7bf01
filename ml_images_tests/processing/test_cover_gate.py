"""The cover gate, one rule at a time, on generated covers: the real rembg model, the real OCR.

Each bad cover is a good picture with what sellers add or get wrong (``demo.labelled_pictures``): a text
banner, a diagonal watermark, a badge, the object cut off by the frame, two objects, a haze left by the cut-out.
Text that belongs to the product (the all-in-one's ``lenovo``, a printed box) must not cost a good cover.
"""

from __future__ import annotations

import numpy as np
import pytest

from demo import labelled_pictures as lp
from ml_images.processing.cover_gate import CoverGate, CoverRules, CutoutView
from ml_images.processing.processor import ImageProcessorService
from ml_images.processing.product_match import ProductIdentity
from ml_images.processing.text_detection import get_shared_text_detector
from ml_images_tests.processing.cover_images import as_download, printed_box

CANVAS = 600


@pytest.fixture(scope="module")
def service(remover) -> ImageProcessorService:
    return ImageProcessorService(remover, canvas_size=CANVAS)


@pytest.fixture(scope="module")
def cup_on_white() -> lp.LabelledPicture:
    return lp.photo_on("cup", "white", seed=2)


def judge(service: ImageProcessorService, picture: lp.LabelledPicture, product: ProductIdentity | None = None):
    return service.trial_cover(as_download(picture.image), product=product)


def test_a_good_studio_cover_passes_with_its_figures(service, cup_on_white):
    trial = judge(service, cup_on_white)
    checks = trial.checks
    assert checks.passed, checks.failures
    assert checks.white_border_share == 1.0
    assert checks.background_white_share == 1.0
    assert checks.fill == pytest.approx(0.9, abs=0.02)
    assert 0.3 < checks.area_fill < 0.9
    assert checks.truncated_edges == ()
    assert checks.mask is not None
    assert checks.mask.objects == 1
    assert checks.text is not None
    assert checks.text.lines == ()
    assert trial.image.cover_compliant is True
    assert trial.image.quality_score > 0.8
    as_json = trial.image.checks_dict()
    assert as_json["background_method"] == "studio"
    assert as_json["cover"]["passed"] is True


def test_text_banner_is_cover_text(service):
    picture = lp.with_banner(lp.photo_on("print", "white", seed=4), across_object=True)
    checks = judge(service, picture).checks
    assert "cover_text" in checks.failed_codes
    assert checks.text is not None
    assert any("oferta" in w.lower() for w in checks.text.words) or checks.text.off_object_share > 0
    detail = next(f.detail for f in checks.failures if f.code == "cover_text")
    assert "%" in detail


def test_diagonal_watermark_is_cover_text(service):
    picture = lp.with_watermark(printed_box(()))
    checks = judge(service, picture).checks
    assert "cover_text" in checks.failed_codes
    assert checks.text is not None
    assert checks.text.repeated >= 2
    assert "watermark" in next(f.detail for f in checks.failures if f.code == "cover_text")


def test_badge_on_the_products_corner_is_cover_text(service, cup_on_white):
    checks = judge(service, lp.with_badge(cup_on_white, text="-30%")).checks
    assert "cover_text" in checks.failed_codes
    assert checks.text is not None
    assert any(line.on_object < 0.9 for line in checks.text.lines)


def test_truncated_object_is_cover_truncated(service, cup_on_white):
    checks = judge(service, lp.truncated(cup_on_white, side="right")).checks
    assert "cover_truncated" in checks.failed_codes
    assert checks.truncated_edges == ("right",)


def test_two_objects_are_cover_multiple_objects(service, cup_on_white):
    picture = lp.two_products(cup_on_white, lp.photo_on("retina", "white", seed=1), white=True)
    checks = judge(service, picture).checks
    assert "cover_multiple_objects" in checks.failed_codes
    assert checks.mask is not None
    assert checks.mask.objects == 2
    assert checks.mask.second_object_ratio > 0.5


def test_a_picture_keeping_its_own_backdrop_is_cover_not_white(remover, cup_on_white):
    # Removal rejected (the mask gate wants 90 % of the picture): the beige-wood original stays, no cover.
    service = ImageProcessorService(remover, canvas_size=CANVAS, mask_min_fraction=0.9)
    trial = service.trial_cover(as_download(lp.photo_on("cup", "wood", seed=2).image))
    assert trial.image.removal_rejected
    assert trial.checks.failed_codes == ("cover_not_white",)
    assert trial.checks.white_border_share < 0.1
    assert trial.checks.text is None  # nothing to read on a picture that is all "object"


def test_a_textured_cover_cut_out_by_the_model_passes(service):
    trial = judge(service, lp.photo_on("retina", "brick", seed=3))
    assert trial.image.background_method == "u2netp"
    assert trial.checks.passed, trial.checks.failures


def test_product_text_does_not_cost_a_good_cover(service):
    aio = lp.on_white(lp.render("aio_lenovo", lp.Scene.STUDIO, seed=7), shadow=False)
    checks = judge(service, aio).checks
    assert checks.passed, checks.failures
    assert checks.text is not None
    assert [normalise_word(w) for w in checks.text.words] == ["lenovo"]
    box = judge(service, printed_box(("SAMSUNG", "LF24T350"))).checks
    assert box.passed, box.failures
    assert box.text is not None
    assert len(box.text.lines) == 2


def normalise_word(word: str) -> str:
    return word.strip().lower()


def test_another_model_of_the_brand_is_wrong_product_and_its_own_model_is_named(service):
    picture = printed_box(("SAMSUNG", "LF27T350"))
    identity = ProductIdentity(brand="Samsung", model="LF24T350FHL", sku="LF24T350FHLCZB")
    wrong = judge(service, picture, identity).checks
    assert wrong.failed_codes == ("wrong_product",)
    assert wrong.product is not None
    assert wrong.product.other_model == "lf27t350"
    right = judge(service, picture, ProductIdentity(brand="Samsung", model="LF27T350")).checks
    assert right.passed
    assert right.product is not None
    assert right.product.model_named


def test_text_share_and_repetition_rules_on_measured_lines():
    # The rules themselves, on a blank canvas with an object mask, without the OCR: a large share of text fails.
    gate = CoverGate(CoverRules(), get_shared_text_detector())
    from PIL import Image, ImageDraw

    from demo.textures import font

    canvas = Image.new("RGB", (384, 384), (255, 255, 255))
    d = ImageDraw.Draw(canvas)
    d.rectangle([40, 40, 344, 344], fill=(30, 30, 36))
    for y in (60, 130, 200, 270):
        d.text((55, y), "TEXTO GRANDE", font=font(40), fill=(240, 240, 240))
    mask = np.zeros((384, 384), dtype=bool)
    mask[40:345, 40:345] = True
    checks = gate.judge(canvas, CutoutView(None, mask, mask, mask))
    assert checks.failed_codes == ("cover_text",)
    assert checks.text is not None
    assert checks.text.text_share > 0.05
    assert checks.text.repeated >= 3
