"""``ImageProcessorService``: downloaded candidates of one product → ordered marketplace-ready JPEGs.

Per candidate: decode safely (``decode.py``), refuse what cannot be used, and put the object on a white square
canvas (``canvas.py``). The main picture — the first candidate that survives every check — also has its
background removed: shrink first, then ``BackgroundRemover.remove()`` on the small copy, then apply the mask to
the full-resolution crop (compute-limits.md §2: the model sees 320×320 whatever the input, so a large input only
adds resize and compositing time). Later pictures skip the model: about 30-50 ms each.

Thread-safety: the service holds configuration only; each ``process_product`` call has its own de-duplication
state, and the shared ``BackgroundRemover`` is thread-safe. The pipeline runs two products at once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import imagehash
from PIL import Image

from ml_images.download.results import DownloadedImage
from ml_images.errors import MlImagesError
from ml_images.processing import canvas as cv
from ml_images.processing.background import BackgroundRemover
from ml_images.processing.decode import WHITE, DecodedImage, decode_image
from ml_images.processing.dedupe import DuplicateIndex, perceptual_hash, sha256_hex
from ml_images.processing.quality import DEFAULT_DARK_EDGE_THRESHOLD, edge_luminance, kept_fraction
from ml_images.processing.results import ImageRefused, ProcessedImage, ProcessingOutcome
from ml_images.refusals import Refusal

log = logging.getLogger(__name__)

# Longest side of the copy the model works on. u2netp's input is 320×320 and its mask is upsampled anyway; 512
# keeps the bounding box within a pixel or two of full resolution at a quarter of the compositing cost of 1000².
REMOVAL_WORKING_SIDE = 512
_PREVIEW_CANVAS = 256  # the main picture's un-removed framing is hashed on a small canvas (same hash, cheaper)


@dataclass(frozen=True)
class _Result:
    image: ProcessedImage
    hashes: tuple[imagehash.ImageHash, ...]  # canvas phash first; the main picture adds its un-removed framing


class ImageProcessorService:
    """Turns one product's downloads into at most ``max_images`` canvases, main picture first.

    ``dark_edge_threshold`` is the mean luma (0-255) of the outer 4 % band below which a photo is refused as
    ``dark_background`` (default 60; see ``quality.py``). A background-removed picture is judged after removal.
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

    # -- one product -------------------------------------------------------------------------------------------

    def process_product(self, downloads: Sequence[DownloadedImage], max_images: int = 5) -> ProcessingOutcome:
        """Process candidates in order until ``max_images`` are kept. Index 0 is the main picture: the first
        candidate that survives, background-removed unless the mask was rejected (or no remover is configured).
        Configuration errors (``ModelNotInstalledError``) propagate; per-image problems become refusals."""
        images: list[ProcessedImage] = []
        refusals: list[Refusal] = []
        seen = DuplicateIndex(self.phash_distance)
        source_urls: dict[str, str] = {}
        for download in downloads:
            if len(images) >= max_images:
                break
            url = download.final_url
            source_hash = sha256_hex(download.data)
            if seen.has_source(source_hash):
                refusals.append(Refusal("process", "duplicate", url, f"same bytes as {source_urls[source_hash]}"))
                continue
            seen.add_source(source_hash)
            source_urls[source_hash] = url
            want_removal = self.background_remover is not None and not images
            try:
                result = self._process(download, source_hash, remove_background=want_removal)
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
        return ProcessingOutcome(images=images, refusals=refusals)

    def process_one(self, download: DownloadedImage, *, remove_background: bool) -> ProcessedImage:
        """One candidate on its own (no de-duplication). Raises ``ImageRefused``."""
        if remove_background and self.background_remover is None:
            raise ValueError("remove_background=True needs a BackgroundRemover")
        return self._process(download, sha256_hex(download.data), remove_background=remove_background).image

    # -- one image ---------------------------------------------------------------------------------------------

    def _process(self, download: DownloadedImage, source_hash: str, *, remove_background: bool) -> _Result:
        decoded = decode_image(
            download.data,
            min_side=self.min_side,
            max_pixels=self.max_pixels,
            fit_box=cv.object_box_side(self.canvas_size, self.fill_ratio),
        )
        extra: list[imagehash.ImageHash] = []
        canvas: Image.Image | None = None
        removed = rejected = False
        if remove_background and self.background_remover is not None:
            canvas, preview = self._remove_and_compose(self.background_remover, decoded, download.final_url)
            removed, rejected = canvas is not None, canvas is None
            extra.append(perceptual_hash(preview))
        if canvas is None:
            canvas = self._plain_canvas(decoded)
        jpeg = cv.encode_jpeg(canvas, self.jpeg_quality)
        canvas_hash = perceptual_hash(canvas)
        image = ProcessedImage(
            jpeg=jpeg,
            width=canvas.width,
            height=canvas.height,
            content_hash=sha256_hex(jpeg),
            source_hash=source_hash,
            phash=str(canvas_hash),
            source_url=download.final_url,
            background_removed=removed,
            removal_rejected=rejected,
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

    def _remove_and_compose(
        self, remover: BackgroundRemover, decoded: DecodedImage, url: str
    ) -> tuple[Image.Image | None, Image.Image]:
        """(canvas, preview): canvas is None when the mask fails the sanity gate. The preview is the un-removed
        framing on a small canvas, hashed so a later copy of the same photo is caught as a duplicate."""
        full = decoded.image
        work = full.convert("RGB") if full.mode != "RGB" else full.copy()
        work.thumbnail((REMOVAL_WORKING_SIDE, REMOVAL_WORKING_SIDE), Image.Resampling.BILINEAR, reducing_gap=2.0)
        trim = cv.content_bbox(work) or (0, 0, work.width, work.height)
        preview = cv.compose(work, _float_box(trim), canvas_size=_PREVIEW_CANVAS, fill_ratio=self.fill_ratio)
        try:
            cut = remover.remove(work)
        except MlImagesError:
            raise  # the model is missing or misconfigured: stop the run, do not degrade silently
        except Exception as exc:  # an inference failure on one picture: keep the original instead
            log.warning("background removal failed for %s (%s); keeping the original", url, exc)
            return None, preview
        alpha = cut.getchannel("A")
        fraction = kept_fraction(alpha)
        bbox = cv.alpha_bbox(alpha)
        if bbox is None or not self.mask_min_fraction <= fraction <= self.mask_max_fraction:
            log.info(
                "background removal rejected for %s: the mask keeps %.1f %% of the pixels (allowed %.0f-%.0f %%)",
                url,
                100 * fraction,
                100 * self.mask_min_fraction,
                100 * self.mask_max_fraction,
            )
            return None, preview
        judged = Image.new("RGB", work.size, WHITE)
        judged.paste(work, mask=alpha)
        self._check_background(judged, "after background removal")
        scale_x, scale_y = full.width / work.width, full.height / work.height
        a_box = _float_box(bbox)
        full_box = (a_box[0] * scale_x, a_box[1] * scale_y, a_box[2] * scale_x, a_box[3] * scale_y)
        canvas = cv.compose(
            full,
            full_box,
            canvas_size=self.canvas_size,
            fill_ratio=self.fill_ratio,
            alpha=alpha,
            alpha_crop=a_box,
        )
        return canvas, preview


def _float_box(box: tuple[int, int, int, int]) -> cv.Box:
    return float(box[0]), float(box[1]), float(box[2]), float(box[3])
