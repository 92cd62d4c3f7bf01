from __future__ import annotations

from collections.abc import Callable

import pytest

from ml_images.download.sniff import sniff_image_format


@pytest.mark.parametrize(
    ("pillow_format", "expected"),
    [("JPEG", "jpeg"), ("PNG", "png"), ("GIF", "gif"), ("WEBP", "webp"), ("AVIF", "avif")],
)
def test_real_files_written_by_pillow(make_image: Callable[..., bytes], pillow_format: str, expected: str) -> None:
    assert sniff_image_format(make_image(pillow_format)[:64]) == expected


@pytest.mark.parametrize(
    "head",
    [
        b"",
        b"<!DOCTYPE html><html><head><title>403</title>",
        b"<svg xmlns='http://www.w3.org/2000/svg'></svg>",
        b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic",  # HEIC: Pillow cannot decode it
        b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00isommp42",  # MP4 video
        b"RIFF\x10\x00\x00\x00WAVEfmt ",
        b"\x89PNG",  # truncated signature
        b"%PDF-1.7",
    ],
)
def test_non_images(head: bytes) -> None:
    assert sniff_image_format(head) is None


def test_avif_found_among_compatible_brands() -> None:
    head = b"\x00\x00\x00\x1cftypmif1\x00\x00\x00\x00mif1avifmiaf"
    assert sniff_image_format(head) == "avif"
