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
a candidate that keeps its own coloured background fails ``cover_not_white`` without it. Thresholds:
``cover_rules.py``; the text rule: ``text_rules.py``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ml_images.outcomes import ReasonCode
from ml_images.processing.cover_rules import CoverRules
from ml_images.processing.mask_cleanup import grow as grow_mask
from ml_images.processing.product_match import ProductIdentity, match_words
from ml_images.processing.results import (
    CheckFailure,
    CoverChecks,
    MaskFigures,
    ProductMatch,
    TextFigures,
)
from ml_images.processing.text_detection import TextDetector
from ml_images.processing.text_rules import judge_text

__all__ = ["CoverGate", "CoverRules", "CutoutView", "judge_text", "photo_border_share"]


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


def _mask_failures(figures: MaskFigures, rules: CoverRules) -> list[CheckFailure]:
    failures = []
    if figures.second_object_ratio >= rules.max_second_object_ratio:
        failures.append(
            CheckFailure(
                ReasonCode.COVER_MULTIPLE_OBJECTS,
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
        failures.append(CheckFailure(ReasonCode.COVER_MASK, "; ".join(reasons)))
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
                    ReasonCode.COVER_NOT_WHITE,
                    f"white border band {100 * border:.1f} % (min {100 * r.min_white_border_share:g} %), white "
                    f"background away from the object {100 * background:.2f} % "
                    f"(min {100 * r.min_background_white_share:g} %)",
                )
            )
        if edges:
            failures.append(
                CheckFailure(ReasonCode.COVER_TRUNCATED, f"the object runs into the photo's {', '.join(edges)} edge")
            )
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
                    CheckFailure(
                        ReasonCode.WRONG_PRODUCT, f"the picture names model {match.other_model!r}, not this product's"
                    )
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
