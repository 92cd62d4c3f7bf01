"""``ImageProcessorService``: downloaded candidates of one product → ordered marketplace-ready JPEGs.

Per candidate: decode safely (``decode.py``), refuse what cannot be used, and put the object on a white square
canvas (``canvas.py``).

The main picture (the *cover*) is chosen, not assumed. Candidates are tried as cover in the order given (the
caller ranks them), except that a picture already on a white backdrop goes first: it is separated by a flood fill
from its border (``studio_cutout.py``), no model, cleaner and cheaper. Any other candidate has its background
removed by the model — shrink first, ``BackgroundRemover.remove()`` on the small copy, then the mask on the
full-resolution crop (docs/decisions.md §2: the model sees 320×320 whatever the input). Either mask is cleaned
(``mask_cleanup.py``) and the canvas is judged by the cover gate (``cover_gate.py``: white background, truncation,
one object, a plausible cut-out, no text, the right product). The first candidate that passes becomes order 0;
at most ``cover_attempts`` model runs (and as many flood fills) are spent per product. A candidate that failed
only cover rules may still be a gallery picture; one showing another model (``wrong_product``) may not.

When no candidate passes, the outcome's ``cover_status`` is ``no_compliant_cover``: with ``cover_policy="strict"``
nothing is kept (the caller marks the listing ERROR with the checks that failed); with ``"lenient"`` the pictures
are kept with the best attempt as cover and the outcome is flagged.

Gallery pictures skip the model: about 30-50 ms each.

Thread-safety: the service holds configuration only; each ``process_product`` call has its own de-duplication
state, and the shared ``BackgroundRemover`` and ``TextDetector`` are thread-safe. The pipeline runs two products
at once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

import imagehash
import numpy as np
from PIL import Image

from ml_images.download.results import DownloadedImage
from ml_images.errors import MlImagesError
from ml_images.processing import canvas as cv
from ml_images.processing.background import BackgroundRemover
from ml_images.processing.cover_gate import CoverGate, CoverRules, CutoutView, photo_border_share
from ml_images.processing.cutout import CANVAS_ALPHA_CUTOFF, Cutout, bool_image, from_mask, place_mask, studio_cutout
from ml_images.processing.decode import WHITE, DecodedImage, decode_image
from ml_images.processing.dedupe import DuplicateIndex, perceptual_hash, sha256_hex
from ml_images.processing.left_out import left_out_share
from ml_images.processing.mask_cleanup import MaskCleanup
from ml_images.processing.product_match import ProductIdentity
from ml_images.processing.quality import DEFAULT_DARK_EDGE_THRESHOLD, edge_luminance, kept_fraction
from ml_images.processing.quality_score import quality_score
from ml_images.processing.results import (
    COVER_POLICIES,
    NO_COMPLIANT_COVER,
    WRONG_PRODUCT,
    CoverAttempt,
    CoverChecks,
    ImageRefused,
    ProcessedImage,
    ProcessingOutcome,
)
from ml_images.processing.studio_cutout import Backdrop, StudioSettings, detect_backdrop
from ml_images.processing.text_detection import TextDetector, get_shared_text_detector
from ml_images.refusals import Refusal

log = logging.getLogger(__name__)

# Longest side of the copy the model works on. u2netp's input is 320×320 and its mask is upsampled anyway; 512
# keeps the bounding box within a pixel or two of full resolution at a quarter of the compositing cost of 1000².
REMOVAL_WORKING_SIDE = 512
_PREVIEW_CANVAS = 256  # the main picture's un-removed framing is hashed on a small canvas (same hash, cheaper)
JUDGE_SIDE = 384  # the canvas copy the gate measures and reads text on
_BACKDROP_PROBE_SIDE = 192  # a white backdrop is recognised on a small copy (about a millisecond)
COMPLIANT = "compliant"


@dataclass(frozen=True)
class _Result:
    image: ProcessedImage
    hashes: tuple[imagehash.ImageHash, ...]  # canvas phash first; the main picture adds its un-removed framing


@dataclass(frozen=True)
class CoverTrial:
    """One candidate made into a cover and judged. ``cutout`` is None when no cut-out was made (no remover, the
    removal failed or its mask was rejected); ``object_box`` is the crop of the working copy that was composed."""

    result: _Result
    checks: CoverChecks
    cutout: Cutout | None
    work_size: tuple[int, int]
    object_box: cv.Box | None
    model_ran: bool

    @property
    def image(self) -> ProcessedImage:
        return self.result.image


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
                    cover_status=NO_COMPLIANT_COVER,
                    cover_attempts=attempts,
                    model_runs=model_runs,
                )
            cover = self._lenient_cover(candidates, refusals)
            flagged = True
            if cover is None:
                return ProcessingOutcome(
                    images=[],
                    refusals=refusals,
                    cover_status=NO_COMPLIANT_COVER if attempts else "no_images",
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
            cover_status=NO_COMPLIANT_COVER if flagged else COMPLIANT,
            cover_attempts=attempts,
            cover_flagged=flagged,
            model_runs=model_runs,
        )

    def process_one(
        self, download: DownloadedImage, *, remove_background: bool, product: ProductIdentity | None = None
    ) -> ProcessedImage:
        """One candidate on its own (no de-duplication). ``remove_background=True`` makes it a cover candidate (cut
        out, judged; a failed gate does not raise, see ``cover_checks``); False gives a gallery picture. Raises
        ``ImageRefused``."""
        if remove_background and self.background_remover is None:
            raise ValueError("remove_background=True needs a BackgroundRemover")
        if remove_background:
            return self.trial_cover(download, product=product).image
        decoded = self._decode(download)
        return self._gallery(decoded, download.final_url, sha256_hex(download.data)).image

    def trial_cover(self, download: DownloadedImage, *, product: ProductIdentity | None = None) -> CoverTrial:
        """Make one candidate into a cover and judge it, with the cut-out itself (benchmarks, diagnostics)."""
        decoded = self._decode(download)
        backdrop = self._backdrop(decoded)
        return self._trial(decoded, download.final_url, sha256_hex(download.data), backdrop, product)

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
                refusals.append(Refusal("process", "duplicate", url, f"same bytes as {source_urls[source_hash]}"))
                continue
            source_urls[source_hash] = url
            try:
                decoded = self._decode(download)
            except ImageRefused as exc:
                refusals.append(Refusal("process", exc.reason, url, exc.detail))
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
                trial = self._trial(candidate.decoded, url, candidate.source_hash, candidate.backdrop, product)
            except ImageRefused as exc:
                if candidate.backdrop is None and self.background_remover is not None:
                    model_runs += 1
                candidate.refused = True
                refusals.append(Refusal("process", exc.reason, url, exc.detail))
                attempts.append(CoverAttempt(url, None, None, exc.reason))
                continue
            if trial.model_ran:
                model_runs += 1
            candidate.trial = trial
            attempts.append(CoverAttempt(url, trial.image.background_method, trial.checks))
            if trial.checks.passed:
                return candidate, model_runs
            if WRONG_PRODUCT in trial.checks.failed_codes:
                candidate.refused = True
                refusals.append(Refusal("process", WRONG_PRODUCT, url, _describe(candidate)))
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
                candidate.trial = self._trial(candidate.decoded, url, candidate.source_hash, None, None, cut=False)
            except ImageRefused as exc:
                candidate.refused = True
                refusals.append(Refusal("process", exc.reason, url, exc.detail))
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
                result = self._gallery(
                    candidate.decoded,
                    url,
                    candidate.source_hash,
                    checks=candidate.trial.checks if candidate.trial else None,
                )
            except ImageRefused as exc:
                refusals.append(Refusal("process", exc.reason, url, exc.detail))
                continue
            near = seen.nearest(result.hashes)
            if near is not None:
                index, distance = near
                refusals.append(
                    Refusal("process", "duplicate", url, f"looks like image {index} (phash distance {distance})")
                )
                continue
            seen.add(len(images), result.hashes)
            images.append(result.image)

    # -- one image ---------------------------------------------------------------------------------------------

    def _gallery(
        self, decoded: DecodedImage, url: str, source_hash: str, *, checks: CoverChecks | None = None
    ) -> _Result:
        canvas = self._plain_canvas(decoded)
        border = photo_border_share(decoded.image, self.gate.rules)
        return self._result(canvas, url, source_hash, decoded, (), method=None, border=border, checks=checks)

    def _trial(
        self,
        decoded: DecodedImage,
        url: str,
        source_hash: str,
        backdrop: Backdrop | None,
        product: ProductIdentity | None,
        *,
        cut: bool = True,
    ) -> CoverTrial:
        full = decoded.image
        work = full.convert("RGB") if full.mode != "RGB" else full.copy()
        work.thumbnail((REMOVAL_WORKING_SIDE, REMOVAL_WORKING_SIDE), Image.Resampling.BILINEAR, reducing_gap=2.0)
        trim = cv.content_bbox(work) or (0, 0, work.width, work.height)
        preview = cv.compose(work, _float_box(trim), canvas_size=_PREVIEW_CANVAS, fill_ratio=self.fill_ratio)
        extra = (perceptual_hash(preview),)

        cutout: Cutout | None = None
        model_ran = False
        if cut and backdrop is not None:
            cutout = studio_cutout(work, backdrop, self.studio_settings, self.mask_cleanup)
            if cutout.bbox() is None:
                cutout = None  # nothing but backdrop
        elif cut and self.background_remover is not None:
            model_ran = True
            cutout = self._model_cutout(self.background_remover, work, url)

        removed = rejected = False
        box: cv.Box | None = None
        canvas: Image.Image | None = None
        if cutout is not None:
            fraction = kept_fraction(Image.fromarray(cutout.alpha, "L"))
            bbox = cutout.bbox()
            if bbox is None or not self.mask_min_fraction <= fraction <= self.mask_max_fraction:
                log.info(
                    "background removal rejected for %s: the mask keeps %.1f %% of the pixels (allowed %.0f-%.0f %%)",
                    url,
                    100 * fraction,
                    100 * self.mask_min_fraction,
                    100 * self.mask_max_fraction,
                )
                cutout, rejected = None, True
            else:
                alpha = Image.fromarray(cutout.alpha, "L")
                judged = Image.new("RGB", work.size, WHITE)
                judged.paste(work, mask=alpha)
                self._check_background(judged, "after background removal")
                box = _float_box(bbox)
                scale_x, scale_y = full.width / work.width, full.height / work.height
                full_box = (box[0] * scale_x, box[1] * scale_y, box[2] * scale_x, box[3] * scale_y)
                canvas = cv.compose(
                    full,
                    full_box,
                    canvas_size=self.canvas_size,
                    fill_ratio=self.fill_ratio,
                    alpha=alpha,
                    alpha_crop=box,
                    alpha_cutoff=CANVAS_ALPHA_CUTOFF if cutout.cleaned else 0,
                )
                removed = True
        elif model_ran:
            rejected = True
        if canvas is None:
            canvas = self._plain_canvas(decoded)

        if cutout is not None and box is not None:
            view = CutoutView(
                figures=cutout.figures,
                work_mask=cutout.object_mask,
                object_mask=np.asarray(place_mask(bool_image(cutout.object_mask), box, JUDGE_SIDE, self.fill_ratio))
                >= 128,
                main_mask=np.asarray(place_mask(bool_image(cutout.main), box, JUDGE_SIDE, self.fill_ratio)) >= 128,
            )
        else:
            view = CutoutView(None, None, None, None)
        checks = self.gate.judge(canvas, view, product=product, photo=None if removed else decoded.image)
        method = cutout.method if removed and cutout is not None else None
        result = self._result(
            canvas,
            url,
            source_hash,
            decoded,
            extra,
            method=method,
            border=checks.white_border_share,
            checks=checks,
            removed=removed,
            rejected=rejected,
        )
        return CoverTrial(result, checks, cutout, work.size, box, model_ran)

    def _model_cutout(self, remover: BackgroundRemover, work: Image.Image, url: str) -> Cutout | None:
        try:
            cut = remover.remove(work)
        except MlImagesError:
            raise  # the model is missing or misconfigured: stop the run, do not degrade silently
        except Exception as exc:  # an inference failure on one picture: keep the original instead
            log.warning("background removal failed for %s (%s); keeping the original", url, exc)
            return None
        raw = np.asarray(cut.getchannel("A"))
        cutout = from_mask(remover.model_name, raw, self.mask_cleanup if self.clean_masks else None)
        # A part the model dropped with full confidence leaves no faint alpha to measure: look at the photo.
        share = left_out_share(work, cutout.object_mask)
        return replace(cutout, figures=replace(cutout.figures, left_out_share=share))

    def _result(
        self,
        canvas: Image.Image,
        url: str,
        source_hash: str,
        decoded: DecodedImage,
        extra: tuple[imagehash.ImageHash, ...],
        *,
        method: str | None,
        border: float,
        checks: CoverChecks | None,
        removed: bool = False,
        rejected: bool = False,
    ) -> _Result:
        jpeg = cv.encode_jpeg(canvas, self.jpeg_quality)
        canvas_hash = perceptual_hash(canvas)
        image = ProcessedImage(
            jpeg=jpeg,
            width=canvas.width,
            height=canvas.height,
            content_hash=sha256_hex(jpeg),
            source_hash=source_hash,
            phash=str(canvas_hash),
            source_url=url,
            background_removed=removed,
            removal_rejected=rejected,
            background_method=method,
            cover_checks=checks,
            cover_compliant=checks.passed if checks is not None else None,
            white_border_share=border,
            source_size=decoded.source_size,
            quality_score=quality_score(decoded.source_size, border, checks, method),
        )
        return _Result(image=image, hashes=(canvas_hash, *extra))

    def _check_background(self, image: Image.Image, when: str) -> None:
        luma = edge_luminance(image)
        if luma < self.dark_edge_threshold:
            raise ImageRefused("dark_background", f"edge luminance {luma:.0f} < {self.dark_edge_threshold:g} ({when})")

    def _plain_canvas(self, decoded: DecodedImage) -> Image.Image:
        """No removal: refuse a dark backdrop, trim a near-white border, centre on white.

        A picture with nothing but white (a blank) or with a speck of content in a white field (the typical "no
        image available" placeholder, or a tiny thumbnail pasted on white) is refused rather than blown up."""
        image = decoded.image
        self._check_background(image, "no background removal")
        bbox = cv.content_bbox(image)
        if bbox is None:
            raise ImageRefused("blank", "nothing but white")
        to_source = max(decoded.source_size) / max(image.size)  # decoding may have drafted/reduced the image
        content_side = max(bbox[2] - bbox[0], bbox[3] - bbox[1]) * to_source
        if content_side < self.min_side / 2:
            raise ImageRefused(
                "too_small",
                f"the content is only {content_side:.0f} px across in a white field (min {self.min_side / 2:.0f})",
            )
        return cv.compose(image, _float_box(bbox), canvas_size=self.canvas_size, fill_ratio=self.fill_ratio)


def _names_model(candidate: _Candidate) -> bool:
    product = candidate.trial.checks.product if candidate.trial is not None else None
    return product is not None and product.names_product


def _describe(candidate: _Candidate) -> str:
    checks = candidate.trial.checks if candidate.trial is not None else None
    if checks is None:
        return ""
    return "; ".join(f"{f.code}: {f.detail}" for f in checks.failures)


def _float_box(box: tuple[int, int, int, int]) -> cv.Box:
    return float(box[0]), float(box[1]), float(box[2]), float(box[3])
