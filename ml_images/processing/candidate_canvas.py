"""One candidate made into a canvas: a gallery picture on a plain canvas, or a cover cut out and judged.

A cover candidate on a white backdrop is separated by a flood fill from its border (``studio_cutout.py``); any
other has its background removed by the model — shrink first, ``BackgroundRemover.remove()`` on the small copy,
then the mask on the full-resolution crop (docs/decisions.md §2: the model sees 320×320 whatever the input). Either
mask is cleaned (``mask_cleanup.py``) and the canvas is judged by the cover gate (``cover_gate.py``). Which
candidates are tried, and in which order, is ``processor.py``'s business.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import imagehash
import numpy as np
from PIL import Image

from ml_images.errors import MlImagesError
from ml_images.outcomes import ReasonCode, Refused
from ml_images.processing import canvas as cv
from ml_images.processing.background import BackgroundRemover
from ml_images.processing.colour_refine import ColourRefine, refine_mask
from ml_images.processing.cover_gate import CoverGate, CutoutView, photo_border_share
from ml_images.processing.cutout import CANVAS_ALPHA_CUTOFF, Cutout, bool_image, from_mask, place_mask, studio_cutout
from ml_images.processing.decode import WHITE, DecodedImage
from ml_images.processing.dedupe import perceptual_hash, sha256_hex
from ml_images.processing.left_out import left_out_share
from ml_images.processing.mask_cleanup import MaskCleanup
from ml_images.processing.product_match import ProductIdentity
from ml_images.processing.quality import edge_luminance, kept_fraction
from ml_images.processing.quality_score import quality_score
from ml_images.processing.results import CoverChecks, ProcessedImage
from ml_images.processing.studio_cutout import Backdrop, StudioSettings

log = logging.getLogger(__name__)

# Longest side of the copy the model works on. u2netp's input is 320×320 and its mask is upsampled anyway; 512
# keeps the bounding box within a pixel or two of full resolution at a quarter of the compositing cost of 1000².
REMOVAL_WORKING_SIDE = 512
_PREVIEW_CANVAS = 256  # the main picture's un-removed framing is hashed on a small canvas (same hash, cheaper)
JUDGE_SIDE = 384  # the canvas copy the gate measures and reads text on


@dataclass(frozen=True)
class CanvasResult:
    image: ProcessedImage
    hashes: tuple[imagehash.ImageHash, ...]  # canvas phash first; the main picture adds its un-removed framing


@dataclass(frozen=True)
class CoverTrial:
    """One candidate made into a cover and judged. ``cutout`` is None when no cut-out was made (no remover, the
    removal failed or its mask was rejected); ``object_box`` is the crop of the working copy that was composed."""

    result: CanvasResult
    checks: CoverChecks
    cutout: Cutout | None
    work_size: tuple[int, int]
    object_box: cv.Box | None
    model_ran: bool

    @property
    def image(self) -> ProcessedImage:
        return self.result.image


@dataclass(frozen=True)
class CanvasMaker:
    """The configuration of one ``ImageProcessorService`` that turns a decoded candidate into a canvas (see its
    docstring for the meaning of each setting)."""

    background_remover: BackgroundRemover | None
    gate: CoverGate
    canvas_size: int
    fill_ratio: float
    min_side: int
    jpeg_quality: int
    mask_min_fraction: float
    mask_max_fraction: float
    dark_edge_threshold: float
    clean_masks: bool
    mask_cleanup: MaskCleanup
    studio_settings: StudioSettings
    colour_refine: ColourRefine | None = None

    def gallery(
        self, decoded: DecodedImage, url: str, source_hash: str, *, checks: CoverChecks | None = None
    ) -> CanvasResult:
        canvas = self.plain_canvas(decoded)
        border = photo_border_share(decoded.image, self.gate.rules)
        return self._result(canvas, url, source_hash, decoded, (), method=None, border=border, checks=checks)

    def trial(
        self,
        decoded: DecodedImage,
        url: str,
        source_hash: str,
        backdrop: Backdrop | None,
        product: ProductIdentity | None,
        *,
        cut: bool = True,
    ) -> CoverTrial:
        """Cut the candidate out (flood fill on a backdrop, else the model when there is one), compose and judge
        it. ``cut=False``: the picture as it is on a plain canvas, judged."""
        full = decoded.image
        work = full.convert("RGB") if full.mode != "RGB" else full.copy()
        work.thumbnail((REMOVAL_WORKING_SIDE, REMOVAL_WORKING_SIDE), Image.Resampling.BILINEAR, reducing_gap=2.0)
        trim = cv.content_bbox(work) or (0, 0, work.width, work.height)
        preview = cv.compose(work, float_box(trim), canvas_size=_PREVIEW_CANVAS, fill_ratio=self.fill_ratio)
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
                box = float_box(bbox)
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
            canvas = self.plain_canvas(decoded)

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

    def plain_canvas(self, decoded: DecodedImage) -> Image.Image:
        """No removal: refuse a dark backdrop, trim a near-white border, centre on white.

        A picture with nothing but white (a blank) or with a speck of content in a white field (the typical "no
        image available" placeholder, or a tiny thumbnail pasted on white) is refused rather than blown up."""
        image = decoded.image
        self._check_background(image, "no background removal")
        bbox = cv.content_bbox(image)
        if bbox is None:
            raise Refused(ReasonCode.BLANK, "nothing but white")
        to_source = max(decoded.source_size) / max(image.size)  # decoding may have drafted/reduced the image
        content_side = max(bbox[2] - bbox[0], bbox[3] - bbox[1]) * to_source
        if content_side < self.min_side / 2:
            raise Refused(
                ReasonCode.TOO_SMALL,
                f"the content is only {content_side:.0f} px across in a white field (min {self.min_side / 2:.0f})",
            )
        return cv.compose(image, float_box(bbox), canvas_size=self.canvas_size, fill_ratio=self.fill_ratio)

    def _model_cutout(self, remover: BackgroundRemover, work: Image.Image, url: str) -> Cutout | None:
        try:
            cut = remover.remove(work)
        except MlImagesError:
            raise  # the model is missing or misconfigured: stop the run, do not degrade silently
        except Exception as exc:  # an inference failure on one picture: keep the original instead
            log.warning("background removal failed for %s (%s); keeping the original", url, exc)
            return None
        raw = np.asarray(cut.getchannel("A"))
        cleanup = self.mask_cleanup if self.clean_masks else None
        cutout = from_mask(remover.model_name, raw, cleanup)
        # A part the model dropped with full confidence leaves no faint alpha to measure: look at the photo. Measured
        # on the model's own cut-out, before the colour refinement: like doubt, it judges what the model did (and
        # the refinement nibbling at the edge where a part was dropped must not hide the drop).
        share = left_out_share(work, cutout.object_mask)
        if self.colour_refine is not None and cleanup is not None:
            # Backdrop the model kept with confidence beside the outline: the photo's colours take it back.
            removed = refine_mask(work, cutout.object_mask, self.colour_refine)
            if removed is not None:
                refined = np.where(removed, np.uint8(0), raw)
                cutout = replace(from_mask(remover.model_name, refined, cleanup), raw=raw)
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
    ) -> CanvasResult:
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
        return CanvasResult(image=image, hashes=(canvas_hash, *extra))

    def _check_background(self, image: Image.Image, when: str) -> None:
        luma = edge_luminance(image)
        if luma < self.dark_edge_threshold:
            raise Refused(
                ReasonCode.DARK_BACKGROUND, f"edge luminance {luma:.0f} < {self.dark_edge_threshold:g} ({when})"
            )


def float_box(box: tuple[int, int, int, int]) -> cv.Box:
    return float(box[0]), float(box[1]), float(box[2]), float(box[3])
