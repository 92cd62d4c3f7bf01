"""One number per picture, 0-1, for a person (or a sort) to see at a glance how much to trust it.

It weighs what Mercado Libre's moderation looks at: resolution (500 px is the minimum, 1200 px recommended), a
white background (the cover must have one; a gallery picture may not, and scores lower for it), a clean cut-out
(no doubtful regions, islands or holes the clean-up had to fix), and no text. A cover that failed the gate is
capped at half the score it would otherwise get. The figures behind the score are stored beside it; the score
ranks, it decides nothing.
"""

from __future__ import annotations

from ml_images.processing.results import CoverChecks

RECOMMENDED_SIDE = 1200
MINIMUM_SIDE = 500


def resolution_score(source_size: tuple[int, int]) -> float:
    """0 at Mercado Libre's 500 px minimum (longer side), 1 from its recommended 1200 px."""
    longest = max(source_size) if source_size else 0
    return min(1.0, max(0.0, (longest - MINIMUM_SIDE) / (RECOMMENDED_SIDE - MINIMUM_SIDE)))


def quality_score(
    source_size: tuple[int, int], white_border_share: float, checks: CoverChecks | None, method: str | None
) -> float:
    resolution = resolution_score(source_size)
    white = max(0.0, min(1.0, white_border_share))
    cutout = 1.0 if method is not None else 0.85  # the picture's own background: fine in the gallery only
    text = 1.0
    if checks is not None:
        white = min(white, checks.background_white_share)
        if checks.mask is not None:
            m = checks.mask
            repaired = min(1.0, m.island_share + m.hole_share)
            cutout = max(0.0, 1.0 - 10 * m.doubtful_share - 0.5 * repaired - 0.5 * max(0.0, 0.6 - m.core_share))
        if checks.text is not None:
            text = max(0.0, 1.0 - 10 * checks.text.text_share - 100 * checks.text.off_object_share)
    score = 0.3 * resolution + 0.3 * white + 0.25 * cutout + 0.15 * text
    if checks is not None and not checks.passed:
        score *= 0.5
    return round(score, 3)
