"""What image processing hands to storage: the pictures, the checks that judged them, and the refusals."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ml_images.outcomes import ReasonCode, Refusal

# The reason codes of the cover gate's rules, of the product check and of a product without a compliant cover are
# ``ReasonCode`` members (``COVER_*``, ``WRONG_PRODUCT``, ``NO_COMPLIANT_COVER``); a refused candidate raises
# ``ml_images.outcomes.Refused``.

#: When no candidate passes the cover gate, ``strict`` keeps nothing (the listing goes to ERROR) and ``lenient``
#: keeps the pictures, flagged.
COVER_POLICIES = ("strict", "lenient")

# How the background of a cover was separated (``ProcessedImage.background_method``); a model name otherwise.
STUDIO_METHOD = "studio"


@dataclass(frozen=True)
class MaskFigures:
    """What the cut-out looks like, measured on the working copy (longest side ~512 px).

    Shares are of the kept object's area unless said otherwise; a person reads them to judge a cut-out.
    """

    kept_share: float  # of the whole picture, after clean-up (alpha >= 50 %)
    doubtful_share: float  # pixels the remover was unsure about (faint alpha) away from the kept outline
    islands_dropped: int
    island_share: float  # dropped islands' area
    holes_filled: int
    hole_share: float  # filled holes' area
    objects: int  # separate parts that were kept (islands much smaller than the main one are dropped)
    second_object_ratio: float  # area of the second-largest kept part / the largest (0 when one part)
    fragment_share: float  # area of every kept part but the largest
    core_share: float  # share that survives an erosion by 3 % of the object's size (low = thin remnants)
    box_fill: float  # area / area of its bounding box (low = the box mostly emptied)
    # next to the cut-out in the object's colours, not the backdrop's: a part the model left out (``left_out.py``)
    left_out_share: float = 0.0
    props_removed: int = 0  # separate parts of moderate size beside the largest, dropped (one item only)
    prop_share: float = 0.0  # their area

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TextBox:
    """One line of text found on a cover candidate (canvas coordinates of the detection copy, 0-1)."""

    text: str  # "" when recognition did not run on it
    score: float  # recognition confidence (0 when not recognised)
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 of the detected quadrilateral, as shares of the side
    area_share: float  # of the canvas
    on_object: float  # share of the box (with a margin) lying on the object
    angle: float  # degrees from horizontal, -90..90
    sticker: bool = False  # printed on a saturated patch (badge, banner) that runs out over the object's outline

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TextFigures:
    """Text, logos and watermarks found on a cover candidate and how they were judged."""

    lines: tuple[TextBox, ...]
    text_share: float  # all text lines together, share of the canvas
    off_object_share: float  # text lying on the background or across the object's outline, share of the canvas
    repeated: int  # largest group of lines repeating one text or one slant (a watermark)
    words: tuple[str, ...]  # what was read, in reading order
    seconds: float  # detection + recognition time

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "lines": [line.to_dict() for line in self.lines]}


@dataclass(frozen=True)
class ProductMatch:
    """Words read on a picture against the product's identity (normalised: case, accents, separators)."""

    brand_named: bool = False
    model_named: bool = False
    sku_named: bool = False
    gtin_named: bool = False
    other_model: str | None = None  # a model number of the same brand that is not this product's

    @property
    def names_product(self) -> bool:
        return self.model_named or self.sku_named or self.gtin_named

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CheckFailure:
    """One failed rule: its reason code and the measured values, in words."""

    code: str
    detail: str

    def __post_init__(self) -> None:
        # A plain str, never the enum member: these figures reach Dagster metadata, whose serialiser refuses enums.
        object.__setattr__(self, "code", str(self.code))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CoverChecks:
    """The cover gate's measurements on one candidate and the rules it failed (empty = a compliant cover)."""

    white_border_share: float  # outer band of the final canvas that is pure white (>= 250 in every channel)
    background_white_share: float  # canvas pixels away from the object that are pure white (haze, ghosts)
    fill: float  # longer side of the object's box / canvas side
    area_fill: float  # object area / canvas area
    truncated_edges: tuple[str, ...]  # source-photo edges the object runs into ("left", "top", ...)
    mask: MaskFigures | None  # None when no cut-out was made (the picture's own background is kept)
    text: TextFigures | None  # None when text detection did not run (disabled, or an earlier rule failed)
    product: ProductMatch | None
    failures: tuple[CheckFailure, ...] = ()

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def failed_codes(self) -> tuple[str, ...]:
        return tuple(f.code for f in self.failures)

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "failed": list(self.failed_codes),
            "failures": [f.to_dict() for f in self.failures],
            "white_border_share": self.white_border_share,
            "background_white_share": self.background_white_share,
            "fill": self.fill,
            "area_fill": self.area_fill,
            "truncated_edges": list(self.truncated_edges),
            "mask": self.mask.to_dict() if self.mask else None,
            "text": self.text.to_dict() if self.text else None,
            "product": self.product.to_dict() if self.product else None,
        }


@dataclass(frozen=True)
class ProcessedImage:
    """A marketplace-ready JPEG (white square canvas) and what the record needs about it.

    ``background_method`` says how the background was separated: ``"studio"`` (a white backdrop, flood-filled
    from the border, no model), a rembg model name, or None (the picture's own background is kept).
    ``cover_checks`` is set on every picture that was judged as a cover candidate (the main picture, and a gallery
    picture that failed as cover); ``cover_compliant`` is None for a picture never judged as a cover.
    """

    jpeg: bytes
    width: int
    height: int
    content_hash: str  # sha256 hex of ``jpeg``
    source_hash: str  # sha256 hex of the downloaded bytes
    phash: str  # imagehash phash of the normalised output (hex)
    source_url: str
    background_removed: bool = False
    removal_rejected: bool = False  # removal ran but the mask failed the sanity gate; original kept
    background_method: str | None = None
    cover_checks: CoverChecks | None = None
    cover_compliant: bool | None = None
    white_border_share: float = 1.0  # measured on every picture (a gallery picture may show context)
    source_size: tuple[int, int] = (0, 0)  # width × height of the downloaded picture
    quality_score: float = 0.0  # 0-1, see ``quality_score.py``

    def checks_dict(self) -> dict[str, Any]:
        """The figures a person needs to trust this picture, JSON-ready (for records and metadata)."""
        return {
            "background_removed": self.background_removed,
            "background_method": self.background_method,
            "removal_rejected": self.removal_rejected,
            "cover_compliant": self.cover_compliant,
            "white_border_share": round(self.white_border_share, 4),
            "source_size": list(self.source_size),
            "quality_score": round(self.quality_score, 3),
            "cover": self.cover_checks.to_dict() if self.cover_checks else None,
        }


@dataclass(frozen=True)
class CoverAttempt:
    """One candidate tried as the cover: whether it passed and why not."""

    url: str
    background_method: str | None
    checks: CoverChecks | None  # None when the candidate was refused before it could be judged
    refused: str | None = None  # reason code when the candidate itself was unusable (``dark_background``, ...)

    @property
    def passed(self) -> bool:
        return self.refused is None and self.checks is not None and self.checks.passed

    @property
    def failed_codes(self) -> tuple[str, ...]:
        if self.refused is not None:
            return (self.refused,)
        return self.checks.failed_codes if self.checks is not None else ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "background_method": self.background_method,
            "passed": self.passed,
            "failed": list(self.failed_codes),
            "refused": self.refused,
            "checks": self.checks.to_dict() if self.checks else None,
        }


@dataclass(frozen=True)
class ProcessingOutcome:
    """The ordered images of one product (index 0 is the main picture) and the refusals on the way.

    ``cover_status``: ``"compliant"`` (images[0] passed the cover gate), ``"no_compliant_cover"`` (no candidate
    passed; under the strict policy ``images`` is empty, under the lenient one images[0] is the best attempt and
    ``cover_flagged`` is True), or ``"no_images"`` (nothing survived decoding). ``cover_attempts`` lists every
    candidate tried as the cover, in the order tried, with the checks it failed; ``model_runs`` counts the
    background-removal runs spent on them.
    """

    images: list[ProcessedImage]
    refusals: list[Refusal] = field(default_factory=list)
    cover_status: str = "no_images"
    cover_attempts: list[CoverAttempt] = field(default_factory=list)
    cover_flagged: bool = False
    model_runs: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "cover_status", str(self.cover_status))  # a plain str, as ``CheckFailure.code``

    @property
    def reason_code(self) -> str | None:
        """``no_compliant_cover`` when no candidate passed the cover gate, else None."""
        no_cover = ReasonCode.NO_COMPLIANT_COVER.value
        return no_cover if self.cover_status == no_cover else None

    @property
    def failed_checks(self) -> list[str]:
        """Every cover rule that failed on some attempt, most frequent first (for the listing's error reason)."""
        counts: dict[str, int] = {}
        for attempt in self.cover_attempts:
            for code in attempt.failed_codes:
                counts[code] = counts.get(code, 0) + 1
        return sorted(counts, key=lambda code: -counts[code])
