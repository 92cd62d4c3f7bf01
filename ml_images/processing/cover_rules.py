"""The thresholds of the cover gate (``cover_gate.py``, ``text_rules.py``), in one place."""

from __future__ import annotations

from dataclasses import dataclass


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
