"""Choosing the cover in ``process_product``: the first candidate that passes the gate, within the model budget,
and what happens when none does (strict: nothing kept; lenient: kept and flagged). Real rembg, real OCR."""

from __future__ import annotations

import pytest

from demo import labelled_pictures as lp
from ml_images.processing.processor import ImageProcessorService
from ml_images.processing.product_match import ProductIdentity
from ml_images_tests.processing.cover_images import CountingRemover, as_download, printed_box

CANVAS = 600


@pytest.fixture(scope="module")
def pictures() -> dict[str, lp.LabelledPicture]:
    cup_white = lp.photo_on("cup", "white", seed=2)
    cup_wood = lp.photo_on("cup", "wood", seed=2)
    return {
        "cup_wood": cup_wood,
        "retina_gravel": lp.photo_on("retina", "gravel", seed=5),
        "cut_white": lp.truncated(cup_white, side="right"),
        "cut_wood": lp.truncated(cup_wood, side="right"),
        "cut_wood_left": lp.truncated(lp.photo_on("retina", "wood", seed=8), side="left"),
        "cut_brick": lp.truncated(lp.photo_on("print", "brick", seed=9), side="bottom"),
    }


def test_the_first_candidate_that_passes_is_the_cover_and_a_failed_one_stays_in_the_gallery(remover, pictures):
    downloads = [
        as_download(pictures["cut_white"].image, 0),  # cut off by the frame (its border is no longer all white)
        as_download(pictures["cup_wood"].image, 1),  # the model's cut-out passes
        as_download(pictures["retina_gravel"].image, 2),
    ]
    outcome = ImageProcessorService(remover, canvas_size=CANVAS).process_product(downloads)
    assert outcome.cover_status == "compliant"
    assert not outcome.cover_flagged
    assert [img.source_url for img in outcome.images] == [downloads[i].final_url for i in (1, 0, 2)]
    cover, failed, other = outcome.images
    assert cover.cover_compliant is True
    assert cover.background_method == "u2netp"
    assert failed.cover_compliant is False  # judged as cover, kept as a gallery picture
    assert failed.cover_checks is not None
    assert failed.cover_checks.failed_codes == ("cover_truncated",)
    assert failed.background_method is None  # the gallery keeps the picture as shot
    assert other.cover_compliant is None  # never judged as a cover
    assert [a.failed_codes for a in outcome.cover_attempts] == [("cover_truncated",), ()]
    assert outcome.model_runs == 2
    assert outcome.refusals == []
    assert cover.quality_score > failed.quality_score


def test_at_most_cover_attempts_model_runs_then_strict_keeps_nothing(remover, pictures):
    counting = CountingRemover(remover)
    downloads = [as_download(pictures[name].image, i) for i, name in enumerate(("cut_wood", "cut_wood_left",
                                                                                  "cut_brick"))]  # fmt: skip
    outcome = ImageProcessorService(counting, canvas_size=CANVAS, cover_attempts=2).process_product(downloads)
    assert counting.runs == outcome.model_runs == 2
    assert outcome.images == []
    assert outcome.cover_status == "no_compliant_cover"
    assert outcome.reason_code == "no_compliant_cover"
    assert len(outcome.cover_attempts) == 2
    assert outcome.failed_checks[0] == "cover_truncated"
    assert [(r.stage, r.reason, r.url) for r in outcome.refusals] == [
        ("process", "cover_truncated", downloads[0].final_url),
        ("process", "cover_truncated", downloads[1].final_url),
    ]
    assert "edge" in outcome.refusals[0].detail


def test_lenient_keeps_the_pictures_and_flags_the_product(remover, pictures):
    downloads = [as_download(pictures[name].image, i) for i, name in enumerate(("cut_wood", "cut_brick"))]
    outcome = ImageProcessorService(remover, canvas_size=CANVAS, cover_policy="lenient").process_product(downloads)
    assert outcome.cover_status == "no_compliant_cover"
    assert outcome.cover_flagged
    assert len(outcome.images) == 2
    assert outcome.images[0].cover_compliant is False
    assert outcome.images[0].source_url == downloads[0].final_url  # fewest failed rules, then the given order
    assert outcome.refusals == []


def test_a_picture_of_another_model_is_refused_and_one_naming_the_product_ranks_ahead(remover, pictures):
    identity = ProductIdentity(brand="Samsung", model="LF24T350FHL")
    other_model = printed_box(("SAMSUNG", "LF27T350"))
    own_model_with_banner = lp.with_banner(printed_box(("SAMSUNG", "LF24T350")), across_object=True)
    downloads = [
        as_download(pictures["retina_gravel"].image, 0),
        as_download(pictures["cup_wood"].image, 1),
        as_download(other_model.image, 2),
        as_download(own_model_with_banner.image, 3),
    ]
    outcome = ImageProcessorService(remover, canvas_size=CANVAS).process_product(downloads, product=identity)
    # Studio pictures are tried first: the other model is refused, the own model fails on its banner; then the
    # first textured picture passes and is the cover.
    assert [a.failed_codes for a in outcome.cover_attempts] == [("wrong_product",), ("cover_text",), ()]
    assert [(r.reason, r.url) for r in outcome.refusals] == [("wrong_product", downloads[2].final_url)]
    urls = [img.source_url for img in outcome.images]
    assert urls == [downloads[0].final_url, downloads[3].final_url, downloads[1].final_url]
    named = outcome.images[1].cover_checks
    assert named is not None
    assert named.product is not None
    assert named.product.model_named


def test_an_unusable_candidate_list_is_no_images(remover):
    outcome = ImageProcessorService(remover, canvas_size=CANVAS).process_product([])
    assert outcome.images == []
    assert outcome.cover_status == "no_images"
    assert outcome.reason_code is None


def test_constructor_checks_policy_and_attempts(remover):
    with pytest.raises(ValueError, match="cover_policy"):
        ImageProcessorService(remover, cover_policy="loose")
    with pytest.raises(ValueError, match="cover_attempts"):
        ImageProcessorService(remover, cover_attempts=0)
