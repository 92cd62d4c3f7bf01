"""Memory bounds of decoding (issue 10.10): a cap per format from what its decode costs, one large decode at a time,
and large pictures converted and reduced strip by strip. The peak-RSS figure itself is a benchmark
(``benchmarks/decode_memory.py``), not a test."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw

from ml_images.outcomes import Refused
from ml_images.processing import decode as decode_module
from ml_images.processing.decode import (
    DECODE_BUDGET_BYTES,
    LARGE_DECODE_BYTES,
    decode_image,
    estimated_decode_bytes,
    pixel_cap,
)
from ml_images.processing.processor import ImageProcessorService
from ml_images_tests.processing.images import downloaded, encode, swapped_rgb_icc_profile


def _drawing(size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    """A product-like drawing that compresses to almost nothing (like the issue's 1.5 KB WebP)."""
    background: Any = {"RGBA": (255, 255, 255, 0), "RGB": (255, 255, 255), "L": 255}[mode]
    fill: Any = {"RGBA": (30, 60, 160, 255), "RGB": (30, 60, 160), "L": 60}[mode]
    image = Image.new(mode, size, background)
    w, h = size
    ImageDraw.Draw(image).ellipse((w // 4, h // 4, 3 * w // 4, 3 * h // 4), fill=fill)
    return image


@pytest.fixture(scope="module")
def issue_webp() -> bytes:
    """The issue's file: a lossless 6000×6000 WebP of a few KB (36 MP; Pillow's decode peaked at 594 MB)."""
    return encode(_drawing((6000, 6000)), "WEBP", lossless=True)


def test_the_issues_lossless_webp_is_refused_from_its_header(issue_webp: bytes) -> None:
    assert len(issue_webp) < 20_000
    with pytest.raises(Refused) as info:
        decode_image(issue_webp, min_side=500, fit_box=1080)
    assert info.value.reason == "too_many_pixels"
    detail = info.value.detail
    assert "WEBP 6000×6000 (36.0 MP)" in detail
    assert f"over the {DECODE_BUDGET_BYTES // 2**20} MiB limit" in detail
    assert f"accepted up to {pixel_cap('WEBP', 'RGB') / 1e6:.1f} MP" in detail


def test_the_processor_records_it_as_a_refusal_and_keeps_the_next_candidate(issue_webp: bytes) -> None:
    photo = encode(_drawing((900, 700)), "JPEG")
    outcome = ImageProcessorService(None).process_product([downloaded(issue_webp, 0, "webp"), downloaded(photo, 1)])
    assert [r.reason for r in outcome.refusals] == ["too_many_pixels"]
    assert len(outcome.images) == 1


def test_caps_follow_what_each_format_costs_to_decode() -> None:
    # Only JPEG is decoded at a reduced scale (draft): it keeps the general cap.
    assert pixel_cap("JPEG") == 40_000_000
    # Full-size decodes: the image itself (1, 2 or 4 bytes per pixel by mode) plus what the decoder holds.
    assert estimated_decode_bytes("WEBP", "RGB", (6000, 6000)) >= 6000 * 6000 * 16
    assert estimated_decode_bytes("AVIF", "RGBA", (6000, 6000)) >= 6000 * 6000 * 12
    assert estimated_decode_bytes("PNG", "RGBA", (6000, 6000)) >= 6000 * 6000 * 4
    assert pixel_cap("PNG", "L") == pixel_cap("GIF", "P") == 40_000_000
    assert pixel_cap("WEBP") < pixel_cap("AVIF") < pixel_cap("PNG", "RGBA") == pixel_cap("PNG", "RGB") < 40_000_000
    for fmt, mode in (("WEBP", "RGB"), ("AVIF", "RGBA"), ("PNG", "RGBA")):
        side = math.isqrt(pixel_cap(fmt, mode))
        assert estimated_decode_bytes(fmt, mode, (side, side)) <= DECODE_BUDGET_BYTES
        assert estimated_decode_bytes(fmt, mode, (side + 1, side + 1)) > DECODE_BUDGET_BYTES
    # A 6000×6000 JPEG is drafted to 1500×1500 for a 1080 box before its cost is counted.
    assert estimated_decode_bytes("JPEG", "RGB", (1500, 1500)) < LARGE_DECODE_BYTES


@pytest.mark.parametrize(
    ("fmt", "mode", "params"), [("WEBP", "RGB", {"lossless": True}), ("PNG", "RGBA", {}), ("AVIF", "RGBA", {})]
)
def test_just_under_the_cap_decodes_and_just_over_is_refused(fmt: str, mode: str, params: dict[str, Any]) -> None:
    # A smaller budget, so the sizes stay small enough for a unit test; the rule is the same.
    budget = 40 * 2**20
    side = math.isqrt(pixel_cap(fmt, mode, budget=budget))
    under = encode(_drawing((side, side), mode), fmt, **params)
    over = encode(_drawing((side + 2, side + 2), mode), fmt, **params)

    result = decode_image(under, min_side=500, fit_box=1080, decode_budget=budget)
    assert result.source_size == (side, side)
    assert max(result.image.size) >= 1080
    with pytest.raises(Refused) as info:
        decode_image(over, min_side=500, fit_box=1080, decode_budget=budget)
    assert info.value.reason == "too_many_pixels"


def test_a_jpeg_at_the_general_cap_is_drafted_not_refused() -> None:
    data = encode(_drawing((6300, 6300)), "JPEG", quality=80)  # 39.7 MP
    result = decode_image(data, min_side=500, fit_box=1080)
    assert result.source_size == (6300, 6300)
    assert result.image.size == (1575, 1575)  # DCT scale 1/4


# -- one large decode at a time --------------------------------------------------------------------------------


class _Overlap:
    """Wraps the decoder's conversion step: counts how many threads are inside it at once, and holds each one
    there for a moment so that decodes that are allowed to overlap do overlap."""

    def __init__(self, inner: Callable[..., Image.Image]) -> None:
        self.inner = inner
        self.lock = threading.Lock()
        self.inside = 0
        self.most = 0

    def __call__(self, *args: Any) -> Image.Image:
        with self.lock:
            self.inside += 1
            self.most = max(self.most, self.inside)
        try:
            time.sleep(0.2)
            return self.inner(*args)
        finally:
            with self.lock:
                self.inside -= 1


@pytest.fixture
def overlap(monkeypatch: pytest.MonkeyPatch) -> _Overlap:
    probe = _Overlap(decode_module._normalise_and_reduce)
    monkeypatch.setattr(decode_module, "_normalise_and_reduce", probe)
    return probe


def _decode_in_threads(data: bytes, threads: int = 3) -> None:
    errors: list[BaseException] = []

    def work() -> None:
        try:
            decode_image(data, min_side=500, fit_box=1080)
        except BaseException as exc:  # handed to the test thread
            errors.append(exc)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert not errors, errors


def test_large_decodes_run_one_at_a_time(overlap: _Overlap) -> None:
    data = encode(_drawing((3200, 3200), "RGBA"), "PNG")  # 10 MP RGBA: ~40 MiB to decode
    assert estimated_decode_bytes("PNG", "RGBA", (3200, 3200)) > LARGE_DECODE_BYTES
    _decode_in_threads(data)
    assert overlap.most == 1


def test_small_decodes_still_run_side_by_side(overlap: _Overlap) -> None:
    data = encode(_drawing((1200, 1200)), "PNG")  # the control: the probe does see overlap when it is allowed
    assert estimated_decode_bytes("PNG", "RGB", (1200, 1200)) < LARGE_DECODE_BYTES
    _decode_in_threads(data)
    assert overlap.most >= 2


# -- strips --------------------------------------------------------------------------------------------------


def _sources() -> dict[str, bytes]:
    rgba = Image.new("RGBA", (2600, 1900), (0, 0, 0, 0))
    draw = ImageDraw.Draw(rgba)
    draw.ellipse((300, 200, 2300, 1700), fill=(40, 40, 40, 255))
    draw.rectangle((0, 0, 800, 600), fill=(200, 30, 30, 128))  # half transparent: flattened before reduction
    palette = Image.new("P", (2600, 1900), 0)
    palette.putpalette([0, 0, 0, 200, 30, 30] + [0] * 762)
    palette.paste(1, (500, 500, 2000, 1500))
    grey16 = np.full((1900, 2600), 40000, dtype=np.uint16)
    grey16[:, :300] = 65535
    return {
        "rgba": encode(rgba, "PNG"),
        "palette with transparency": encode(palette, "PNG", transparency=0),
        "16-bit grey": encode(Image.fromarray(grey16), "PNG"),
        "icc profile": encode(_drawing((2600, 1900)), "PNG", icc_profile=swapped_rgb_icc_profile()),
        "exif orientation": encode(_drawing((2600, 1900)), "PNG", exif=_exif_orientation(6)),
    }


def _exif_orientation(value: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = value
    return exif.tobytes()


@pytest.mark.parametrize("name", list(_sources()))
def test_strips_give_the_same_picture_as_one_pass(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _sources()[name]
    monkeypatch.setattr(decode_module, "_STRIP_PIXELS", 10**9)  # one strip: the whole picture at once
    whole = decode_image(data, min_side=500, fit_box=600)  # 2600 px wide: reduced 4×
    monkeypatch.setattr(decode_module, "_STRIP_PIXELS", 2600 * 37)  # strips of 36 rows: 53 of them
    strips = decode_image(data, min_side=500, fit_box=600)
    assert strips.image.size == whole.image.size
    assert strips.image.mode == whole.image.mode
    assert strips.image.tobytes() == whole.image.tobytes()
    assert strips.had_alpha == whole.had_alpha


def test_the_exif_orientation_is_applied_after_the_reduction() -> None:
    image = Image.new("RGB", (2600, 1900), (255, 255, 255))
    image.paste((220, 0, 0), (0, 0, 600, 1900))  # a red band on the left; 6 = rotate 90° clockwise to display
    result = decode_image(encode(image, "PNG", exif=_exif_orientation(6)), min_side=500, fit_box=600)
    assert result.image.size == (475, 650)
    assert result.image.getpixel((237, 20)) == (220, 0, 0)  # the band is now along the top
    assert result.image.getpixel((237, 600)) == (255, 255, 255)
