"""Decoding untrusted image bytes into a normalised sRGB picture flattened on white.

Order matters for safety and speed (docs/decisions.md §4):

1. open with a restricted list of decoders — only the header is parsed;
2. refuse on the header's size: above the pixel cap (a decompression bomb is never decoded) or too small;
3. ``draft()`` a JPEG to the smallest DCT scale still at least as large as the output needs (2-3× faster);
4. refuse what would need more memory to decode than ``DECODE_BUDGET_BYTES`` (``too_many_pixels``), and take the
   process-wide "large decode" slot when it needs more than ``LARGE_DECODE_BYTES``;
5. load (truncated/corrupt data raises here; ``ImageFile.LOAD_TRUNCATED_IMAGES`` must stay False, its default),
   take the first frame of an animation;
6. fix the mode (palette, 16-bit without clipping, CMYK...), convert an embedded ICC profile to sRGB, flatten any
   transparency onto white (``colour_modes.py``) — in horizontal strips reduced as they go when the picture is at
   least twice the size the canvas needs, so no full-size copy is ever made — and apply the EXIF orientation to
   the result.

Memory (issue 10: a 1.5 KB 6000×6000 lossless WebP decoded to a 594 MB peak). Only JPEG can be decoded at a
reduced scale; every other format is decoded at full size, and what that costs per pixel was measured
(``benchmarks/decode_memory.py``): Pillow's WebP decoder holds about 16 bytes per pixel at its peak (libwebp's two
canvases, the frame it returns, and the image), AVIF about 12, PNG and GIF the image itself (1, 2 or 4 bytes per
pixel by mode). ``estimated_decode_bytes`` turns that into a bound checked from the header, before anything is
decoded; one large decode at a time keeps two CPU threads from stacking two such peaks.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import io
import struct
import threading
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from PIL import Image, ImageFile, UnidentifiedImageError

from ml_images.errors import ConfigurationError
from ml_images.outcomes import ReasonCode, Refused
from ml_images.processing.colour_modes import WHITE, flatten_on_white, image_peak, normalise_mode, to_srgb

__all__ = ["WHITE", "DecodedImage", "decode_image", "estimated_decode_bytes", "pixel_cap"]

ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "AVIF", "GIF")

# Errors Pillow's decoders raise on malformed input (docs/decisions.md §4), plus what zlib/struct leak.
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, IndexError, TypeError, struct.error, zlib.error)

DEFAULT_MAX_PIXELS = 40_000_000
#: Peak memory a decode may need, estimated from the header (``estimated_decode_bytes``). Measured in the run
#: process of ``ml-images fetch`` (``benchmarks/decode_memory.py``), with the rembg session and a batch in flight:
#: this keeps it under 1 GB when every candidate sits at its format's cap.
DECODE_BUDGET_BYTES = 112 * 2**20
#: Decodes estimated above this take the process-wide slot: one at a time, whatever the number of CPU threads.
LARGE_DECODE_BYTES = 32 * 2**20
#: Bytes per source pixel at the peak of a full-size decode, beyond the image's own storage (measured, see above).
_DECODER_BYTES_PER_PIXEL = {"WEBP": 12, "AVIF": 8}
_STRIP_PIXELS = 2_000_000  # pixels per strip when a large picture is converted and reduced strip by strip
_STRIP_BYTES_PER_PIXEL = 9
_LARGE_DECODES = threading.BoundedSemaphore(1)
_ORIENTATION_TAG = 0x0112
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

MEMORY_BOUNDS_SUMMARY = (
    "every candidate's decode is estimated from its header (WebP ~16 bytes per pixel, AVIF ~12, PNG and GIF the "
    "image itself, JPEG at its drafted DCT scale) and refused as `too_many_pixels` above "
    f"{DECODE_BUDGET_BYTES // 2**20} MiB; decodes above {LARGE_DECODE_BYTES // 2**20} MiB run one at a time; "
    "pictures larger than twice the canvas are converted and reduced in strips, never copied at full size."
)


def _image_bytes_per_pixel(mode: str) -> int:
    """What Pillow stores per pixel: 1 byte for 1/L/P, 2 for the 16-bit modes, 4 for every other mode."""
    if mode in ("1", "L", "P"):
        return 1
    if mode.startswith("I;16"):
        return 2
    return 4


def estimated_decode_bytes(fmt: str, mode: str, size: tuple[int, int]) -> int:
    """Peak memory of decoding a picture of ``size`` (after ``draft()`` for a JPEG), from its header: the picture,
    what its decoder holds besides, and the strip being converted (up to 9 bytes per strip pixel: the cut, its
    alpha and the white canvas it is flattened on)."""
    pixels = size[0] * size[1]
    per_pixel = _image_bytes_per_pixel(mode) + _DECODER_BYTES_PER_PIXEL.get(fmt.upper(), 0)
    return pixels * per_pixel + min(pixels, _STRIP_PIXELS) * _STRIP_BYTES_PER_PIXEL


def pixel_cap(fmt: str, mode: str = "RGBA", *, max_pixels: int = DEFAULT_MAX_PIXELS, budget: int | None = None) -> int:
    """The largest picture of ``fmt`` (in ``mode``) whose decode fits ``budget`` (``DECODE_BUDGET_BYTES``).

    A JPEG is drafted to what the canvas needs, so only ``max_pixels`` bounds it."""
    if fmt.upper() == "JPEG":
        return max_pixels
    total = DECODE_BUDGET_BYTES if budget is None else budget
    per_pixel = _image_bytes_per_pixel(mode) + _DECODER_BYTES_PER_PIXEL.get(fmt.upper(), 0)
    cap = (total - _STRIP_PIXELS * _STRIP_BYTES_PER_PIXEL) // per_pixel  # the inverse of estimated_decode_bytes
    if cap < _STRIP_PIXELS:  # a picture smaller than one strip is its own strip
        cap = total // (per_pixel + _STRIP_BYTES_PER_PIXEL)
    return max(0, min(max_pixels, cap))


def _load_malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to trim, nothing to do
        return None
    return trim


_MALLOC_TRIM = _load_malloc_trim()


def _release_freed_memory() -> None:
    """Give the memory a large decode freed back to the system. glibc keeps freed blocks in each thread's arena
    for reuse (after the first large free it stops using mmap for blocks of that size), so without this the run
    process's RSS kept about 170 MB of dead decodes (measured with ``benchmarks/decode_memory.py``)."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


@contextmanager
def _decode_slot(cost: int) -> Iterator[None]:
    """Holds the process-wide large-decode slot for a decode estimated above ``LARGE_DECODE_BYTES``; the memory
    it freed is handed back before the next one starts."""
    if cost <= LARGE_DECODE_BYTES:
        yield
        return
    with _LARGE_DECODES:
        try:
            yield
        finally:
            _release_freed_memory()


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
        raise Refused(ReasonCode.DECOMPRESSION_BOMB, str(exc)) from exc
    except UnidentifiedImageError as exc:
        if _looks_allowed(data):
            raise Refused(ReasonCode.CORRUPT, "header not readable") from exc
        raise Refused(ReasonCode.UNSUPPORTED_FORMAT, f"not one of {', '.join(ALLOWED_FORMATS)}") from exc
    except _DECODE_ERRORS as exc:
        raise Refused(ReasonCode.CORRUPT, f"header: {exc}") from exc


def _draft_size(width: int, height: int, box: int) -> tuple[int, int]:
    """The size the image will be fitted to; draft() keeps at least this much in both directions."""
    ratio = box / max(width, height)
    return max(1, int(width * ratio)), max(1, int(height * ratio))


def _reduce_factor(size: tuple[int, int], fit_box: int | None) -> int:
    """The integer box-reduce that keeps the picture >= ``fit_box`` (1: none). The JPEG equivalent is ``draft()``."""
    return max(1, max(size) // fit_box) if fit_box else 1


def _normalised(im: Image.Image, icc: bytes | None, peak: float) -> tuple[Image.Image, bool]:
    """Mode fixed; an alpha picture also converted to sRGB and flattened on white (before any reduction, so no
    dark fringes). Returns (image, colour_done)."""
    out = normalise_mode(im, peak)
    if out.mode == "RGBA":
        return flatten_on_white(to_srgb(out, icc)), True
    return out, False


def _normalise_and_reduce(im: Image.Image, icc: bytes | None, factor: int) -> Image.Image:
    """Mode, colour, transparency and the integer reduction, without a full-size copy of a large picture."""
    peak = image_peak(im) if im.mode.startswith("I") or im.mode == "F" else 0.0
    out, colour_done = _normalised(im, icc, peak) if factor < 2 else _reduced_in_strips(im, icc, peak, factor)
    if not colour_done:
        out = flatten_on_white(to_srgb(out, icc))
    return out


def _reduced_in_strips(im: Image.Image, icc: bytes | None, peak: float, factor: int) -> tuple[Image.Image, bool]:
    """The picture cut in strips of whole reduction blocks, each normalised and reduced before the next is cut:
    the same result as the whole picture at once (a block never spans two strips), with one strip alive at a
    time instead of full-size copies."""
    width, height = im.size
    rows = max(factor, _STRIP_PIXELS // max(1, width) // factor * factor)
    out = Image.new("L", (0, 0))  # replaced by the first strip's mode and the final size
    colour_done = False
    for top in range(0, height, rows):
        strip, colour_done = _normalised(im.crop((0, top, width, min(height, top + rows))), icc, peak)
        reduced = strip.reduce(factor)
        del strip  # before the next crop
        if top == 0:
            out = Image.new(reduced.mode, (-(-width // factor), -(-height // factor)))
        out.paste(reduced, (0, top // factor))
        del reduced
    return out, colour_done


def _orientation(im: Image.Image) -> int:
    try:
        value = im.getexif().get(_ORIENTATION_TAG, 1)
    except _DECODE_ERRORS:  # unreadable EXIF: the picture is shown as stored
        return 1
    return value if isinstance(value, int) else 1


def decode_image(
    data: bytes,
    *,
    min_side: int,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    fit_box: int | None = None,
    decode_budget: int = DECODE_BUDGET_BYTES,
) -> DecodedImage:
    """Decode ``data`` or raise ``Refused`` (``unsupported_format``, ``corrupt``, ``decompression_bomb``,
    ``too_many_pixels``, ``too_small``). ``fit_box``: the longest side the caller will scale to, so a JPEG can be
    drafted down and any larger picture reduced as it is converted. ``decode_budget``: see ``pixel_cap``."""
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        # A process-wide Pillow switch some libraries flip: with it on, truncated files decode as grey half-images.
        raise ConfigurationError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES is on in this process; refusing to decode")
    if not data:
        raise Refused(ReasonCode.CORRUPT, "empty file")
    im = _open(data)
    width, height = im.size
    fmt = str(im.format)
    if width <= 0 or height <= 0:
        raise Refused(ReasonCode.CORRUPT, f"size {width}×{height}")
    if width * height > max_pixels:
        raise Refused(ReasonCode.DECOMPRESSION_BOMB, f"{width}×{height} = {width * height:,} px > cap {max_pixels:,}")
    if max(width, height) < min_side:
        raise Refused(ReasonCode.TOO_SMALL, f"{width}×{height}: longer side under {min_side} px")
    try:
        if getattr(im, "is_animated", False):
            im.seek(0)  # first frame only
        if fmt == "JPEG" and fit_box:
            im.draft(im.mode, _draft_size(width, height, fit_box))
        cost = estimated_decode_bytes(fmt, im.mode, im.size)
        if cost > decode_budget:
            cap = pixel_cap(fmt, im.mode, max_pixels=max_pixels, budget=decode_budget)
            raise Refused(
                ReasonCode.TOO_MANY_PIXELS,
                f"{fmt} {width}×{height} ({width * height / 1e6:.1f} MP) would need about {cost / 2**20:.0f} MiB to "
                f"decode at full size, over the {decode_budget / 2**20:.0f} MiB limit: {fmt} in mode {im.mode} is "
                f"accepted up to {cap / 1e6:.1f} MP (only JPEG can be decoded at a reduced scale)",
            )
        with _decode_slot(cost):
            im.load()
            orientation = _orientation(im)
            icc = im.info.get("icc_profile")
            had_alpha = im.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (im.mode == "P" and im.has_transparency_data)
            normalised = _normalise_and_reduce(im, icc, _reduce_factor(im.size, fit_box))
            del im  # the full-size picture (and a WebP decoder's canvases) go before the slot is released
        if orientation in _TRANSPOSE:
            normalised = normalised.transpose(_TRANSPOSE[orientation])
    except Image.DecompressionBombError as exc:
        raise Refused(ReasonCode.DECOMPRESSION_BOMB, str(exc)) from exc
    except Refused:
        raise
    except _DECODE_ERRORS as exc:
        detail = "truncated" if "truncated" in str(exc) else f"{type(exc).__name__}: {exc}"
        raise Refused(ReasonCode.CORRUPT, detail[:200]) from exc
    if normalised.mode not in ("RGB", "L"):
        normalised = normalised.convert("RGB")
    normalised.info.clear()  # nothing of the source (EXIF, ICC, XMP, comments) may reach the output
    return DecodedImage(image=normalised, source_size=(width, height), format=fmt.lower(), had_alpha=had_alpha)
