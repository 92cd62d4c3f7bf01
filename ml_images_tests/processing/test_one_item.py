"""One item only on a cover: a prop beside the product is removed from the cut-out, a product's own detached
parts stay, a second item of comparable size is refused.

Generated fixtures: masks drawn directly (the clean-up on its own), studio pictures on a white backdrop (cut out by
the flood fill, judged by the gate), and the demo's café scene — an all-in-one with an espresso cup on the table
beside it — cut out by the real u2netp model.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from demo.product_models import ProductKind, ProductLook
from demo.scenes import Scene, Shot, render_shot_with_mask
from ml_images.outcomes import ReasonCode
from ml_images.processing.cutout import place_mask
from ml_images.processing.mask_cleanup import clean_mask
from ml_images.processing.processor import ImageProcessorService
from ml_images_tests.processing.cover_images import as_download, open_jpeg

SIZE = (800, 600)


def mask_with(*shapes: tuple[str, tuple[int, int, int, int]]) -> np.ndarray:
    im = Image.new("L", SIZE, 0)
    d = ImageDraw.Draw(im)
    for kind, box in shapes:
        (d.ellipse if kind == "ellipse" else d.rectangle)(box, fill=255)
    return np.asarray(im).copy()


MONITOR = ("rect", (250, 100, 600, 330))  # a screen ...
NECK = ("rect", (400, 330, 450, 420))  # ... on its stand


def test_a_moderate_object_beside_the_product_is_removed_and_counted():
    cup = ("ellipse", (80, 330, 170, 420))  # about 8 % of the monitor, to its left, a gap between
    cleaned = clean_mask(mask_with(MONITOR, NECK, cup))
    assert cleaned.alpha[375, 125] == 0  # the cup is gone
    assert cleaned.alpha[200, 420] == 255
    assert cleaned.alpha[400, 425] == 255
    f = cleaned.figures
    assert f.props_removed == 1
    assert f.prop_share == pytest.approx(np.pi * 45 * 45 / (350 * 230 + 50 * 90), rel=0.1)
    assert f.objects == 1
    assert f.second_object_ratio == 0.0


@pytest.mark.parametrize(
    "part",
    [
        pytest.param(("rect", (300, 470, 560, 520)), id="keyboard-in-front"),
        pytest.param(("rect", (330, 440, 520, 470)), id="detached-stand-base"),
        pytest.param(("rect", (580, 340, 612, 560)), id="cable-down-the-side"),
    ],
)
def test_a_detached_part_in_front_of_or_below_the_product_stays(part):
    cleaned = clean_mask(mask_with(MONITOR, NECK, part))
    (_kind, (x0, y0, x1, y1)) = part
    assert cleaned.alpha[(y0 + y1) // 2, (x0 + x1) // 2] == 255
    assert cleaned.figures.props_removed == 0
    assert cleaned.figures.objects == 2


def test_a_second_item_of_comparable_size_beside_is_kept_for_the_gate():
    second = ("rect", (20, 200, 200, 420))  # about half the monitor: a second product, not a prop
    cleaned = clean_mask(mask_with(MONITOR, NECK, second))
    assert cleaned.alpha[300, 100] == 255
    assert cleaned.figures.props_removed == 0
    assert cleaned.figures.second_object_ratio >= 0.25


def studio_picture(*extra: tuple[str, tuple[int, int, int, int], tuple[int, int, int]]) -> Image.Image:
    image = Image.new("RGB", SIZE, (255, 255, 255))
    d = ImageDraw.Draw(image)
    d.rectangle(MONITOR[1], fill=(30, 30, 34))
    d.rectangle((265, 112, 585, 318), fill=(40, 90, 160))
    d.rectangle(NECK[1], fill=(30, 30, 34))
    for kind, box, colour in extra:
        (d.ellipse if kind == "ellipse" else d.rectangle)(box, fill=colour)
    return image


def test_a_studio_cover_with_a_cup_beside_passes_with_the_cup_removed():
    image = studio_picture(("ellipse", (80, 330, 170, 420), (140, 60, 30)))
    service = ImageProcessorService(None, detect_text=False)
    trial = service.trial_cover(as_download(image))
    assert trial.checks.passed, trial.checks.failures
    assert trial.cutout is not None
    assert trial.cutout.figures.props_removed == 1
    canvas = open_jpeg(trial.image.jpeg)
    # where the cup would be on the canvas: the working copy's cup disc placed like the object
    assert trial.object_box is not None
    cup = Image.new("L", trial.work_size, 0)
    scale = trial.work_size[0] / SIZE[0]
    ImageDraw.Draw(cup).ellipse([v * scale for v in (80, 330, 170, 420)], fill=255)
    placed = np.asarray(place_mask(cup, trial.object_box, canvas.shape[0], service.fill_ratio)) >= 128
    assert not placed.any() or canvas[placed].min() >= 250  # outside the product's box, or white


def test_a_studio_kit_with_its_keyboard_in_front_passes_and_keeps_it():
    image = studio_picture(("rect", (300, 470, 560, 520), (30, 30, 34)))
    service = ImageProcessorService(None, detect_text=False)
    trial = service.trial_cover(as_download(image))
    assert trial.checks.passed, trial.checks.failures
    assert trial.cutout is not None
    assert trial.cutout.figures.objects == 2
    assert trial.cutout.figures.props_removed == 0


def test_two_products_side_by_side_are_still_cover_multiple_objects():
    image = studio_picture(("rect", (20, 200, 200, 420), (30, 30, 34)))
    service = ImageProcessorService(None, detect_text=False)
    trial = service.trial_cover(as_download(image))
    assert ReasonCode.COVER_MULTIPLE_OBJECTS in trial.checks.failed_codes


def test_the_demo_cafe_shot_loses_its_espresso_cup_with_the_real_model(remover):
    look = ProductLook(ProductKind.ALL_IN_ONE, "lenovo", body=(196, 198, 202), wallpaper="rocket", metal=True)
    shot = Shot(Scene.CAFE, 1000, 750, yaw=25.0, pitch=18.0, fill=0.62, shift=0.1, seed=3)
    photo, truth = render_shot_with_mask(look, shot)
    service = ImageProcessorService(remover, detect_text=False)
    trial = service.trial_cover(as_download(photo))
    assert trial.cutout is not None
    assert trial.cutout.figures.props_removed >= 1
    assert trial.cutout.figures.second_object_ratio < 0.25
    kept = trial.cutout.alpha >= 128
    t = np.asarray(truth.resize(trial.work_size, Image.Resampling.BILINEAR)) >= 128
    assert (kept & ~t).sum() < 0.03 * t.sum()  # nothing but the product (the cup was beside it)
    assert (kept & t).sum() > 0.9 * t.sum()
    assert trial.checks.passed, trial.checks.failures
