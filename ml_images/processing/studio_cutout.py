"""Cut-out without a model for pictures already shot on a white backdrop (the usual manufacturer picture).

When the border of the picture is a clean white or near-white backdrop, the background is everything
backdrop-coloured that is connected to the border (a flood fill from the edges). That is exact where a model
guesses, needs no inference (a few milliseconds instead of ~300 ms) and leaves no haze. Enclosed backdrop-coloured
regions are background too when they are large (the opening of a stand or a handle) and part of the object when
small (a highlight on a glossy surface).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage as ndi

from ml_images.processing.mask_cleanup import grow, shrink

_EIGHT = np.ones((3, 3), dtype=bool)


@dataclass(frozen=True)
class StudioSettings:
    """What counts as a studio backdrop, and how close to it a pixel must be to count as background."""

    min_level: int = 228  # the backdrop's darkest channel, typically (a light grey sweep is not a white backdrop)
    max_chroma: int = 18  # max - min channel: a white backdrop is neutral
    min_border_share: float = 0.9  # share of the border band that must look like the backdrop
    border_fraction: float = 0.03  # the band along the four edges, share of the shorter side
    tolerance: int = 22  # how much darker than the backdrop a background pixel may be (JPEG noise, faint shade)
    shadow_depth: int = 80  # a soft shadow may be this much darker than the backdrop
    max_shadow_gradient: float = 4.0  # levels per pixel: a shadow fades, an object's outline does not
    shadow_peel_px: int = 4  # how far along the outline the fill may still take back shadow
    shadow_contrast: int = 60  # ... when that much brighter than the object just inside
    opening_tolerance: int = 4  # an enclosed opening shows the backdrop itself (up to noise) ...
    opening_mean_tolerance: float = 1.5  # ... on average as bright as the backdrop (a white label is a bit darker)
    opening_ratio: float = 0.03  # enclosed backdrop regions larger than this share of the object are openings
    edge_px: int = 1  # soft edge (anti-aliasing) kept along the outline

    def __post_init__(self) -> None:
        if not 0 < self.min_border_share <= 1 or not 0 < self.border_fraction < 0.5:
            raise ValueError("min_border_share in (0, 1], border_fraction in (0, 0.5)")


@dataclass(frozen=True)
class Backdrop:
    level: int  # the backdrop's brightness (darkest channel, median over the border band)
    border_share: float  # share of the border band that looks like it


def _channels(image: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    """(darkest channel, chroma) per pixel."""
    arr = np.asarray(image.convert("RGB") if image.mode != "RGB" else image)
    r, g, b = arr[..., 0], arr[..., 1], arr[..., 2]
    low = np.minimum(np.minimum(r, g), b)  # element-wise: much faster than a reduction over the channel axis
    return low.astype(np.int16), (np.maximum(np.maximum(r, g), b) - low).astype(np.int16)


def _border(values: np.ndarray, band: int) -> np.ndarray:
    sides = [values[:band], values[-band:], values[band:-band, :band], values[band:-band, -band:]]
    return np.concatenate([side.ravel() for side in sides])


def detect_backdrop(image: Image.Image, settings: StudioSettings | None = None) -> Backdrop | None:
    """The picture's white backdrop, or None when its border is not a clean white/near-white backdrop."""
    s = settings or StudioSettings()
    low, chroma = _channels(image)
    band = max(1, round(min(low.shape) * s.border_fraction))
    if 2 * band >= min(low.shape):
        return None
    border_low, border_chroma = _border(low, band), _border(chroma, band)
    backdrop_like = (border_low >= s.min_level) & (border_chroma <= s.max_chroma)
    share = float(backdrop_like.mean())
    if share < s.min_border_share:
        return None
    return Backdrop(level=int(np.median(border_low[backdrop_like])), border_share=share)


def _gradient(low: np.ndarray) -> np.ndarray:
    """Gradient magnitude (levels per pixel) of the lightly smoothed darkest channel."""
    smooth = ndi.gaussian_filter(low.astype(np.float32), 1.0)
    return np.asarray(np.hypot(ndi.sobel(smooth, axis=0), ndi.sobel(smooth, axis=1)) / 8.0)


def _peel_shadow(
    background: np.ndarray, low: np.ndarray, chroma: np.ndarray, backdrop: Backdrop, s: StudioSettings
) -> np.ndarray:
    """Give back to the background the shadow right along the object's outline, where the outline's own edge
    stops the smooth-shadow fill: pixels next to the background that are neutral, shadow-bright, and much
    brighter than the object just inside them (a light product's own rim is not)."""
    shadowish = (low >= backdrop.level - s.shadow_depth) & (chroma <= s.max_chroma)
    for _ in range(s.shadow_peel_px):
        obj = ~background
        rim = obj & grow(background, 1)
        inside = np.where(obj & ~rim, low, np.int16(255))
        darkest_inside = ndi.grey_erosion(inside, size=(7, 7))
        peel = rim & shadowish & (low.astype(np.int32) - darkest_inside >= s.shadow_contrast)
        if not peel.any():
            break
        background = background | peel
    return background


def studio_alpha(image: Image.Image, backdrop: Backdrop, settings: StudioSettings | None = None) -> np.ndarray:
    """Alpha (uint8, the image's size) of everything that is not the backdrop connected to the border.

    The flood fill runs in two steps: through pixels within ``tolerance`` of the backdrop, then on into soft
    shadows — darker (down to ``shadow_depth`` below the backdrop) but neutral and smooth (gradient under
    ``max_shadow_gradient``): a shadow fades, an object's outline is an edge, so the fill stops at the object."""
    s = settings or StudioSettings()
    low, chroma = _channels(image)
    like = (low >= backdrop.level - s.tolerance) & (chroma <= s.max_chroma + s.tolerance // 2)
    shadow = (low >= backdrop.level - s.shadow_depth) & (chroma <= s.max_chroma)
    shadow &= _gradient(low) <= s.max_shadow_gradient
    reach = like | shadow
    labels, count = ndi.label(reach, structure=_EIGHT)
    seeds = np.zeros(count + 1, dtype=bool)
    border_like = np.concatenate([m.ravel() for m in (like[0], like[-1], like[:, 0], like[:, -1])])
    border_labels = np.concatenate([m.ravel() for m in (labels[0], labels[-1], labels[:, 0], labels[:, -1])])
    seeds[border_labels[border_like]] = True
    seeds[0] = False
    background = _peel_shadow(seeds[labels], low, chroma, backdrop, s)
    obj = ~background
    object_area = int(obj.sum())
    if object_area:
        # Enclosed backdrop-coloured regions: background (an opening one sees the backdrop through) only when they
        # are large, thick and as bright as the backdrop itself; otherwise they are white parts of the product
        # (a label, a window on a screen, a highlight). Either way they look white on the canvas.
        tight = (low >= backdrop.level - s.opening_tolerance) & (chroma <= s.max_chroma) & obj
        tight = grow(shrink(tight, 2), 2)  # an opening: thin strips (text lines, reflections) drop out
        open_labels, open_count = ndi.label(tight, structure=_EIGHT)
        if open_count:
            sizes = np.bincount(open_labels.ravel(), minlength=open_count + 1)
            sums = np.bincount(open_labels.ravel(), weights=low.ravel(), minlength=open_count + 1)
            sizes[0] = 0
            level = sums / np.maximum(sizes, 1)
            openings = np.flatnonzero(
                (sizes > s.opening_ratio * object_area) & (level >= backdrop.level - s.opening_mean_tolerance)
            )
            if openings.size:
                background |= np.isin(open_labels, openings)
                obj = ~background
    alpha = np.where(obj, np.uint8(255), np.uint8(0))
    if s.edge_px > 0 and obj.any():
        # Anti-aliasing along the outline: a pixel halfway between the backdrop and the object's colour is half
        # covered. Only the outline's outer ring gets soft values.
        ring = background & grow(obj, s.edge_px)
        depth = (backdrop.level - low[ring]).astype(np.float32) / max(1, 2 * s.tolerance)
        alpha[ring] = np.clip(depth * 255, 0, 255).astype(np.uint8)
    return alpha
