"""Studio shots: a picture on a white backdrop is cut out by a flood fill from its border, without the model."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from demo import labelled_pictures as lp
from ml_images.processing.processor import ImageProcessorService
from ml_images.processing.studio_cutout import detect_backdrop, studio_alpha
from ml_images_tests.processing.cover_images import CountingRemover, as_download


def iou(alpha: np.ndarray, truth: Image.Image) -> float:
    t = np.asarray(truth.resize((alpha.shape[1], alpha.shape[0]), Image.Resampling.BILINEAR)) >= 128
    m = alpha >= 128
    return float((t & m).sum() / (t | m).sum())


def test_a_white_backdrop_is_recognised_and_a_grey_or_textured_one_is_not():
    white = lp.photo_on("retina", "white", seed=1).image
    backdrop = detect_backdrop(white)
    assert backdrop is not None
    assert backdrop.level >= 250
    assert backdrop.border_share > 0.95
    assert detect_backdrop(Image.new("RGB", (400, 300), (205, 205, 208))) is None  # a grey sweep
    assert detect_backdrop(lp.photo_on("retina", "gravel", seed=1).image) is None
    assert detect_backdrop(Image.new("RGB", (400, 300), (250, 228, 228))) is None  # pink, not neutral


def test_the_flood_fill_leaves_the_soft_shadow_and_keeps_white_parts_of_the_product():
    size = (600, 450)
    truth = Image.new("L", size, 0)
    ImageDraw.Draw(truth).rectangle([150, 80, 450, 360], fill=255)
    image = Image.new("RGB", size, (255, 255, 255))
    shadow = Image.new("L", size, 0)
    shadow.paste(truth, (14, 18))
    image.paste((200, 200, 200), mask=shadow.filter(ImageFilter.GaussianBlur(12)).point(lambda v: v // 2))
    image.paste((30, 30, 36), mask=truth)
    ImageDraw.Draw(image).rectangle([200, 130, 330, 200], fill=(252, 252, 252))  # a white label on the box
    backdrop = detect_backdrop(image)
    assert backdrop is not None
    alpha = studio_alpha(image, backdrop)
    assert iou(alpha, truth) > 0.98
    assert alpha[165, 265] == 255  # the label is part of the product
    assert alpha[375, 470] == 0  # the shadow's darkest part, beside the box, is background


def test_a_large_opening_that_shows_the_backdrop_is_background():
    size = (500, 500)
    truth = Image.new("L", size, 0)
    d = ImageDraw.Draw(truth)
    d.ellipse([80, 80, 420, 420], fill=255)
    d.ellipse([180, 180, 320, 320], fill=0)  # a ring: the opening shows the white backdrop
    image = Image.new("RGB", size, (255, 255, 255))
    image.paste((180, 120, 40), mask=truth)
    backdrop = detect_backdrop(image)
    assert backdrop is not None
    alpha = studio_alpha(image, backdrop)
    assert alpha[250, 250] == 0
    assert iou(alpha, truth) > 0.98


def test_a_studio_candidate_is_cut_out_without_the_model_and_is_cleaner(remover):
    picture = lp.on_white(lp.render("monitor_samsung", lp.Scene.STUDIO, seed=3), shadow=True, seed=3)
    counting = CountingRemover(remover)
    service = ImageProcessorService(counting, canvas_size=600)
    trial = service.trial_cover(as_download(picture.image))
    assert counting.runs == 0
    assert not trial.model_ran
    assert trial.image.background_method == "studio"
    assert trial.image.background_removed
    assert trial.checks.passed, trial.checks.failures
    assert trial.cutout is not None
    assert iou(trial.cutout.alpha, picture.truth) > 0.95
    assert trial.checks.mask is not None
    assert trial.checks.mask.doubtful_share == 0.0


@pytest.mark.parametrize("studio_cutouts", [True, False])
def test_the_cover_prefers_the_studio_candidate(remover, studio_cutouts):
    textured = lp.photo_on("cup", "wood", seed=5).image
    studio = lp.photo_on("print", "white", seed=6).image
    counting = CountingRemover(remover)
    service = ImageProcessorService(counting, canvas_size=600, studio_cutouts=studio_cutouts)
    downloads = [as_download(textured, 0), as_download(studio, 1)]
    outcome = service.process_product(downloads)
    assert outcome.cover_status == "compliant"
    assert [img.source_url for img in outcome.images] == (
        [downloads[1].final_url, downloads[0].final_url] if studio_cutouts else [d.final_url for d in downloads]
    )
    assert outcome.images[0].background_method == ("studio" if studio_cutouts else "u2netp")
    assert outcome.model_runs == counting.runs == (0 if studio_cutouts else 1)
    assert outcome.images[1].background_method is None  # the gallery picture keeps its own background
