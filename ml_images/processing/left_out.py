"""A part of the object the cut-out left out: what lies next to the cut-out in the object's own colours, not the
backdrop's.

A salient-object model sometimes drops a whole part of the product with full confidence — a monitor's stand base,
its lower bezel — so no faint "doubtful" alpha is left to measure (``mask_cleanup``): the cut-out simply ends where
the product goes on. The photo still shows it. On a small copy of the working picture:

1. the backdrop's colours are the photo's outer band away from the object (quantised), and a pixel is explained by
   the backdrop when it is one of them, or one of them darkened or lightened a little (a shadow, uneven light);
2. the unexplained pixels next to the cut-out form the candidate parts (specks removed by an opening);
3. a candidate part counts as left out only when most of its pixels have one of the object's own colours — a prop
   beside the product that the cut-out rightly excluded has colours of its own.

The share (of the object's area) is ``MaskFigures.left_out_share``; the cover gate refuses a large one as
``cover_mask``. About 10-20 ms on the 512 px working copy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage as ndi


@dataclass(frozen=True)
class LeftOutSettings:
    side: int = 128  # longest side of the copy measured
    band_fraction: float = 0.04  # the photo's outer band that samples the backdrop
    quantum: int = 8  # colour quantisation of the backdrop's and the object's palettes
    backdrop_tolerance: float = 28.0  # RGB distance to a (scaled) backdrop colour that still explains a pixel
    min_scale: float = 0.45  # a backdrop colour darkened down to this factor (a shadow) still explains a pixel
    max_scale: float = 1.1
    object_tolerance: float = 12.0  # RGB distance to one of the object's colours
    min_object_share: float = 0.8  # share of a part's pixels in the object's colours for it to count as left out


def _nearest(
    points: np.ndarray, palette: np.ndarray, *, scale: tuple[float, float] | None, chunk: int = 64
) -> np.ndarray:
    """Distance of each point (n, 3) to the nearest palette colour (k, 3); with ``scale``, to the nearest colour
    times the best factor within the bounds (a darker or lighter version of it)."""
    best = np.full(len(points), np.inf, dtype=np.float32)
    norms = np.maximum((palette * palette).sum(axis=1), 1.0)
    for start in range(0, len(palette), chunk):
        part = palette[start : start + chunk]
        if scale is None:
            factor = np.ones((len(points), len(part)), dtype=np.float32)
        else:
            factor = np.clip(points @ part.T / norms[start : start + chunk], *scale)
        residual = points[:, None, :] - factor[..., None] * part[None]
        best = np.minimum(best, np.sqrt((residual * residual).sum(axis=-1)).min(axis=1))
    return best


def left_out_share(work: Image.Image, object_mask: np.ndarray, settings: LeftOutSettings | None = None) -> float:
    """Area next to the cut-out that looks like the object and not like the backdrop, as a share of the object's
    area (``object_mask``: bool, the working copy's grid)."""
    s = settings or LeftOutSettings()
    w, h = work.size
    factor = max(w, h) / s.side
    size = (max(1, round(w / factor)), max(1, round(h / factor)))
    rgb = work.convert("RGB") if work.mode != "RGB" else work
    img = np.asarray(rgb.resize(size, Image.Resampling.BOX), dtype=np.float32)
    mask_image = Image.fromarray(np.where(object_mask, np.uint8(255), np.uint8(0)), "L")
    obj = np.asarray(mask_image.resize(size, Image.Resampling.BOX)) >= 128
    area = int(obj.sum())
    if area == 0:
        return 0.0
    near = ndi.binary_dilation(obj, iterations=2)
    rows, cols = obj.shape
    b = max(1, round(min(rows, cols) * s.band_fraction))
    band = np.zeros_like(obj)
    band[:b], band[-b:], band[:, :b], band[:, -b:] = True, True, True, True
    backdrop = img[band & ~near]
    if len(backdrop) == 0:
        return 0.0
    q = s.quantum
    palette = np.unique((backdrop // q) * q + q / 2, axis=0)
    outside = ~near
    foreign = np.zeros_like(obj)
    foreign[outside] = _nearest(img[outside], palette, scale=(s.min_scale, s.max_scale)) > s.backdrop_tolerance
    foreign = ndi.binary_opening(foreign)
    labels, _ = ndi.label(foreign)
    touching = np.unique(labels[ndi.binary_dilation(obj, iterations=3) & (labels > 0)])
    if touching.size == 0:
        return 0.0
    own = np.unique((img[obj] // q) * q + q / 2, axis=0)
    left_out = 0
    for label in touching:
        part = labels == label
        distance = _nearest(img[part], own, scale=None, chunk=256)
        if np.mean(distance < s.object_tolerance) >= s.min_object_share:
            left_out += int(part.sum())
    return left_out / area
