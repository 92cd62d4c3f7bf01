"""Decoding untrusted bytes: every Pillow edge case as a generated fixture."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from PIL import GifImagePlugin, Image, ImageFile

from ml_images.errors import ConfigurationError
from ml_images.outcomes import Refused
from ml_images.processing.decode import decode_image
from ml_images_tests.processing.images import (
    encode,
    jpeg_with_orientation,
    near,
    png_header_only,
    png_rgb16,
    product_photo,
    swapped_rgb_icc_profile,
)

CAP = 40_000_000


def decode(data: bytes, **kwargs):
    kwargs.setdefault("min_side", 500)
    kwargs.setdefault("max_pixels", CAP)
    return decode_image(data, **kwargs)


def refusal(data: bytes, **kwargs) -> Refused:
    with pytest.raises(Refused) as info:
        decode(data, **kwargs)
    return info.value


def test_plain_jpeg_decodes_to_rgb_with_nothing_of_the_source_info():
    data = encode(product_photo(640, 520), "JPEG", exif=Image.Exif().tobytes(), comment=b"hello")
    result = decode(data)
    assert result.image.mode == "RGB"
    assert result.image.size == (640, 520) == result.source_size
    assert result.format == "jpeg"
    assert result.image.info == {}


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "AVIF", "GIF"])
def test_every_allowed_format_decodes(fmt):
    result = decode(encode(product_photo(600, 600), fmt))
    assert result.image.size == (600, 600)
    assert result.format == fmt.lower()


def test_a_format_outside_the_list_is_refused_as_unsupported():
    for fmt in ("BMP", "TIFF"):
        assert refusal(encode(product_photo(600, 600), fmt)).reason == "unsupported_format"


def test_cmyk_jpeg_becomes_rgb_with_the_right_colours():
    image = Image.new("CMYK", (600, 600), (0, 0, 0, 0))  # white paper
    image.paste((255, 0, 0, 0), (150, 150, 450, 450))  # full cyan square
    result = decode(encode(image, "JPEG"))
    assert result.image.mode == "RGB"
    assert all(c >= 245 for c in result.image.getpixel((10, 10)))
    assert near(result.image.getpixel((300, 300)), (0, 255, 255), 50)


def test_embedded_icc_profile_is_converted_to_srgb():
    # Stored pure red under a profile whose "red" is sRGB green: a real conversion yields green.
    image = Image.new("RGB", (600, 600), (230, 10, 10))
    result = decode(encode(image, "PNG", icc_profile=swapped_rgb_icc_profile()))
    assert near(result.image.getpixel((300, 300)), (0, 230, 0), 60)


def test_sixteen_bit_grey_png_is_scaled_not_clipped():
    pixels = np.full((600, 600), 40000, dtype=np.uint16)
    pixels[:, :100] = 65535
    data = encode(Image.fromarray(pixels), "PNG")
    assert Image.open(io.BytesIO(data)).mode == "I;16"
    result = decode(data)
    assert result.image.getpixel((300, 300)) == 40000 >> 8  # 156, where convert("L") would give 255
    assert result.image.getpixel((10, 10)) == 255


def test_sixteen_bit_rgb_png_keeps_its_levels():
    pixels = np.zeros((600, 600, 3), dtype=np.uint16)
    pixels[..., 0], pixels[..., 1], pixels[..., 2] = 40000, 20000, 65535
    result = decode(png_rgb16(pixels))
    assert result.image.getpixel((5, 5)) == (156, 78, 255)


def test_palette_with_transparency_is_flattened_on_white_not_black():
    image = Image.new("P", (600, 600), 0)
    image.putpalette([0, 0, 0, 200, 30, 30] + [0] * 762)
    image.paste(1, (200, 200, 400, 400))
    data = encode(image, "PNG", transparency=0)
    result = decode(data)
    assert result.had_alpha
    assert result.image.getpixel((10, 10)) == (255, 255, 255)
    assert result.image.getpixel((300, 300)) == (200, 30, 30)


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_alpha_modes_are_composited_on_white(mode):
    image = Image.new("RGBA", (600, 600), (0, 0, 0, 0))
    image.paste((40, 40, 40, 255), (200, 200, 400, 400))
    image.paste((40, 40, 40, 128), (0, 0, 100, 100))  # half-transparent dark grey
    result = decode(encode(image.convert(mode), "PNG"))
    assert result.had_alpha
    assert result.image.convert("L").getpixel((500, 500)) == 255
    assert result.image.convert("L").getpixel((300, 300)) == 40
    assert 140 <= result.image.convert("L").getpixel((50, 50)) <= 150  # 40·0.5 + 255·0.5


def test_exif_orientation_is_applied():
    # Stored landscape with a red block on the left; orientation 6 means "rotate 90° clockwise to display".
    image = Image.new("RGB", (800, 600), (255, 255, 255))
    image.paste((220, 0, 0), (0, 0, 200, 600))
    result = decode(jpeg_with_orientation(image, 6))
    assert result.image.size == (600, 800)
    assert near(result.image.getpixel((300, 50)), (220, 0, 0), 30)  # the block is now along the top
    assert result.image.getpixel((300, 700))[1] > 200


def test_animated_gif_uses_the_first_frame():
    frames = [Image.new("RGB", (600, 600), color) for color in ((250, 0, 0), (0, 0, 250), (0, 250, 0))]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    gif = Image.open(io.BytesIO(out.getvalue()))
    assert isinstance(gif, GifImagePlugin.GifImageFile)
    assert gif.n_frames == 3
    assert near(decode(out.getvalue()).image.getpixel((300, 300)), (250, 0, 0), 30)


def test_bomb_header_is_refused_without_decoding():
    # 20000×20000 = 400 MP: refused from the header alone, in milliseconds and without allocating the bitmap.
    started = time.perf_counter()
    assert refusal(png_header_only(20000, 20000)).reason == "decompression_bomb"
    # 8000×6000 = 48 MP: below Pillow's own limit, above our cap. Its data is garbage: had it been decoded, it
    # would have been refused as "corrupt" instead.
    assert refusal(png_header_only(8000, 6000)).reason == "decompression_bomb"
    assert time.perf_counter() - started < 1.0


def test_pixel_cap_is_configurable():
    data = encode(product_photo(700, 700), "JPEG")
    assert refusal(data, max_pixels=400_000).reason == "decompression_bomb"
    assert decode(data, max_pixels=490_000).image.size == (700, 700)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF"])
def test_truncated_files_are_refused_never_half_decoded(fmt):
    data = encode(product_photo(600, 600), fmt)
    cut = refusal(data[: len(data) // 2])
    assert cut.reason == "corrupt"


def test_truncated_images_are_never_accepted_even_if_pillow_was_told_to(monkeypatch):
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(ConfigurationError, match="LOAD_TRUNCATED_IMAGES"):
        decode(encode(product_photo(600, 600), "JPEG"))


def test_garbage_after_a_valid_magic_is_corrupt():
    assert refusal(b"\x89PNG\r\n\x1a\n" + b"\x00" * 200).reason == "corrupt"
    assert refusal(b"").reason == "corrupt"


def test_small_sources_are_refused_instead_of_upscaled():
    data = encode(product_photo(480, 360), "JPEG")
    refused = refusal(data)
    assert refused.reason == "too_small"
    assert "480×360" in refused.detail
    assert decode(data, min_side=400).image.size == (480, 360)


def test_large_jpeg_is_drafted_to_what_the_canvas_needs():
    data = encode(product_photo(2400, 1800), "JPEG")
    result = decode(data, fit_box=1080)
    assert result.source_size == (2400, 1800)
    assert result.image.size == (1200, 900)  # DCT scale 1/2: still larger than the 1080 box


def test_large_png_is_reduced_before_the_colour_work():
    image = Image.new("RGBA", (2400, 1600), (0, 0, 0, 0))
    image.paste((30, 30, 200, 255), (600, 400, 1800, 1200))
    result = decode(encode(image, "PNG"), fit_box=1080)
    assert result.image.size == (1200, 800)  # reduced 2× (3× would fall under the 1080 box)
    assert result.image.getpixel((5, 5)) == (255, 255, 255)
    assert result.image.getpixel((600, 400)) == (30, 30, 200)
