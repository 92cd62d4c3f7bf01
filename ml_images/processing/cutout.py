"""The cut-out of a cover candidate: a studio flood fill or the model's mask, cleaned, and placed on the canvas.

The working copy (longest side ~512 px) is what the model and the flood fill see; the mask is then applied to the
full-resolution picture when the canvas is composed (``canvas.compose``). ``place_mask`` puts any mask of the
working copy (the object, its largest part, or a benchmark's ground truth) on a canvas of any size with exactly
the composition's geometry.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from PIL import Image

from ml_images.processing import canvas as cv
from ml_images.processing.mask_cleanup import HARD, MaskCleanup, clean_mask
from ml_images.processing.results import STUDIO_METHOD, MaskFigures
from ml_images.processing.studio_cutout import Backdrop, StudioSettings, studio_alpha

# Faint values of the enlarged mask below this (and above 255 - it) are set to 0 (255) on the canvas: resampling
# spills a little alpha beyond the outline, which would otherwise be a 1-2 % grey fringe.
CANVAS_ALPHA_CUTOFF = 8


@dataclass(frozen=True)
class Cutout:
    """A mask of the working copy and what the clean-up measured on it."""

    method: str  # ``"studio"`` or the model's name
    raw: np.ndarray  # uint8, the mask as the flood fill or the model produced it
    alpha: np.ndarray  # uint8, what is composited (cleaned, or ``raw`` when the clean-up is off)
    main: np.ndarray  # bool, the object's largest part
    figures: MaskFigures
    cleaned: bool

    @property
    def object_mask(self) -> np.ndarray:
        return self.alpha >= HARD

    def bbox(self) -> tuple[int, int, int, int] | None:
        """Bounding box of the composited object (faint haze does not widen it)."""
        return cv.alpha_bbox(Image.fromarray(self.alpha, "L"))


def from_mask(method: str, raw: np.ndarray, cleanup: MaskCleanup | None, *, model: bool = True) -> Cutout:
    """Measure (always) and clean (when ``cleanup`` is given) a raw mask. ``model=False``: the mask is not a
    model's guess (a flood fill), so there is no "doubtful" region to measure."""
    settings = cleanup or MaskCleanup()
    if not model:  # a flood fill's soft values are its anti-aliasing, never half-sure parts to join
        settings = replace(settings, weak=HARD)
    cleaned = clean_mask(raw, settings, measure_doubt=model)
    alpha = cleaned.alpha if cleanup is not None else raw
    return Cutout(method, raw, alpha, cleaned.main, cleaned.figures, cleanup is not None)


def studio_cutout(work: Image.Image, backdrop: Backdrop, settings: StudioSettings, cleanup: MaskCleanup) -> Cutout:
    """The flood-fill cut-out of a picture on a white backdrop (always cleaned: islands are JPEG specks)."""
    return from_mask(STUDIO_METHOD, studio_alpha(work, backdrop, settings), cleanup, model=False)


def place_mask(mask: Image.Image, box: cv.Box, canvas_size: int, fill_ratio: float) -> Image.Image:
    """``mask`` (mode L, working-copy coordinates) cropped to ``box`` and placed as ``canvas.compose`` places the
    object, on a black square of ``canvas_size``."""
    x0, y0, x1, y1 = box
    target = cv.fit_size(x1 - x0, y1 - y0, cv.object_box_side(canvas_size, fill_ratio))
    scaled = mask.resize(target, Image.Resampling.BILINEAR, box=box)
    placed = Image.new("L", (canvas_size, canvas_size), 0)
    placed.paste(scaled, ((canvas_size - target[0]) // 2, (canvas_size - target[1]) // 2))
    return placed


def bool_image(mask: np.ndarray) -> Image.Image:
    return Image.fromarray(np.where(mask, np.uint8(255), np.uint8(0)), "L")
