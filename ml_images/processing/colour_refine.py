"""Colour refinement of a model's cut-out: take back backdrop the model kept with confidence beside the outline.

u2netp sometimes keeps a strip of a textured backdrop next to the object at full confidence (gravel beside a
framed print, wood between a horse's legs); the mask clean-up cannot remove what the model is sure of, and it
stays on the white canvas as haze. The photo's colours can, on the working copy:

1. two colour histograms (``bins`` per channel, slightly blurred): the backdrop's from a ring just outside the
   mask, the object's from the mask eroded by ``core_margin`` of its larger side;
2. per pixel, the log-ratio of the two (smoothed over ``smooth`` pixels): above ``threshold`` a pixel is much
   likelier backdrop than object;
3. what is removed is those pixels of the mask, no deeper than ``depth`` of the object's larger side, that connect
   to the outside through one another (a flood from the outline, as the studio flood fill does from the border),
   opened so single pixels do not nibble the outline.

It only ever removes. When it would remove more than ``max_removed`` of the object, the colours did not separate
and the model's mask stays as it was. OpenCV's GrabCut with a trimap around the mask was tried first and measured
(benchmarks/RESULTS.md, 2026-11-26 evening): 200-400 ms per cover and lower IoU, so this cheaper rule replaced it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage as ndi

from ml_images.processing.mask_cleanup import grow, shrink

_EIGHT = np.ones((3, 3), dtype=bool)


@dataclass(frozen=True)
class ColourRefine:
    bins: int = 16  # histogram bins per channel
    blur: float = 1.0  # histogram blur, in bins (a colour next to a seen one is not unseen)
    ring_gap: int = 2  # the backdrop ring starts this many pixels outside the mask (the model's soft outline)
    ring: float = 0.05  # ... and ends this far out, share of the object's larger side
    core_margin: float = 0.03  # the object's colours: the mask eroded by this share of its larger side
    smooth: int = 3  # the log-ratio is averaged over this square (pixels)
    threshold: float = 2.0  # log-ratio (natural) above which a pixel is backdrop: e² ≈ 7× likelier
    depth: float = 0.02  # removal reaches at most this far into the mask, share of the object's larger side
    max_removed: float = 0.2  # refinement abandoned above this share of the object removed

    def __post_init__(self) -> None:
        if not 2 <= self.bins <= 64 or 256 % self.bins or not 0 < self.max_removed < 1 or self.smooth < 1:
            raise ValueError("bins a divisor of 256 within 2-64, smooth >= 1, 0 < max_removed < 1")


DEFAULT_COLOUR_REFINE = ColourRefine()


def _histogram(index: np.ndarray, where: np.ndarray, bins: int, blur: float) -> np.ndarray:
    counts = np.bincount(index[where], minlength=bins**3).astype(np.float32).reshape(bins, bins, bins)
    if blur > 0:
        counts = ndi.gaussian_filter(counts, blur)
    return np.asarray(counts.ravel() / max(float(counts.sum()), 1.0) + 1e-6)


def refine_mask(work: Image.Image, mask: np.ndarray, settings: ColourRefine | None = None) -> np.ndarray | None:
    """What of ``mask`` (bool, working-copy size) the photo's colours say is backdrop, as a bool array of the same
    shape; None when nothing is removed or the refinement was abandoned."""
    s = settings or ColourRefine()
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return None
    extent = int(max(np.ptp(ys), np.ptp(xs))) + 1
    ring = grow(mask, max(s.ring_gap + 2, round(s.ring * extent))) & ~grow(mask, s.ring_gap)
    core = shrink(mask, max(2, round(s.core_margin * extent)))
    if not ring.any() or not core.any():
        return None
    rgb = np.asarray(work.convert("RGB") if work.mode != "RGB" else work)
    q = (rgb // (256 // s.bins)).astype(np.int32)
    index = (q[..., 0] * s.bins + q[..., 1]) * s.bins + q[..., 2]
    backdrop, own = _histogram(index, ring, s.bins, s.blur), _histogram(index, core, s.bins, s.blur)
    ratio = np.log(backdrop[index]) - np.log(own[index])
    if s.smooth > 1:
        ratio = ndi.uniform_filter(ratio, s.smooth)
    reach = ndi.distance_transform_cdt(mask, metric="chessboard") <= max(2, round(s.depth * extent))
    likely = mask & reach & (ratio > s.threshold)
    removed = ndi.binary_propagation(~mask, mask=~mask | likely, structure=_EIGHT) & mask
    removed = ndi.binary_opening(removed, structure=_EIGHT)
    share = float(removed.sum()) / float(mask.sum())
    if share == 0 or share > s.max_removed:
        return None
    return np.asarray(removed)
