"""Bringing a decoded picture of any Pillow mode to 8-bit sRGB (``RGB`` or ``L``), transparency flattened on white.

Used by ``decode.py`` on the whole picture or strip by strip (a strip must be scaled like the whole, hence
``peak`` is measured once on the whole picture).
"""

from __future__ import annotations

import io
import logging

import numpy as np
from PIL import Image, ImageCms

log = logging.getLogger(__name__)

WHITE = (255, 255, 255)
_SRGB_PROFILE = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def image_peak(im: Image.Image) -> float:
    """The largest value of a single-band image (whole picture: strips must all be scaled alike)."""
    extrema = im.getextrema()
    high = extrema[1] if isinstance(extrema, tuple) and not isinstance(extrema[0], tuple) else 0
    return float(high) if isinstance(high, int | float) and high == high else 0.0  # NaN counts as 0


def _sixteen_bit_to_l(im: Image.Image, peak: float) -> Image.Image:
    """``convert("L")`` clips 16-bit values at 255 (40000 → 255, not 155); scale by 1/256 instead."""
    arr = np.asarray(im)
    if im.mode.startswith("I;16"):
        out = arr.astype(np.uint16) >> 8
    else:  # "I" (32-bit): treat as 16-bit when it carries values above 8 bits, else as 8-bit data
        if peak <= 255:
            out = np.clip(arr, 0, 255)
        elif peak <= 65535:
            out = np.clip(arr, 0, 65535) >> 8
        else:
            out = np.clip(arr, 0, None).astype(np.float64) * (255.0 / peak)
    return Image.fromarray(out.astype(np.uint8), "L")


def _float_to_l(im: Image.Image, peak: float) -> Image.Image:
    arr = np.asarray(im, dtype=np.float64)
    scale = 255.0 if peak <= 1.0 else 1.0
    return Image.fromarray(np.clip(np.nan_to_num(arr) * scale, 0, 255).astype(np.uint8), "L")


def normalise_mode(im: Image.Image, peak: float = 0.0) -> Image.Image:
    """Bring any mode to one of RGB, RGBA, L, CMYK (CMYK is handled with its ICC profile afterwards).
    ``peak``: the whole picture's largest value, for the 32-bit and float modes."""
    mode = im.mode
    if mode in ("RGB", "RGBA", "L", "CMYK"):
        return im
    if mode == "P":
        return im.convert("RGBA" if im.has_transparency_data else "RGB")
    if mode in ("PA", "LA", "La", "RGBa"):
        return im.convert("RGBA")
    if mode.startswith("I"):
        return _sixteen_bit_to_l(im, peak)
    if mode == "F":
        return _float_to_l(im, peak)
    if mode == "1":
        return im.convert("L")
    return im.convert("RGB")  # RGBX, YCbCr, LAB, HSV


def _is_srgb(profile: ImageCms.ImageCmsProfile) -> bool:
    description = (ImageCms.getProfileDescription(profile) or "").lower()
    return "srgb" in description


def to_srgb(im: Image.Image, icc: bytes | None) -> Image.Image:
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


def flatten_on_white(im: Image.Image) -> Image.Image:
    if im.mode != "RGBA":
        return im
    alpha = im.getchannel("A")
    if alpha.getextrema() == (255, 255):
        return im.convert("RGB")
    canvas = Image.new("RGB", im.size, WHITE)
    canvas.paste(im, mask=alpha)  # RGBA straight alpha: out = rgb·a + white·(1-a)
    return canvas
