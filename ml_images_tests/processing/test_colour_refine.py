"""Colour refinement of a model's cut-out: background the model kept with confidence beside the outline is taken
back by the photo's colours; an object cut out well is left alone.

The fixtures are generated: a textured orange object (a body on three legs) on a textured green-grey backdrop,
and a remover that returns the true mask plus a confident strip of backdrop along its outline — what u2netp does
with the backdrop beside a horse's legs or a framed print.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage as ndi

from ml_images.processing.background import BackgroundRemover
from ml_images.processing.colour_refine import ColourRefine, refine_mask
from ml_images.processing.cutout import place_mask
from ml_images.processing.processor import ImageProcessorService
from ml_images_tests.processing.cover_images import as_download, open_jpeg

SIZE = (640, 480)


def textured(size: tuple[int, int], base: tuple[int, int, int], spread: int, seed: int) -> np.ndarray:
    """A colour with blotchy texture (8-px cells) and fine noise."""
    rng = np.random.default_rng(seed)
    w, h = size
    cells = rng.integers(-spread, spread + 1, (h // 8 + 1, w // 8 + 1, 1))
    blotches = np.repeat(np.repeat(cells, 8, axis=0), 8, axis=1)[:h, :w]
    return np.clip(np.asarray(base)[None, None] + blotches + rng.normal(0, 4, (h, w, 3)), 0, 255)


def scene(seed: int = 3) -> tuple[Image.Image, np.ndarray, np.ndarray]:
    """(photo, true object mask, the confident false-foreground band) at ``SIZE``: a body on three legs, the
    model having kept a 6 px strip of backdrop along the top of the body and beside the hind leg."""
    truth_im = Image.new("L", SIZE, 0)
    d = ImageDraw.Draw(truth_im)
    d.ellipse([180, 90, 460, 290], fill=255)  # the body
    for x0 in (220, 268, 380):  # the legs
        d.rectangle([x0, 240, x0 + 36, 420], fill=255)
    truth = np.asarray(truth_im) >= 128
    band = ndi.binary_dilation(truth, iterations=6) & ~truth
    band[150:] = False  # along the top of the body ...
    band[300:421, 417:423] = True  # ... and beside the hind leg
    backdrop = textured(SIZE, (112, 128, 96), 22, seed)
    product = textured(SIZE, (214, 112, 48), 26, seed + 1)
    photo = np.where(truth[..., None], product, backdrop).astype(np.uint8)
    return Image.fromarray(photo, "RGB"), truth, band


class BandRemover(BackgroundRemover):
    """Returns the true mask plus the false-foreground band, all at full confidence (255)."""

    def __init__(self, mask: np.ndarray) -> None:
        super().__init__("u2netp")
        self.model_name = "u2netp-with-band"
        self.mask = Image.fromarray(np.where(mask, np.uint8(255), np.uint8(0)), "L")

    def remove(self, image: Image.Image) -> Image.Image:
        out = image.convert("RGBA")
        out.putalpha(self.mask.resize(image.size, Image.Resampling.BILINEAR))
        return out


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum()) / float((a | b).sum())


def test_a_confident_band_of_backdrop_beside_the_outline_is_taken_back_and_the_object_kept() -> None:
    photo, truth, band = scene()
    kept = truth | band
    removed = refine_mask(photo, kept)
    assert removed is not None
    assert removed[band].mean() > 0.8  # most of the kept backdrop goes
    assert removed[truth].mean() < 0.02  # the object, legs included, stays
    assert iou(kept & ~removed, truth) > 0.99 > 0.97 > iou(kept, truth)


def test_a_mask_without_kept_backdrop_is_left_alone() -> None:
    photo, truth, _ = scene(seed=5)
    removed = refine_mask(photo, truth)
    assert removed is None or removed[truth].mean() < 0.01


def test_a_refinement_that_would_remove_too_much_is_abandoned() -> None:
    """Above ``max_removed`` of the object the model and the colours disagree too much to trust the colours: the
    model's mask stays."""
    photo, truth, band = scene(seed=7)
    kept = truth | band
    removed = refine_mask(photo, kept)
    assert removed is not None
    share = float(removed.sum()) / float(kept.sum())
    assert refine_mask(photo, kept, ColourRefine(max_removed=share / 2)) is None


def test_the_cover_is_haze_free_with_the_refinement_and_hazy_without() -> None:
    photo, truth, band = scene(seed=11)
    remover = BandRemover(truth | band)
    download = as_download(photo)
    plain = ImageProcessorService(remover, detect_text=False, colour_refine=None).trial_cover(download)
    refined = ImageProcessorService(remover, detect_text=False).trial_cover(download)  # on by default
    assert plain.cutout is not None
    assert refined.cutout is not None
    # the band's middle on each stored cover: the backdrop's grey-green without the refinement, white with it
    core = np.zeros_like(band)
    core[320:400, 419:421] = True  # the middle of the strip beside the hind leg
    for trial, expect_white in ((plain, False), (refined, True)):
        assert trial.object_box is not None
        small_core = Image.fromarray(np.where(core, np.uint8(255), np.uint8(0))).resize(trial.work_size)
        where = np.asarray(place_mask(small_core, trial.object_box, 1200, 0.9)) >= 128
        pixels = open_jpeg(trial.image.jpeg)[where]
        assert where.sum() > 500
        white_share = float((pixels.min(axis=1) >= 250).mean())
        if expect_white:
            assert white_share > 0.95
        else:
            assert white_share < 0.05
