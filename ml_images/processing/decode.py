"""Decoding untrusted image bytes into a normalised sRGB picture flattened on white.

Order matters for safety and speed (image-pipeline-notes.md §4, compute-limits.md §4):

1. open with a restricted list of decoders — only the header is parsed;
2. refuse on the header's size: above the pixel cap (a decompression bomb is never decoded) or too small;
3. ``draft()`` a JPEG to the smallest DCT scale still at least as large as the output needs (2-3× faster);
4. load (truncated/corrupt data raises here; ``ImageFile.LOAD_TRUNCATED_IMAGES`` must stay False, its default),
   take the first frame of an animation, apply the EXIF orientation;
5. fix the mode (palette, 16-bit without clipping, CMYK...), convert an embedded ICC profile to sRGB, and flatten
   any transparency onto white.
"""

from __future__ import annotations

import io
import logging
import struct
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageCms, ImageFile, ImageOps, UnidentifiedImageError

from ml_images.errors import ConfigurationError
from ml_images.processing.results import ImageRefused

log = logging.getLogger(__name__)

ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "AVIF", "GIF")
WHITE = (255, 255, 255)

# Errors Pillow's decoders raise on malformed input (image-pipeline-notes.md §4), plus what zlib/struct leak.
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, IndexError, TypeError, struct.error, zlib.error)

_SRGB_PROFILE = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _looks_allowed(data: bytes) -> bool:
    """Magic bytes of the allowed formats; used only to tell 'unsupported format' from 'corrupt'."""
    head = data[:16]
    return (
        head.startswith(b"\xff\xd8\xff")
        or head.startswith(b"\x89PNG\r\n\x1a\n")
        or head.startswith((b"GIF87a", b"GIF89a"))
        or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")
        or (head[4:8] == b"ftyp" and head[8:12] in (b"avif", b"avis", b"mif1", b"msf1"))
    )


@dataclass(frozen=True)
class DecodedImage:
    """A loaded picture in mode ``RGB`` or ``L``, sRGB, upright, transparency flattened on white."""

    image: Image.Image
    source_size: tuple[int, int]  # as stored in the file (before draft), width × height
    format: str
    had_alpha: bool


def _open(data: bytes) -> ImageFile.ImageFile:
    try:
        return Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except Image.DecompressionBombError as exc:
        raise ImageRefused("decompression_bomb", str(exc)) from exc
    except UnidentifiedImageError as exc:
        if _looks_allowed(data):
            raise ImageRefused("corrupt", "header not readable") from exc
        raise ImageRefused("unsupported_format", f"not one of {', '.join(ALLOWED_FORMATS)}") from exc
    except _DECODE_ERRORS as exc:
        raise ImageRefused("corrupt", f"header: {exc}") from exc


def _draft_size(width: int, height: int, box: int) -> tuple[int, int]:
    """The size the image will be fitted to; draft() keeps at least this much in both directions."""
    ratio = box / max(width, height)
    return max(1, int(width * ratio)), max(1, int(height * ratio))


def _sixteen_bit_to_l(im: Image.Image) -> Image.Image:
    """``convert("L")`` clips 16-bit values at 255 (40000 → 255, not 155); scale by 1/256 instead."""
    arr = np.asarray(im)
    if im.mode.startswith("I;16"):
        out = arr.astype(np.uint16) >> 8
    else:  # "I" (32-bit): treat as 16-bit when it carries values above 8 bits, else as 8-bit data
        peak = int(arr.max()) if arr.size else 0
        if peak <= 255:
            out = np.clip(arr, 0, 255)
        elif peak <= 65535:
            out = np.clip(arr, 0, 65535) >> 8
        else:
            out = np.clip(arr, 0, None).astype(np.float64) * (255.0 / peak)
    return Image.fromarray(out.astype(np.uint8), "L")


def _float_to_l(im: Image.Image) -> Image.Image:
    arr = np.asarray(im, dtype=np.float64)
    scale = 255.0 if arr.size and float(np.nanmax(arr)) <= 1.0 else 1.0
    return Image.fromarray(np.clip(np.nan_to_num(arr) * scale, 0, 255).astype(np.uint8), "L")


def _normalise_mode(im: Image.Image) -> Image.Image:
    """Bring any mode to one of RGB, RGBA, L, CMYK (CMYK is handled with its ICC profile afterwards)."""
    mode = im.mode
    if mode in ("RGB", "RGBA", "L", "CMYK"):
        return im
    if mode == "P":
        return im.convert("RGBA" if im.has_transparency_data else "RGB")
    if mode in ("PA", "LA", "La", "RGBa"):
        return im.convert("RGBA")
    if mode.startswith("I"):
        return _sixteen_bit_to_l(im)
    if mode == "F":
        return _float_to_l(im)
    if mode == "1":
        return im.convert("L")
    return im.convert("RGB")  # RGBX, YCbCr, LAB, HSV


def _is_srgb(profile: ImageCms.ImageCmsProfile) -> bool:
    description = (ImageCms.getProfileDescription(profile) or "").lower()
    return "srgb" in description


def _to_srgb(im: Image.Image, icc: bytes | None) -> Image.Image:
    """Convert through the embedded profile. A broken or mismatching profile falls back to a plain convert."""
    if icc:
        try:
            profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            if not (im.mode in ("RGB", "RGBA") and _is_srgb(profile)):  # sRGB → sRGB is the common no-op
                out_mode = "RGBA" if im.mode == "RGBA" else "RGB"
                converted = ImageCms.profileToProfile(im, profile, _SRGB_PROFILE, outputMode=out_mode)
                if converted is not None:
                    im = converted
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError) as exc:
            log.debug("ICC profile ignored (%s); plain conversion", exc)
    if im.mode == "CMYK":  # no (usable) profile: Pillow's own conversion handles Adobe's inverted CMYK
        im = im.convert("RGB")
    return im


def _flatten_on_white(im: Image.Image) -> Image.Image:
    if im.mode != "RGBA":
        return im
    alpha = im.getchannel("A")
    if alpha.getextrema() == (255, 255):
        return im.convert("RGB")
    canvas = Image.new("RGB", im.size, WHITE)
    canvas.paste(im, mask=alpha)  # RGBA straight alpha: out = rgb·a + white·(1-a)
    return canvas


def _shrink(im: Image.Image, fit_box: int | None) -> Image.Image:
    """Integer box-reduce what is at least twice the size needed: a 40 MP PNG is not carried through the mode and
    colour conversions at full size (the JPEG equivalent is ``draft()``). The result stays >= ``fit_box``."""
    if not fit_box:
        return im
    factor = max(im.size) // fit_box
    return im.reduce(factor) if factor >= 2 else im


def decode_image(data: bytes, *, min_side: int, max_pixels: int, fit_box: int | None = None) -> DecodedImage:
    """Decode ``data`` or raise ``ImageRefused`` (``unsupported_format``, ``corrupt``, ``decompression_bomb``,
    ``too_small``). ``fit_box``: the longest side the caller will scale to, so a JPEG can be drafted down."""
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        # A process-wide Pillow switch some libraries flip: with it on, truncated files decode as grey half-images.
        raise ConfigurationError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES is on in this process; refusing to decode")
    if not data:
        raise ImageRefused("corrupt", "empty file")
    im = _open(data)
    width, height = im.size
    fmt = str(im.format)
    if width <= 0 or height <= 0:
        raise ImageRefused("corrupt", f"size {width}×{height}")
    if width * height > max_pixels:
        raise ImageRefused("decompression_bomb", f"{width}×{height} = {width * height:,} px > cap {max_pixels:,}")
    if max(width, height) < min_side:
        raise ImageRefused("too_small", f"{width}×{height}: longer side under {min_side} px")
    try:
        if getattr(im, "is_animated", False):
            im.seek(0)  # first frame only
        if fmt == "JPEG" and fit_box:
            im.draft(im.mode, _draft_size(width, height, fit_box))
        im.load()
        ImageOps.exif_transpose(im, in_place=True)
        icc = im.info.get("icc_profile")
        had_alpha = im.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (im.mode == "P" and im.has_transparency_data)
        normalised = _normalise_mode(im)
        if normalised.mode != "RGBA":  # shrink before the colour work (alpha is flattened first: no fringes)
            normalised = _shrink(normalised, fit_box)
        normalised = _flatten_on_white(_to_srgb(normalised, icc))
        normalised = _shrink(normalised, fit_box)
    except Image.DecompressionBombError as exc:
        raise ImageRefused("decompression_bomb", str(exc)) from exc
    except ImageRefused:
        raise
    except _DECODE_ERRORS as exc:
        detail = "truncated" if "truncated" in str(exc) else f"{type(exc).__name__}: {exc}"
        raise ImageRefused("corrupt", detail[:200]) from exc
    if normalised.mode not in ("RGB", "L"):
        normalised = normalised.convert("RGB")
    normalised.info.clear()  # nothing of the source (EXIF, ICC, XMP, comments) may reach the output
    return DecodedImage(image=normalised, source_size=(width, height), format=fmt.lower(), had_alpha=had_alpha)
