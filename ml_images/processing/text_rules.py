"""The text rule of the cover gate (``cover_text``): which lines read on a cover candidate are a violation.

Text lying on the product itself (a brand on the bezel, the keys of a keyboard, a label on a box) is allowed.
What the rule catches is text off the product's largest part or across its outline, text printed on a saturated
patch that runs out over the outline (a badge or banner the cut-out kept with the product), the same text or
slant repeated across the picture (a watermark), and text covering more than a small share of the picture.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

from ml_images.outcomes import ReasonCode
from ml_images.processing.cover_rules import CoverRules
from ml_images.processing.product_match import normalise
from ml_images.processing.results import CheckFailure, TextBox, TextFigures
from ml_images.processing.text_detection import TextLine


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
    failure = CheckFailure(ReasonCode.COVER_TEXT, "; ".join(reasons)) if reasons else None
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
