"""``ImageProcessorService``: downloaded candidates of one product → ordered marketplace-ready JPEGs.

Per candidate: decode safely (``decode.py``), refuse what cannot be used, and put the object on a white square
canvas (``canvas.py``).

The main picture (the *cover*) is chosen, not assumed. Candidates are tried as cover in the order given (the
caller ranks them), except that a picture already on a white backdrop goes first: it is separated by a flood fill
from its border, no model, cleaner and cheaper. How one candidate is cut out, composed and judged is
``candidate_canvas.py``. The first candidate that passes the gate becomes order 0; at most ``cover_attempts``
model runs (and as many flood fills) are spent per product. A candidate that failed only cover rules may still be
a gallery picture; one showing another model (``wrong_product``) may not.

When no candidate passes, the outcome's ``cover_status`` is ``no_compliant_cover``: with ``cover_policy="strict"``
nothing is kept (the caller marks the listing ERROR with the checks that failed); with ``"lenient"`` the pictures
are kept with the best attempt as cover and the outcome is flagged.

Gallery pictures skip the model: about 30-50 ms each.

Length (~370 lines, over the usual 300): one class whose steps — decode every candidate, choose the cover, the
lenient fallback, fill the gallery — share its configuration and one product's candidates; half of it is the
validated constructor. The work on one image is in ``candidate_canvas.py``.

Thread-safety: the service holds configuration only; each ``process_product`` call has its own de-duplication
state, and the shared ``BackgroundRemover`` and ``TextDetector`` are thread-safe. The pipeline runs two products
at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ml_images.download.results import DownloadedImage
from ml_images.outcomes import ReasonCode, Refusal, Refused
from ml_images.processing import canvas as cv
from ml_images.processing.background import BackgroundRemover
from ml_images.processing.candidate_canvas import JUDGE_SIDE, CanvasMaker, CoverTrial
from ml_images.processing.colour_refine import DEFAULT_COLOUR_REFINE, ColourRefine
from ml_images.processing.cover_gate import CoverGate, CoverRules
from ml_images.processing.decode import DecodedImage, decode_image
from ml_images.processing.dedupe import DuplicateIndex, sha256_hex
from ml_images.processing.mask_cleanup import MaskCleanup
from ml_images.processing.product_match import ProductIdentity
from ml_images.processing.quality import DEFAULT_DARK_EDGE_THRESHOLD
from ml_images.processing.results import COVER_POLICIES, CoverAttempt, ProcessedImage, ProcessingOutcome
from ml_images.processing.studio_cutout import Backdrop, StudioSettings, detect_backdrop
from ml_images.processing.text_detection import TextDetector, get_shared_text_detector

__all__ = ["COMPLIANT", "JUDGE_SIDE", "CoverTrial", "ImageProcessorService"]

_BACKDROP_PROBE_SIDE = 192  # a white backdrop is recognised on a small copy (about a millisecond)
COMPLIANT = "compliant"


@dataclass
class _Candidate:
    index: int
    download: DownloadedImage
    source_hash: str
    decoded: DecodedImage
    backdrop: Backdrop | None
    trial: CoverTrial | None = None
    refused: bool = False


class ImageProcessorService:
    """Turns one product's downloads into at most ``max_images`` canvases, the judged cover first.

    ``dark_edge_threshold`` is the mean luma (0-255) of the outer 4 % band below which a photo is refused as
    ``dark_background`` (default 60; see ``quality.py``). A background-removed picture is judged after removal.

    ``cover_policy``: ``"strict"`` (no compliant cover → nothing kept) or ``"lenient"`` (keep and flag).
    ``cover_attempts``: model runs per product while looking for a compliant cover (also the number of studio
    flood fills). ``text_detector``: None uses the process's shared one; ``detect_text=False`` skips the text rule.
    ``clean_masks=False`` and ``studio_cutouts=False`` give the cut-outs of the original path (for comparison).
    ``colour_refine``: the colour refinement of model cut-outs (``colour_refine.py``); None skips it.
    """

    def __init__(
        self,
        background_remover: BackgroundRemover | None,
        *,
        canvas_size: int = 1200,
        fill_ratio: float = 0.9,
        min_side: int = 500,
        max_pixels: int = 40_000_000,
        jpeg_quality: int = 90,
        phash_distance: int = 8,
        mask_min_fraction: float = 0.05,
        mask_max_fraction: float = 0.98,
        dark_edge_threshold: float = DEFAULT_DARK_EDGE_THRESHOLD,
        cover_policy: str = "strict",
        cover_attempts: int = 3,
        cover_rules: CoverRules | None = None,
        text_detector: TextDetector | None = None,
        detect_text: bool = True,
        clean_masks: bool = True,
        studio_cutouts: bool = True,
        mask_cleanup: MaskCleanup | None = None,
        studio_settings: StudioSettings | None = None,
        colour_refine: ColourRefine | None = DEFAULT_COLOUR_REFINE,
    ) -> None:
        if canvas_size < 16:
            raise ValueError(f"canvas_size must be >= 16, got {canvas_size}")
        if not 0.1 <= fill_ratio <= 1.0:
            raise ValueError(f"fill_ratio must be within 0.1-1.0, got {fill_ratio}")
        if not 1 <= jpeg_quality <= 95:
            raise ValueError(f"jpeg_quality must be within 1-95, got {jpeg_quality}")
        if not 0.0 <= mask_min_fraction < mask_max_fraction <= 1.0:
            raise ValueError("need 0 <= mask_min_fraction < mask_max_fraction <= 1")
        if min_side < 1 or max_pixels < 1 or phash_distance < 0:
            raise ValueError("min_side and max_pixels must be positive, phash_distance >= 0")
        if cover_policy not in COVER_POLICIES:
            raise ValueError(f"cover_policy must be one of {', '.join(COVER_POLICIES)}, got {cover_policy!r}")
        if cover_attempts < 1:
            raise ValueError(f"cover_attempts must be >= 1, got {cover_attempts}")
        self.background_remover = background_remover
        self.canvas_size = canvas_size
        self.fill_ratio = fill_ratio
        self.min_side = min_side
        self.max_pixels = max_pixels
        self.jpeg_quality = jpeg_quality
        self.phash_distance = phash_distance
        self.mask_min_fraction = mask_min_fraction
        self.mask_max_fraction = mask_max_fraction
        self.dark_edge_threshold = dark_edge_threshold
        self.cover_policy = cover_policy
        self.cover_attempts = cover_attempts
        self.clean_masks = clean_masks
        self.studio_cutouts = studio_cutouts
        self.mask_cleanup = mask_cleanup or MaskCleanup()
        self.studio_settings = studio_settings or StudioSettings()
        detector = (text_detector or get_shared_text_detector()) if detect_text else None
        self.gate = CoverGate(cover_rules, detector)
        self.maker = CanvasMaker(
            background_remover=background_remover,
            gate=self.gate,
            canvas_size=canvas_size,
            fill_ratio=fill_ratio,
            min_side=min_side,
            jpeg_quality=jpeg_quality,
            mask_min_fraction=mask_min_fraction,
            mask_max_fraction=mask_max_fraction,
            dark_edge_threshold=dark_edge_threshold,
            clean_masks=clean_masks,
            mask_cleanup=self.mask_cleanup,
            studio_settings=self.studio_settings,
            colour_refine=colour_refine,
        )

    # -- one product -------------------------------------------------------------------------------------------

    def process_product(
        self, downloads: Sequence[DownloadedImage], max_images: int = 5, *, product: ProductIdentity | None = None
    ) -> ProcessingOutcome:
        """Choose and judge the cover, then fill the gallery in the given order until ``max_images`` are kept.

        Configuration errors (``ModelNotInstalledError``) propagate; per-image problems become refusals, failed
        cover rules become ``cover_attempts`` entries (and refusals when nothing is kept)."""
        refusals: list[Refusal] = []
        candidates = self._decode_all(downloads, refusals)
        if not candidates:
            return ProcessingOutcome(images=[], refusals=refusals, cover_status="no_images")

        attempts: list[CoverAttempt] = []
        cover, model_runs = self._choose_cover(candidates, attempts, refusals, product)
        flagged = False
        if cover is None:
            if self.cover_policy == "strict":
                for candidate in candidates:
                    if candidate.trial is not None and not candidate.refused:
                        code = candidate.trial.checks.failures[0].code
                        url = candidate.download.final_url
                        refusals.append(Refusal("process", code, url, _describe(candidate)))
                return ProcessingOutcome(
                    images=[],
                    refusals=refusals,
                    cover_status=ReasonCode.NO_COMPLIANT_COVER,
                    cover_attempts=attempts,
                    model_runs=model_runs,
                )
            cover = self._lenient_cover(candidates, refusals)
            flagged = True
            if cover is None:
                return ProcessingOutcome(
                    images=[],
                    refusals=refusals,
                    cover_status=ReasonCode.NO_COMPLIANT_COVER if attempts else "no_images",
                    cover_attempts=attempts,
                    model_runs=model_runs,
                )

        assert cover.trial is not None  # a chosen cover has always been made into one
        images = [cover.trial.result.image]
        seen = DuplicateIndex(self.phash_distance)
        seen.add(0, cover.trial.result.hashes)
        self._fill_gallery(candidates, cover, images, seen, refusals, max_images)
        return ProcessingOutcome(
            images=images,
            refusals=refusals,
            cover_status=ReasonCode.NO_COMPLIANT_COVER if flagged else COMPLIANT,
            cover_attempts=attempts,
            cover_flagged=flagged,
            model_runs=model_runs,
        )

    def process_one(
        self, download: DownloadedImage, *, remove_background: bool, product: ProductIdentity | None = None
    ) -> ProcessedImage:
        """One candidate on its own (no de-duplication). ``remove_background=True`` makes it a cover candidate (cut
        out, judged; a failed gate does not raise, see ``cover_checks``); False gives a gallery picture. Raises
        ``Refused``."""
        if remove_background and self.background_remover is None:
            raise ValueError("remove_background=True needs a BackgroundRemover")
        if remove_background:
            return self.trial_cover(download, product=product).image
        decoded = self._decode(download)
        return self.maker.gallery(decoded, download.final_url, sha256_hex(download.data)).image

    def trial_cover(self, download: DownloadedImage, *, product: ProductIdentity | None = None) -> CoverTrial:
        """Make one candidate into a cover and judge it, with the cut-out itself (benchmarks, diagnostics)."""
        decoded = self._decode(download)
        backdrop = self._backdrop(decoded)
        return self.maker.trial(decoded, download.final_url, sha256_hex(download.data), backdrop, product)

    # -- steps of a product --------------------------------------------------------------------------------------

    def _decode(self, download: DownloadedImage) -> DecodedImage:
        return decode_image(
            download.data,
            min_side=self.min_side,
            max_pixels=self.max_pixels,
            fit_box=cv.object_box_side(self.canvas_size, self.fill_ratio),
        )

    def _decode_all(self, downloads: Sequence[DownloadedImage], refusals: list[Refusal]) -> list[_Candidate]:
        candidates: list[_Candidate] = []
        source_urls: dict[str, str] = {}
        for index, download in enumerate(downloads):
            url = download.final_url
            source_hash = sha256_hex(download.data)
            if source_hash in source_urls:
                refusals.append(
                    Refusal("process", ReasonCode.DUPLICATE, url, f"same bytes as {source_urls[source_hash]}")
                )
                continue
            source_urls[source_hash] = url
            try:
                decoded = self._decode(download)
            except Refused as exc:
                refusals.append(exc.at("process", url))
                continue
            candidates.append(_Candidate(index, download, source_hash, decoded, self._backdrop(decoded)))
        return candidates

    def _backdrop(self, decoded: DecodedImage) -> Backdrop | None:
        if not self.studio_cutouts:
            return None
        image = decoded.image
        factor = max(1, max(image.size) // _BACKDROP_PROBE_SIDE)
        probe = image.reduce(factor) if factor > 1 else image
        return detect_backdrop(probe, self.studio_settings)

    def _choose_cover(
        self,
        candidates: list[_Candidate],
        attempts: list[CoverAttempt],
        refusals: list[Refusal],
        product: ProductIdentity | None,
    ) -> tuple[_Candidate | None, int]:
        """Try candidates as cover, studio pictures first; the first that passes is the cover."""
        order = [c for c in candidates if c.backdrop is not None] + [c for c in candidates if c.backdrop is None]
        model_runs = studio_runs = plain_runs = 0
        for candidate in order:
            if candidate.backdrop is not None:
                if studio_runs >= self.cover_attempts:
                    continue
                studio_runs += 1
            elif self.background_remover is not None:
                if model_runs >= self.cover_attempts:
                    continue
            else:
                if plain_runs >= self.cover_attempts:
                    continue
                plain_runs += 1
            url = candidate.download.final_url
            try:
                trial = self.maker.trial(candidate.decoded, url, candidate.source_hash, candidate.backdrop, product)
            except Refused as exc:
                if candidate.backdrop is None and self.background_remover is not None:
                    model_runs += 1
                candidate.refused = True
                refusals.append(exc.at("process", url))
                attempts.append(CoverAttempt(url, None, None, exc.reason))
                continue
            if trial.model_ran:
                model_runs += 1
            candidate.trial = trial
            attempts.append(CoverAttempt(url, trial.image.background_method, trial.checks))
            if trial.checks.passed:
                return candidate, model_runs
            if ReasonCode.WRONG_PRODUCT in trial.checks.failed_codes:
                candidate.refused = True
                refusals.append(Refusal("process", ReasonCode.WRONG_PRODUCT, url, _describe(candidate)))
        return None, model_runs

    def _lenient_cover(self, candidates: list[_Candidate], refusals: list[Refusal]) -> _Candidate | None:
        """No compliant cover: the attempt that failed the fewest rules (earliest on ties), else the first usable
        candidate as it is."""
        tried = [c for c in candidates if c.trial is not None and not c.refused]
        if tried:
            return min(tried, key=lambda c: (len(c.trial.checks.failures) if c.trial else 99, c.index))
        for candidate in candidates:
            if candidate.refused:
                continue
            url = candidate.download.final_url
            try:
                candidate.trial = self.maker.trial(candidate.decoded, url, candidate.source_hash, None, None, cut=False)
            except Refused as exc:
                candidate.refused = True
                refusals.append(exc.at("process", url))
                continue
            return candidate
        return None

    def _fill_gallery(
        self,
        candidates: list[_Candidate],
        cover: _Candidate,
        images: list[ProcessedImage],
        seen: DuplicateIndex,
        refusals: list[Refusal],
        max_images: int,
    ) -> None:
        """The other candidates in the given order (a tried candidate that names the product's model first), each
        on a plain canvas, refusing duplicates of what is already kept."""
        rest = [c for c in candidates if c is not cover and not c.refused]
        rest.sort(key=lambda c: (not _names_model(c), c.index))
        for candidate in rest:
            if len(images) >= max_images:
                break
            url = candidate.download.final_url
            try:
                result = self.maker.gallery(
                    candidate.decoded,
                    url,
                    candidate.source_hash,
                    checks=candidate.trial.checks if candidate.trial else None,
                )
            except Refused as exc:
                refusals.append(exc.at("process", url))
                continue
            near = seen.nearest(result.hashes)
            if near is not None:
                index, distance = near
                refusals.append(
                    Refusal(
                        "process", ReasonCode.DUPLICATE, url, f"looks like image {index} (phash distance {distance})"
                    )
                )
                continue
            seen.add(len(images), result.hashes)
            images.append(result.image)


def _names_model(candidate: _Candidate) -> bool:
    product = candidate.trial.checks.product if candidate.trial is not None else None
    return product is not None and product.names_product


def _describe(candidate: _Candidate) -> str:
    checks = candidate.trial.checks if candidate.trial is not None else None
    if checks is None:
        return ""
    return "; ".join(f"{f.code}: {f.detail}" for f in checks.failures)
