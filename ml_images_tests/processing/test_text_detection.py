"""rapidocr-onnxruntime on generated pictures: it finds and reads text offline, and ignores a glossy highlight.

Every test runs behind the loopback-only socket guard: the OCR models come from the wheel, nothing is fetched.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from demo.textures import font
from ml_images.processing.product_match import normalise
from ml_images.processing.text_detection import TextDetector, TextLine, get_shared_text_detector
from ml_images_tests.processing.images import product_photo


@pytest.fixture(scope="module")
def detector() -> TextDetector:
    shared = get_shared_text_detector()
    shared.load()
    return shared


def test_the_models_ship_inside_the_installed_package():
    import rapidocr_onnxruntime

    models = Path(rapidocr_onnxruntime.__file__).parent / "models"
    names = {p.name for p in models.glob("*.onnx")}
    assert {"ch_PP-OCRv4_det_infer.onnx", "ch_PP-OCRv4_rec_infer.onnx"} <= names


def test_a_promotional_banner_is_found_and_read(detector):
    image = Image.new("RGB", (600, 450), (255, 255, 255))
    d = ImageDraw.Draw(image)
    d.rectangle([0, 370, 600, 450], fill=(214, 24, 36))
    d.text((40, 385), "OFERTA 30% OFF", font=font(44), fill=(255, 255, 255))
    reading = detector.read(image)
    assert reading.size == (384, 288)  # detection works on the reduced copy
    assert len(reading.lines) == 1
    line = reading.lines[0]
    assert normalise(line.text) == "oferta30off"
    assert line.score > 0.9
    x0 = min(p[0] for p in line.quad) / reading.size[0]
    y0 = min(p[1] for p in line.quad) / reading.size[1]
    assert x0 < 0.15
    assert y0 > 0.8
    assert abs(line.angle) < 5


def test_slanted_text_keeps_its_slant(detector):
    layer = Image.new("RGBA", (900, 300), (0, 0, 0, 0))
    ImageDraw.Draw(layer).text((60, 110), "tienda-ejemplo.com", font=font(64), fill=(20, 20, 20, 255))
    layer = layer.rotate(25, resample=Image.Resampling.BICUBIC, expand=True)
    image = Image.new("RGB", layer.size, (255, 255, 255))
    image.paste(layer, mask=layer)
    lines = detector.read(image).lines
    assert lines
    assert any(15 < line.angle < 35 for line in lines)


def test_a_highlight_on_a_bottle_is_not_text(detector):
    # The detector answers to the bottle's glossy stripe; its shape and an empty reading drop it.
    bottle = product_photo(640, 640, seed=10, background=(255, 255, 255), object_color=(120, 30, 80))
    assert detector.read(bottle).lines == ()


def test_line_geometry():
    line = TextLine(((0.0, 10.0), (100.0, 10.0), (100.0, 30.0), (0.0, 30.0)))
    assert line.size == (100.0, 20.0)
    assert line.angle == 0.0
    rising = TextLine(((0.0, 100.0), (100.0, 0.0), (110.0, 10.0), (10.0, 110.0)))
    assert rising.angle == pytest.approx(45.0)
