"""The cover gate: a local version of Mercado Libre's rules for a main picture, one reason code per failed rule.

Mercado Libre asks of a cover: one item only, a pure white background made digitally, the product filling most of
the frame, no seller logos, text, watermarks or badges. The gate judges a finished candidate — the canvas that
would be stored, the cut-out it came from and the text on it — and returns every rule it fails with the values
measured:

* ``cover_not_white``: the border band is not pure white — the canvas's, and for a picture that keeps its own
  background the photo's own band (the canvas margin around it is always white) —, or pixels away from the
  object are not (haze, ghosts, halos);
* ``cover_truncated``: the object runs into an edge of the source photo (it is cut off);
* ``cover_multiple_objects``: a second separate part at least ``max_second_object_ratio`` of the largest;
* ``cover_mask``: the cut-out is implausible — the model was unsure about a sizeable region (the part it dropped
  is left as a faint ghost: the monitor whose bezel and stand were lost), it dropped a part outright (the photo
  shows the object's colours going on next to the cut-out where the backdrop should be: a stand's base), it kept
  only a thin or fragmented part, or it emptied most of the object's box;
* ``cover_text``: text, a logo or a watermark — text off the product's largest part or across its outline, text
  printed on a saturated patch that runs out over the outline (a badge or banner the cut-out kept with the
  product), the same text or slant repeated across the picture (a watermark), or text covering more than a small
  share of it. Text lying on the product itself (a brand on the bezel, the keys of a keyboard, a label on a box)
  is allowed;
* ``wrong_product``: the picture's readable model number names another model of the same brand.

Text is read (the costly part, ~100 ms) on every candidate with a cut-out, so that every failed rule is reported;
a candidate that keeps its own coloured background fails ``cover_not_white`` without it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from ml_images.processing.mask_cleanup import grow as grow_mask
from ml_images.processing.product_match import ProductIdentity, match_words, normalise
from ml_images.processing.results import (
    COVER_MASK,
    COVER_MULTIPLE_OBJECTS,
    COVER_NOT_WHITE,
    COVER_TEXT,
    COVER_TRUNCATED,
    WRONG_PRODUCT,
    CheckFailure,
    CoverChecks,
    MaskFigures,
    ProductMatch,
    TextBox,
    TextFigures,
)
from ml_images.processing.text_detection import TextDetector, TextLine


@dataclass(frozen=True)
class CoverRules:
    """Thresholds of the gate. Shares of the canvas unless said otherwise."""

    white_level: int = 250  # every channel at least this counts as pure white (JPEG noise on white is 0-3)
    border_fraction: float = 0.02  # the outer band judged by ``cover_not_white``
    min_white_border_share: float = 0.99
    min_background_white_share: float = 0.995  # pixels farther than ``edge_tolerance`` from the object
    edge_tolerance: float = 0.012  # of the canvas side: the soft edge and resampling spill around the object
    truncation_min_run: float = 0.03  # the object runs along an edge for this share of its length
    max_second_object_ratio: float = 0.25  # second part's area / the largest part's
    max_doubtful_share: float = 0.03  # faint alpha away from the outline, of the object's area
    max_left_out_share: float = 0.04  # next to the cut-out in the object's colours (``left_out.py``), of its area
    max_fragment_share: float = 0.2  # everything outside the largest part (kept and dropped), of the object's area
    min_core_share: float = 0.35  # share surviving an erosion by 3 % of the object's size
    min_box_fill: float = 0.15
    max_text_share: float = 0.05  # all text together
    max_off_object_share: float = 0.002  # text off the product or across its outline (about one short word)
    min_on_object: float = 0.9  # a text line counts as the product's when this share of it (with a margin) is on it
    text_margin: float = 0.35  # margin around a line, in line heights, that must be on the product too
    outline_margin: float = 1.0  # a sticker's text this close to the outline (line heights) is off the product
    sticker_saturation: int = 90  # median max-min channel around a line from which it sits on printed colour
    min_repeats: int = 3  # lines sharing one text: a watermark
    min_slanted_repeats: int = 2  # lines sharing one slant of at least ``min_slant`` degrees: a watermark
    min_slant: float = 15.0
    slant_tolerance: float = 6.0
    min_shared_chars: int = 5  # two lines "repeat one text" when they share this many consecutive characters


@dataclass(frozen=True)
class CutoutView:
    """What the gate needs to know about the cut-out of a candidate (None fields: no cut-out was made)."""

    figures: MaskFigures | None
    work_mask: np.ndarray | None  # bool, the composited object on the working copy (source-photo framing)
    object_mask: np.ndarray | None  # bool, the object on the canvas at the judging size
    main_mask: np.ndarray | None  # bool, its largest part, same grid


def white_share(pixels: np.ndarray, level: int) -> float:
    """Share of RGB pixels (n, 3) whose every channel is at least ``level``."""
    if pixels.size == 0:
        return 1.0
    return float(np.count_nonzero(pixels.min(axis=-1) >= level)) / (pixels.size // 3)


def border_band(arr: np.ndarray, fraction: float) -> np.ndarray:
    """The pixels of the outer band of an (h, w, c) array, as (n, c)."""
    h, w = arr.shape[:2]
    band = max(1, round(min(h, w) * fraction))
    parts = [arr[:band], arr[-band:], arr[band:-band, :band], arr[band:-band, -band:]]
    return np.concatenate([p.reshape(-1, arr.shape[2]) for p in parts])


def photo_border_share(photo: Image.Image, rules: CoverRules | None = None) -> float:
    """White share of a picture's own outer band (on a copy of about 256 px: the band's colour, not its detail)."""
    r = rules or CoverRules()
    factor = max(1, max(photo.size) // 256)
    small = photo.reduce(factor) if factor > 1 else photo
    arr = np.asarray(small.convert("RGB") if small.mode != "RGB" else small)
    return white_share(border_band(arr, r.border_fraction), r.white_level)


def truncated_edges(mask: np.ndarray, min_run: float) -> tuple[str, ...]:
    """The edges of the source framing along which the object runs for at least ``min_run`` of their length."""
    edges = {"top": mask[:2].any(axis=0), "bottom": mask[-2:].any(axis=0)}
    edges["left"], edges["right"] = mask[:, :2].any(axis=1), mask[:, -2:].any(axis=1)
    return tuple(name for name, run in edges.items() if run.size and run.mean() >= min_run)


def _shared_run(a: str, b: str) -> int:
    """Length of the longest run of characters two strings share."""
    best = 0
    previous = [0] * (len(b) + 1)
    for ch in a:
        current = [0] * (len(b) + 1)
        for j, other in enumerate(b, start=1):
            if ch == other:
                current[j] = previous[j - 1] + 1
                best = max(best, current[j])
        previous = current
    return best


def _same_text(a: str, b: str, min_shared: int) -> bool:
    if not a or not b:
        return False
    return (a == b and len(a) >= 3) or _shared_run(a, b) >= min_shared


def _largest_group(count: int, linked: Sequence[tuple[int, int]]) -> int:
    parent = list(range(count))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in linked:
        parent[find(a)] = find(b)
    sizes: dict[int, int] = {}
    for i in range(count):
        root = find(i)
        sizes[root] = sizes.get(root, 0) + 1
    return max(sizes.values(), default=0)


def _expanded(quad: tuple[tuple[float, float], ...], margin: float) -> list[tuple[float, float]]:
    """The quadrilateral grown by ``margin`` line heights on every side."""
    q = np.asarray(quad, dtype=np.float64)
    along = (q[1] - q[0]) / max(1e-6, float(np.linalg.norm(q[1] - q[0])))
    across = (q[3] - q[0]) / max(1e-6, float(np.linalg.norm(q[3] - q[0])))
    height = (np.linalg.norm(q[3] - q[0]) + np.linalg.norm(q[2] - q[1])) / 2
    d = margin * height
    grown = [q[0] - d * along - d * across, q[1] + d * along - d * across]
    grown += [q[2] + d * along + d * across, q[3] - d * along + d * across]
    return [(float(x), float(y)) for x, y in grown]


def _polygon_area(points: Sequence[tuple[float, float]]) -> float:
    xs = np.array([p[0] for p in points])
    ys = np.array([p[1] for p in points])
    return float(abs(np.dot(xs, np.roll(ys, 1)) - np.dot(ys, np.roll(xs, 1))) / 2)


def _region(quad: tuple[tuple[float, float], ...], margin: float, size: tuple[int, int]) -> np.ndarray:
    region = Image.new("L", size, 0)
    ImageDraw.Draw(region).polygon(_expanded(quad, margin), fill=255)
    return np.asarray(region) > 0


def _on_object(line: TextLine, main_mask: np.ndarray | None, rules: CoverRules, size: tuple[int, int]) -> float:
    """Share of the line's box, grown by ``text_margin`` line heights, lying on the product's largest part."""
    if main_mask is None:
        return 0.0
    inside = _region(line.quad, rules.text_margin, size)
    if not inside.any():
        return 0.0
    return float(main_mask[inside].mean())


def judge_text(
    lines: Sequence[TextLine],
    canvas: np.ndarray,
    main_mask: np.ndarray | None,
    rules: CoverRules,
    seconds: float,
) -> tuple[TextFigures, CheckFailure | None]:
    """Classify the lines found on a canvas copy (RGB array) against the product's largest part (``main_mask`` on
    the same grid; None = unknown, every line counts as off the product)."""
    height, width = canvas.shape[:2]
    size = (width, height)
    canvas_area = float(width * height)
    boxes: list[TextBox] = []
    for line in lines:
        area = _polygon_area(line.quad) / canvas_area
        on_object = _on_object(line, main_mask, rules, size)
        sticker = main_mask is not None and _sticker(line, canvas, main_mask, rules)
        xs = [p[0] for p in line.quad]
        ys = [p[1] for p in line.quad]
        box = (min(xs) / width, min(ys) / height, max(xs) / width, max(ys) / height)
        boxes.append(TextBox(line.text, line.score, box, area, on_object, line.angle, sticker))

    text_share = sum(b.area_share for b in boxes)
    off = sum(b.area_share for b in boxes if b.on_object < rules.min_on_object or b.sticker)
    texts = [normalise(b.text) for b in boxes]
    same_text = [
        (i, j)
        for i in range(len(boxes))
        for j in range(i + 1, len(boxes))
        if _same_text(texts[i], texts[j], rules.min_shared_chars)
    ]
    slanted = [i for i, b in enumerate(boxes) if abs(b.angle) >= rules.min_slant]
    same_slant = [
        (i, j)
        for a, i in enumerate(slanted)
        for j in slanted[a + 1 :]
        if abs(boxes[i].angle - boxes[j].angle) <= rules.slant_tolerance
    ]
    repeated_text = _largest_group(len(boxes), same_text) if same_text else (1 if boxes else 0)
    repeated_slant = _largest_group(len(boxes), same_slant) if same_slant else 0
    figures = TextFigures(
        lines=tuple(boxes),
        text_share=text_share,
        off_object_share=off,
        repeated=max(repeated_text, repeated_slant),
        words=tuple(b.text for b in boxes if b.text),
        seconds=seconds,
    )
    reasons = []
    if text_share > rules.max_text_share:
        reasons.append(f"text covers {100 * text_share:.1f} % of the picture (max {100 * rules.max_text_share:g} %)")
    if off > rules.max_off_object_share:
        reasons.append(
            f"text off the product or across its outline covers {100 * off:.2f} % "
            f"(max {100 * rules.max_off_object_share:g} %)"
        )
    if repeated_text >= rules.min_repeats:
        reasons.append(f"{repeated_text} lines repeat one text (a watermark)")
    if repeated_slant >= rules.min_slanted_repeats:
        reasons.append(f"{repeated_slant} slanted lines share one slant (a watermark)")
    failure = CheckFailure(COVER_TEXT, "; ".join(reasons)) if reasons else None
    return figures, failure


def _sticker(line: TextLine, canvas: np.ndarray, main_mask: np.ndarray, rules: CoverRules) -> bool:
    """The line is printed on a saturated colour (a sticker, a badge, a banner: graphics, not a product's surface)
    and the object's outline is within ``outline_margin`` line heights of it: a badge or banner that the cut-out
    kept with the product (it overlaps it) but that runs out over its outline."""
    size = (canvas.shape[1], canvas.shape[0])
    pixels = canvas[_region(line.quad, 0.0, size)].astype(np.int16)  # the glyphs and what they are printed on
    if pixels.size == 0:
        return False
    saturation = float(np.median(pixels.max(axis=1) - pixels.min(axis=1)))
    if saturation < rules.sticker_saturation:
        return False
    return float(main_mask[_region(line.quad, rules.outline_margin, size)].mean()) < 1.0


def _mask_failures(figures: MaskFigures, rules: CoverRules) -> list[CheckFailure]:
    failures = []
    if figures.second_object_ratio >= rules.max_second_object_ratio:
        failures.append(
            CheckFailure(
                COVER_MULTIPLE_OBJECTS,
                f"{figures.objects} separate objects; the second is {100 * figures.second_object_ratio:.0f} % of "
                f"the largest (max {100 * rules.max_second_object_ratio:g} %)",
            )
        )
    reasons = []
    if figures.doubtful_share > rules.max_doubtful_share:
        reasons.append(
            f"the model was unsure about a region {100 * figures.doubtful_share:.1f} % of the object's size "
            f"(max {100 * rules.max_doubtful_share:g} %)"
        )
    if figures.left_out_share > rules.max_left_out_share:
        reasons.append(
            f"the cut-out left out a part of the object: {100 * figures.left_out_share:.1f} % of its size next to "
            f"it shows the object's colours, not the backdrop's (max {100 * rules.max_left_out_share:g} %)"
        )
    # Specks dropped by the clean-up, or three and more parts: the model broke the object up (two large parts
    # are two objects, judged above).
    fragments = figures.island_share + (figures.fragment_share if figures.objects >= 3 else 0.0)
    if fragments > rules.max_fragment_share:
        reasons.append(f"fragmented: {100 * fragments:.0f} % of the cut-out lies outside its largest part")
    if figures.core_share < rules.min_core_share:
        reasons.append(f"thin remnants: {100 * figures.core_share:.0f} % survives a small erosion")
    if figures.box_fill < rules.min_box_fill:
        reasons.append(f"the cut-out fills {100 * figures.box_fill:.0f} % of its box")
    if reasons:
        failures.append(CheckFailure(COVER_MASK, "; ".join(reasons)))
    return failures


class CoverGate:
    """Judges cover candidates. ``text_detector`` None: the text rule is not applied (figures stay None)."""

    def __init__(self, rules: CoverRules | None = None, text_detector: TextDetector | None = None) -> None:
        self.rules = rules or CoverRules()
        self.text_detector = text_detector

    def judge(
        self,
        canvas: Image.Image,
        cutout: CutoutView,
        *,
        product: ProductIdentity | None = None,
        photo: Image.Image | None = None,
    ) -> CoverChecks:
        """Judge one candidate. ``photo``: the picture as placed on the canvas when it keeps its own background
        (no cut-out); its outer band is then the border band judged (the canvas margin around it is always
        white, so the canvas's own band says nothing about the picture's background)."""
        r = self.rules
        arr = np.asarray(canvas.convert("RGB") if canvas.mode != "RGB" else canvas)
        border = white_share(border_band(arr, r.border_fraction), r.white_level)
        if photo is not None:
            border = min(border, photo_border_share(photo, r))
        judge_size = cutout.object_mask.shape[::-1] if cutout.object_mask is not None else None
        small = canvas if judge_size is None else canvas.resize(judge_size, Image.Resampling.BOX)
        small_arr = np.asarray(small.convert("RGB") if small.mode != "RGB" else small)
        if cutout.object_mask is not None:
            steps = max(1, round(r.edge_tolerance * small_arr.shape[0]))
            near = grow_mask(cutout.object_mask, steps)
            background = white_share(small_arr[~near], r.white_level)
            area_fill = float(cutout.object_mask.mean())
            ys, xs = np.nonzero(cutout.object_mask)
            fill = (max(ys.max() - ys.min(), xs.max() - xs.min()) + 1) / small_arr.shape[0] if ys.size else 0.0
        else:
            background = 1.0
            content = small_arr.min(axis=-1) < r.white_level
            area_fill = float(content.mean())
            ys, xs = np.nonzero(content)
            fill = (max(ys.max() - ys.min(), xs.max() - xs.min()) + 1) / small_arr.shape[0] if ys.size else 0.0
        edges = truncated_edges(cutout.work_mask, r.truncation_min_run) if cutout.work_mask is not None else ()

        failures: list[CheckFailure] = []
        if border < r.min_white_border_share or background < r.min_background_white_share:
            failures.append(
                CheckFailure(
                    COVER_NOT_WHITE,
                    f"white border band {100 * border:.1f} % (min {100 * r.min_white_border_share:g} %), white "
                    f"background away from the object {100 * background:.2f} % "
                    f"(min {100 * r.min_background_white_share:g} %)",
                )
            )
        if edges:
            failures.append(CheckFailure(COVER_TRUNCATED, f"the object runs into the photo's {', '.join(edges)} edge"))
        if cutout.figures is not None:
            failures.extend(_mask_failures(cutout.figures, r))

        text: TextFigures | None = None
        match: ProductMatch | None = None
        # Text is read on every cut-out (a banner that also made the object run into the edge is still reported
        # as text), but not on a picture that keeps its own coloured background: there everything is "object".
        if self.text_detector is not None and (cutout.object_mask is not None or border >= r.min_white_border_share):
            text, text_failure, match = self._read(small, cutout, product)
            if text_failure is not None:
                failures.append(text_failure)
            if match is not None and match.other_model:
                failures.append(
                    CheckFailure(WRONG_PRODUCT, f"the picture names model {match.other_model!r}, not this product's")
                )
        return CoverChecks(
            white_border_share=border,
            background_white_share=background,
            fill=float(fill),
            area_fill=area_fill,
            truncated_edges=edges,
            mask=cutout.figures,
            text=text,
            product=match,
            failures=tuple(failures),
        )

    def _read(
        self, small: Image.Image, cutout: CutoutView, product: ProductIdentity | None
    ) -> tuple[TextFigures, CheckFailure | None, ProductMatch | None]:
        detector = self.text_detector
        assert detector is not None
        started = time.perf_counter()
        copy = detector.reduced(small)
        main = cutout.main_mask
        if main is not None and main.shape != (copy.height, copy.width):
            main = np.asarray(Image.fromarray(main).resize(copy.size, Image.Resampling.NEAREST))
        if main is None:  # no cut-out: the product is whatever is not white on the canvas
            main = np.asarray(copy).min(axis=-1) < self.rules.white_level
        reading = detector.read(copy)
        pixels = np.asarray(copy.convert("RGB") if copy.mode != "RGB" else copy)
        figures, failure = judge_text(reading.lines, pixels, main, self.rules, time.perf_counter() - started)
        match = match_words(figures.words, product) if product is not None else None
        return figures, failure, match
