"""Cleaning a cut-out mask before compositing, and the figures that say whether the cut-out is plausible.

A salient-object model such as u2netp returns a soft mask: the object near 255, the background near 0, and in
between faint haze over shadows, half-transparent ghosts of parts it was unsure about (a monitor's stand) and
specks. Composited as is, every faint value becomes a grey veil on the white canvas. The clean-up makes the
mask binary except for a thin soft edge along the object's outline:

1. the object is what the model kept at 50 % or more, and what it kept at ``weak`` or more that touches it (a
   part the model was only half sure of — a monitor's stand base at 45-65 % — would otherwise be cut into
   grey and white blotches at the 50 % line);
2. separate islands much smaller than the largest part are dropped (specks, a bit of a table), and so are props:
   a separate part of moderate size standing clearly beside the largest one (a cup beside a computer). One item
   only on a cover; a product's own detached parts — a stand, the keyboard and mouse of a kit, a cable — lie in
   front of or below it, within its width, and stay. A part at least ``prop_max_ratio`` of the largest is a
   second item, kept for the gate to refuse (``cover_multiple_objects``);
3. holes enclosed by the object and small next to it are filled (a highlight the model took for background);
   a larger enclosed opening — the ring of a stand, the gap inside a handle — stays open;
4. outside a band of ``edge_px`` pixels around the outline, alpha is 0 or 255; inside the band the model's own
   soft values stay (anti-aliasing), with values under ``low`` set to 0 and over ``high`` to 255.

The same pass measures what :mod:`cover_gate` judges (``MaskFigures``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from ml_images.processing.results import MaskFigures

HARD = 128  # alpha from which a pixel belongs to the object
_EIGHT = np.ones((3, 3), dtype=bool)  # 8-connectivity: diagonal contact joins parts


@dataclass(frozen=True)
class MaskCleanup:
    """Thresholds of the clean-up (working copy of ~512 px; shares are of the largest part's area)."""

    low: int = 40  # alpha below this becomes 0 (haze)
    weak: int = 96  # alpha from which a region touching the object (alpha >= 128) belongs to it
    high: int = 215  # alpha above this becomes 255
    edge_px: int = 2  # width of the soft edge kept along the outline
    island_ratio: float = 0.05  # parts smaller than this share of the largest are dropped
    hole_ratio: float = 0.01  # enclosed holes up to this share of the object are filled
    doubtful_low: int = 24  # faint alpha from which the model "was unsure" (ghosts, lost parts)
    core_erosion: float = 0.03  # erosion radius for ``core_share``, share of the object's larger side
    prop_max_ratio: float = 0.25  # a separate part beside the largest and smaller than this share of it is a prop
    prop_max_overlap: float = 0.15  # ... when at most this share of its width lies within the largest's columns
    prop_min_gap: float = 0.03  # ... and this much empty width (share of the largest's) separates them

    def __post_init__(self) -> None:
        if not 0 <= self.low < HARD <= self.high <= 255:
            raise ValueError("need 0 <= low < 128 <= high <= 255")
        if not self.low <= self.weak <= HARD:
            raise ValueError("need low <= weak <= 128")
        if self.edge_px < 0 or not 0 <= self.island_ratio < 1 or not 0 <= self.hole_ratio < 1:
            raise ValueError("edge_px >= 0, 0 <= island_ratio < 1 and 0 <= hole_ratio < 1")


@dataclass(frozen=True)
class CleanedMask:
    alpha: np.ndarray  # uint8, same shape as the input
    main: np.ndarray  # bool: the largest part of the object (filled holes included)
    figures: MaskFigures


def grow(mask: np.ndarray, steps: int) -> np.ndarray:
    """Dilation by ``steps`` pixels (8-connected, i.e. a square): a separable maximum filter, much cheaper than
    iterated binary dilation."""
    return ndi.maximum_filter(mask, size=2 * steps + 1) if steps > 0 else mask


def shrink(mask: np.ndarray, steps: int) -> np.ndarray:
    """Erosion by ``steps`` pixels (8-connected); outside the picture counts as background."""
    if steps <= 0:
        return mask
    return ndi.minimum_filter(mask, size=2 * steps + 1, mode="constant", cval=False)


def _holes(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Labels of the background regions enclosed by ``mask`` (not connected to the picture's edge; 4-connected,
    the complement of an 8-connected object)."""
    labels, count = ndi.label(~mask)
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    keep = np.ones(count + 1, dtype=bool)
    keep[edge] = False
    keep[0] = False
    enclosed = np.where(keep[labels], labels, 0)
    return enclosed, count


def _component_sizes(labels: np.ndarray, count: int) -> np.ndarray:
    return np.bincount(labels.ravel(), minlength=count + 1)[1:]


def _with_weak_parts(raw: np.ndarray, weak: int) -> np.ndarray:
    """Pixels at ``HARD`` or more, plus the regions at ``weak`` or more that contain such pixels (hysteresis)."""
    strong = raw >= HARD
    if weak >= HARD or not strong.any():
        return strong
    labels, count = ndi.label(raw >= weak, structure=_EIGHT)
    anchored = np.zeros(count + 1, dtype=bool)
    anchored[labels[strong]] = True
    anchored[0] = False
    return np.asarray(anchored[labels])


def _props(labels: np.ndarray, sizes: np.ndarray, main_id: int, candidates: np.ndarray, s: MaskCleanup) -> np.ndarray:
    """Which parts (bool per label - 1) are props: smaller than ``prop_max_ratio`` of the largest, and beside it —
    their columns hardly overlap the largest part's and a gap separates them."""
    props = np.zeros(sizes.shape, dtype=bool)
    small = candidates & (sizes < s.prop_max_ratio * sizes[main_id - 1])
    small[main_id - 1] = False
    if not small.any():
        return props
    slices = ndi.find_objects(labels)
    main_x0, main_x1 = slices[main_id - 1][1].start, slices[main_id - 1][1].stop
    main_width = main_x1 - main_x0
    for index in np.flatnonzero(small):
        x0, x1 = slices[index][1].start, slices[index][1].stop
        overlap = max(0, min(x1, main_x1) - max(x0, main_x0))
        gap = max(main_x0 - x1, x0 - main_x1)
        props[index] = overlap <= s.prop_max_overlap * (x1 - x0) and gap >= s.prop_min_gap * main_width
    return props


def _empty(alpha: np.ndarray) -> CleanedMask:
    figures = MaskFigures(
        kept_share=0.0,
        doubtful_share=0.0,
        islands_dropped=0,
        island_share=0.0,
        holes_filled=0,
        hole_share=0.0,
        objects=0,
        second_object_ratio=0.0,
        fragment_share=0.0,
        core_share=0.0,
        box_fill=0.0,
    )
    return CleanedMask(np.zeros_like(alpha, dtype=np.uint8), np.zeros(alpha.shape, dtype=bool), figures)


def clean_mask(alpha: np.ndarray, settings: MaskCleanup | None = None, *, measure_doubt: bool = True) -> CleanedMask:
    """Clean a soft mask (2-D uint8) and measure it. Never grows the object beyond what the model kept at 50 %,
    except for the small holes it fills."""
    s = settings or MaskCleanup()
    raw = np.asarray(alpha, dtype=np.uint8)
    hard = _with_weak_parts(raw, s.weak)
    if not hard.any():
        return _empty(raw)

    labels, count = ndi.label(hard, structure=_EIGHT)
    sizes = _component_sizes(labels, count)
    largest = int(sizes.max())
    main_id = int(np.argmax(sizes)) + 1
    dropped = sizes < s.island_ratio * largest
    props = _props(labels, sizes, main_id, ~dropped, s)
    keep_ids = np.flatnonzero(~dropped & ~props) + 1
    kept = np.isin(labels, keep_ids)
    islands_dropped, island_area = int(dropped.sum()), int(sizes[dropped].sum())
    kept_sizes = np.sort(sizes[~dropped & ~props])[::-1]

    hole_labels, hole_count = _holes(kept)
    hole_sizes = _component_sizes(hole_labels, hole_count)
    kept_area = int(kept_sizes.sum())
    small = np.flatnonzero((hole_sizes > 0) & (hole_sizes <= s.hole_ratio * kept_area)) + 1
    filled = np.isin(hole_labels, small) if small.size else np.zeros_like(kept)
    body = kept | filled

    out = np.where(body, np.uint8(255), np.uint8(0))
    # Distances to the outline are only needed a few pixels out: dilations and erosions by a handful of steps
    # cost a fraction of a Euclidean distance transform over the whole picture.
    band = max(s.edge_px, round(0.004 * max(raw.shape)))
    grown = grow(body, band)
    if s.edge_px > 0:
        # Soft values survive only within edge_px of the outline: outside the body they are the model's
        # anti-aliasing (never a dropped island's pixels), inside it the outline's inner half.
        edge_out = grow(body, s.edge_px) if s.edge_px != band else grown
        # Only along the confident outline: where a half-sure region joined the object, the model's soft values
        # are its doubt, not anti-aliasing, and kept they would be a grey fringe there; that outline stays hard.
        confident = raw >= HARD
        near_outside = edge_out & ~body & ~confident & grow(confident, s.edge_px)
        out[near_outside] = raw[near_outside]
        near_inside = body & ~shrink(body, s.edge_px) & ~filled & confident
        out[near_inside] = raw[near_inside]
        # There the outline is anti-aliased from the mask itself (a slight blur of it), not left as stair steps.
        joined_edge = (edge_out & ~body & ~near_outside) | (body & ~shrink(body, s.edge_px) & ~filled & ~confident)
        if joined_edge.any():
            smooth = ndi.gaussian_filter(body.astype(np.float32), 0.8) * 255
            out[joined_edge] = np.clip(smooth[joined_edge], 0, 255).astype(np.uint8)
    out[out < s.low] = 0
    out[out > s.high] = 255

    # Figures (on the body, the object as composited)
    area = int(body.sum())
    ys, xs = np.nonzero(body)
    height, width = int(ys.max() - ys.min() + 1), int(xs.max() - xs.min() + 1)
    # Doubt is measured around what the model was sure of, before half-sure regions joined it: the gate judges
    # the model's confidence (a lost bezel left at 40-60 % is still doubt), the clean-up only repairs the cut-out.
    sure_body = (body & (raw >= HARD)) | filled
    sure = grown if s.weak >= HARD else grow(sure_body, band)
    doubtful = (raw >= s.doubtful_low) & (raw < HARD) & ~sure
    if props.any():  # a prop's own soft outline is not doubt about the product
        doubtful &= ~grow(np.isin(labels, np.flatnonzero(props) + 1), band)
    if not measure_doubt:
        doubtful[:] = False
    radius = max(1, round(s.core_erosion * max(height, width)))
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    core = ndi.distance_transform_cdt(np.pad(body[y0:y1, x0:x1], 1), metric="chessboard") > radius
    second = float(kept_sizes[1] / kept_sizes[0]) if kept_sizes.size > 1 else 0.0
    figures = MaskFigures(
        kept_share=area / raw.size,
        doubtful_share=float(doubtful.sum()) / max(1, int(sure_body.sum())),
        islands_dropped=islands_dropped,
        island_share=island_area / area,
        holes_filled=int(small.size),
        hole_share=float(filled.sum()) / area,
        objects=int(kept_sizes.size),
        second_object_ratio=second,
        fragment_share=float(kept_sizes[1:].sum()) / area,
        core_share=float(core.sum()) / area,
        box_fill=area / (height * width),
        props_removed=int(props.sum()),
        prop_share=float(sizes[props].sum()) / area,
    )
    main_part = labels == main_id
    main_holes, _ = _holes(main_part)
    main = (main_part | (main_holes > 0)) & body
    return CleanedMask(out, main, figures)


def binary_mask_alpha(mask: np.ndarray) -> np.ndarray:
    """A boolean mask as uint8 alpha (0/255)."""
    return np.where(mask, np.uint8(255), np.uint8(0))
