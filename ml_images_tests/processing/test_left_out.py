"""A part the cut-out dropped outright (no faint alpha left): found in the photo next to the cut-out, in the
object's colours. Generated scenes with known parts, and the real model with its mask cut short."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from demo import labelled_pictures as lp
from ml_images.processing.left_out import left_out_share
from ml_images.processing.processor import ImageProcessorService
from ml_images_tests.processing.cover_images import WrappedRemover, as_download

SIZE = (512, 384)
SCREEN = (150, 80, 360, 230)
NECK = (245, 230, 265, 270)
BASE = (200, 270, 310, 292)


def floor_scene(*, prop: bool = False, shadow: bool = False, seed: int = 0) -> Image.Image:
    """A dark monitor (screen, neck, base) on a grainy grey floor under a lighter wall."""
    rng = np.random.default_rng(seed)
    arr = np.empty((SIZE[1], SIZE[0], 3), dtype=np.float32)
    arr[:150] = (205, 205, 200)
    arr[150:] = (150, 148, 145)
    arr += rng.normal(0, 6, arr.shape)
    image = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    d = ImageDraw.Draw(image)
    if shadow:  # a soft darker floor under and right of the base
        d.ellipse((190, 280, 380, 310), fill=(105, 104, 101))
    d.rectangle(SCREEN, fill=(25, 25, 28))
    d.rectangle((160, 90, 350, 215), fill=(60, 90, 160))
    d.rectangle(NECK, fill=(30, 30, 32))
    d.rectangle(BASE, fill=(28, 28, 30))
    if prop:  # a red mug on the desk beside the monitor
        d.rectangle((380, 240, 420, 292), fill=(190, 40, 35))
    return image


def mask_of(*boxes: tuple[int, int, int, int]) -> np.ndarray:
    canvas = Image.new("L", SIZE, 0)
    for box in boxes:
        ImageDraw.Draw(canvas).rectangle(box, fill=255)
    return np.asarray(canvas) >= 128


def test_a_dropped_stand_base_is_left_out_and_a_whole_cut_out_is_not():
    scene = floor_scene()
    assert left_out_share(scene, mask_of(SCREEN, NECK, BASE)) == 0.0
    lost = left_out_share(scene, mask_of(SCREEN, (NECK[0], NECK[1], NECK[2], NECK[1] + 15)))
    assert lost > 0.04


def test_a_prop_in_its_own_colours_and_a_shadow_are_not_left_out():
    scene = floor_scene(prop=True, shadow=True)
    assert left_out_share(scene, mask_of(SCREEN, NECK, BASE)) < 0.005


class LostBaseRemover(WrappedRemover):
    """The model's mask with the object's lower 40 % dropped outright (alpha 0), as u2netp drops a stand."""

    def alter(self, alpha: np.ndarray) -> np.ndarray:
        ys, _ = np.nonzero(alpha >= 128)
        cut = int(ys.min() + 0.6 * (ys.max() - ys.min()))
        alpha[cut:] = 0
        return alpha


@pytest.mark.parametrize("picture", ["cup-wood", "tower-loft"])
def test_the_real_models_cut_out_with_a_part_dropped_is_cover_mask(remover, picture):
    image = (
        lp.photo_on("cup", "wood", seed=3) if picture == "cup-wood" else lp.render("tower_dell", lp.Scene.LOFT)
    ).image
    whole = ImageProcessorService(remover, studio_cutouts=False, detect_text=False, canvas_size=600)
    cut = ImageProcessorService(LostBaseRemover(remover), studio_cutouts=False, detect_text=False, canvas_size=600)

    good, bad = whole.trial_cover(as_download(image)), cut.trial_cover(as_download(image))

    assert good.checks.mask is not None
    assert good.checks.mask.left_out_share < 0.04
    assert "left out" not in " ".join(f.detail for f in good.checks.failures)
    assert bad.checks.mask is not None
    assert bad.checks.mask.left_out_share > 0.04
    assert "cover_mask" in bad.checks.failed_codes
    assert "left out a part of the object" in next(f.detail for f in bad.checks.failures if f.code == "cover_mask")
