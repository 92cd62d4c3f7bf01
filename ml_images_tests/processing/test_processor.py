"""ImageProcessorService end to end on generated photos, with the real rembg u2netp model."""

from __future__ import annotations

import hashlib
import io
import threading

import imagehash
import numpy as np
import pytest
from PIL import Image, JpegImagePlugin

from ml_images.errors import ModelNotInstalledError
from ml_images.outcomes import Refused
from ml_images.processing.background import BackgroundRemover
from ml_images.processing.processor import ImageProcessorService
from ml_images.processing.quality import edge_luminance
from ml_images.processing.results import ProcessingOutcome
from ml_images_tests.processing.images import downloaded, encode, near, product_photo

CANVAS = 600  # smaller than production's 1200 to keep the suite fast; the logic does not depend on it


def open_jpeg(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def service(remover, **kwargs) -> ImageProcessorService:
    kwargs.setdefault("canvas_size", CANVAS)
    return ImageProcessorService(remover, **kwargs)


def test_main_picture_is_cut_out_and_centred_on_white(remover):
    photo = product_photo(800, 700, seed=3, background=(150, 120, 80), object_color=(40, 60, 200))
    result = service(remover).process_one(downloaded(encode(photo)), remove_background=True)
    assert result.background_removed
    assert not result.removal_rejected
    out = open_jpeg(result.jpeg)
    assert out.format == "JPEG"
    assert out.size == (CANVAS, CANVAS) == (result.width, result.height)
    assert out.info.get("progressive") == 1
    assert "exif" not in out.info
    assert "icc_profile" not in out.info
    # The brown backdrop is gone: the corners and the margins are white.
    for xy in ((5, 5), (CANVAS - 5, 5), (5, CANVAS - 5), (CANVAS - 5, CANVAS - 5), (CANVAS // 2, 8)):
        assert near(out.getpixel(xy), (255, 255, 255), 6)
    # The object is centred and fills about 90 % of the side (its bounding box is what gets scaled).
    ys, xs = np.nonzero(np.asarray(out.convert("L")) < 200)
    assert ys.max() - ys.min() + 1 == pytest.approx(0.9 * CANVAS, abs=0.03 * CANVAS)
    assert (xs.max() + xs.min()) / 2 == pytest.approx(CANVAS / 2, abs=0.02 * CANVAS)
    assert (ys.max() + ys.min()) / 2 == pytest.approx(CANVAS / 2, abs=0.02 * CANVAS)
    assert result.content_hash == hashlib.sha256(result.jpeg).hexdigest()
    assert len(result.phash) == 16
    assert int(imagehash.hex_to_hash(result.phash) - imagehash.phash(out)) <= 8


def test_later_picture_keeps_its_background_and_is_not_cut_out(remover):
    photo = product_photo(700, 600, seed=4, background=(120, 170, 120))
    result = service(remover).process_one(downloaded(encode(photo)), remove_background=False)
    assert not result.background_removed
    out = open_jpeg(result.jpeg)
    # Letterboxed: the 700×600 photo is scaled to 540 px wide (90 %), so a band of white above and below.
    assert near(out.getpixel((CANVAS // 2, 10)), (255, 255, 255), 4)
    assert near(out.getpixel((40, CANVAS // 2)), (120, 170, 120), 45)


def test_white_border_of_a_studio_photo_is_trimmed_before_scaling(remover):
    studio = Image.new("RGB", (1000, 1000), (255, 255, 255))
    studio.paste((30, 30, 30), (400, 300, 600, 700))  # a 200×400 object in a lot of white
    result = service(None).process_one(downloaded(encode(studio, "PNG"), fmt="png"), remove_background=False)
    arr = np.asarray(open_jpeg(result.jpeg).convert("L"))
    ys, xs = np.nonzero(arr < 128)
    assert ys.max() - ys.min() + 1 == pytest.approx(0.9 * CANVAS, abs=4)
    assert xs.max() - xs.min() + 1 == pytest.approx(0.45 * CANVAS, abs=4)


def test_blank_and_placeholder_pictures_are_refused():
    blank = Image.new("RGB", (800, 800), (255, 255, 255))
    placeholder = blank.copy()
    placeholder.paste((150, 150, 150), (350, 380, 450, 420))  # a small grey "no image" mark
    svc = service(None)
    with pytest.raises(Refused) as info:
        svc.process_one(downloaded(encode(blank, "PNG"), fmt="png"), remove_background=False)
    assert info.value.reason == "blank"
    with pytest.raises(Refused) as info:
        svc.process_one(downloaded(encode(placeholder, "PNG"), fmt="png"), remove_background=False)
    assert info.value.reason == "too_small"
    assert "100 px" in info.value.detail


def test_dark_background_is_refused_without_removal(remover):
    photo = product_photo(600, 600, seed=5, background=(12, 12, 14), object_color=(230, 200, 60))
    with pytest.raises(Refused) as info:
        service(remover).process_one(downloaded(encode(photo)), remove_background=False)
    assert info.value.reason == "dark_background"
    assert "no background removal" in info.value.detail


def test_dark_background_main_picture_is_judged_after_removal(remover):
    photo = product_photo(600, 600, seed=5, background=(12, 12, 14), object_color=(230, 200, 60))
    result = service(remover).process_one(downloaded(encode(photo)), remove_background=True)
    assert result.background_removed
    assert edge_luminance(open_jpeg(result.jpeg)) > 240


def test_mask_gate_keeps_the_original_when_the_cut_out_keeps_too_little(remover):
    photo = product_photo(600, 600, seed=6, background=(160, 140, 110))
    svc = service(remover, mask_min_fraction=0.9)  # the object covers about 25 %: the gate must reject it
    result = svc.process_one(downloaded(encode(photo)), remove_background=True)
    assert result.removal_rejected
    assert not result.background_removed
    # The normalised original: the photo's own backdrop is still there.
    assert near(open_jpeg(result.jpeg).getpixel((CANVAS // 2, 40)), (160, 140, 110), 50)


def test_mask_gate_keeps_the_original_when_the_cut_out_keeps_almost_everything(remover):
    photo = product_photo(600, 600, seed=6, background=(160, 140, 110))
    result = service(remover, mask_max_fraction=0.06).process_one(downloaded(encode(photo)), remove_background=True)
    assert result.removal_rejected
    assert not result.background_removed


def test_product_main_picture_is_the_first_survivor_and_order_is_kept(remover):
    good = [product_photo(640, 640, seed=10 + i, background=(200 - 20 * i, 150, 90)) for i in range(3)]
    data = encode(good[0])
    downloads = [
        downloaded(data[: len(data) // 3], 0),  # truncated: refused, so candidate 1 becomes the main picture
        downloaded(encode(product_photo(300, 300, seed=1)), 1),  # too small
        downloaded(encode(good[0]), 2),
        downloaded(encode(good[1]), 3),
        downloaded(encode(good[2]), 4),
    ]
    outcome = service(remover).process_product(downloads)
    assert [img.source_url for img in outcome.images] == [d.final_url for d in downloads[2:]]
    assert [img.background_removed for img in outcome.images] == [True, False, False]
    assert [(r.stage, r.reason, r.url) for r in outcome.refusals] == [
        ("process", "corrupt", downloads[0].final_url),
        ("process", "too_small", downloads[1].final_url),
    ]


def test_a_main_picture_refused_after_removal_passes_the_role_on(remover):
    # With mask_min 0.9 every cut-out is rejected and the original is judged: the dark one is refused, and the
    # next candidate gets the removal attempt. Its original keeps its beige backdrop, which no cover may show:
    # under the lenient policy it is kept as the main picture and the product is flagged.
    dark = product_photo(600, 600, seed=7, background=(10, 10, 10), object_color=(230, 230, 60))
    light = product_photo(600, 600, seed=8, background=(210, 200, 190))
    svc = service(remover, mask_min_fraction=0.9, cover_policy="lenient")
    outcome = svc.process_product([downloaded(encode(dark), 0), downloaded(encode(light), 1)])
    assert [r.reason for r in outcome.refusals] == ["dark_background"]
    assert len(outcome.images) == 1
    assert outcome.images[0].removal_rejected
    assert outcome.cover_status == "no_compliant_cover"
    assert outcome.cover_flagged
    assert outcome.images[0].cover_compliant is False
    assert outcome.model_runs == 2
    assert [a.failed_codes for a in outcome.cover_attempts] == [("dark_background",), ("cover_not_white",)]


def test_duplicates_exact_and_perceptual_are_refused(remover):
    a = product_photo(800, 800, seed=20, background=(180, 160, 120))
    b = product_photo(800, 800, seed=21, background=(120, 160, 180))
    downloads = [
        downloaded(encode(a), 0),
        downloaded(encode(b), 1),
        downloaded(encode(b), 2),  # the same bytes again
        downloaded(encode(b.resize((640, 640)), quality=80), 3),  # a resized, re-encoded copy
        downloaded(encode(a.crop((40, 40, 760, 760)).resize((700, 700))), 4),  # the main photo, reframed
    ]
    outcome = service(remover).process_product(downloads)
    assert [img.source_url for img in outcome.images] == [downloads[0].final_url, downloads[1].final_url]
    assert [r.reason for r in outcome.refusals] == ["duplicate", "duplicate", "duplicate"]
    assert "same bytes" in outcome.refusals[0].detail
    assert "phash distance" in outcome.refusals[1].detail
    # The cut-out main picture is matched through its un-removed framing.
    assert "image 0" in outcome.refusals[2].detail


def test_max_images_and_no_remover_means_no_removal():
    downloads = [downloaded(encode(product_photo(600, 600, seed=30 + i)), i) for i in range(4)]
    lenient = ImageProcessorService(None, canvas_size=CANVAS, cover_policy="lenient")
    outcome = lenient.process_product(downloads, max_images=2)
    assert len(outcome.images) == 2
    assert not any(img.background_removed for img in outcome.images)
    assert outcome.refusals == []
    # Without a remover no textured photo can become a white-background cover: flagged, not silently accepted.
    assert outcome.cover_status == "no_compliant_cover"
    assert outcome.cover_flagged
    assert outcome.model_runs == 0
    strict = ImageProcessorService(None, canvas_size=CANVAS).process_product(downloads, max_images=2)
    assert strict.images == []
    assert strict.cover_status == "no_compliant_cover"
    assert {r.reason for r in strict.refusals} == {"cover_not_white"}
    with pytest.raises(ValueError, match="BackgroundRemover"):
        ImageProcessorService(None).process_one(downloads[0], remove_background=True)


def test_default_canvas_is_1200_square_jpeg_quality_90(remover):
    photo = product_photo(900, 900, seed=40)
    result = ImageProcessorService(None).process_one(downloaded(encode(photo)), remove_background=False)
    out = open_jpeg(result.jpeg)
    assert isinstance(out, JpegImagePlugin.JpegImageFile)
    assert out.size == (1200, 1200)
    assert out.mode == "RGB"
    # Pillow's quality-90 luminance table starts with 3 (quality 95 would give 2, quality 85 gives 5).
    assert out.quantization[0][0] == 3


def test_two_products_processed_at_once_in_two_threads(remover):
    products = [
        [downloaded(encode(product_photo(600, 600, seed=50 + 10 * p + i)), i) for i in range(3)] for p in range(2)
    ]
    svc = service(remover)
    results: dict[int, ProcessingOutcome] = {}

    def run(index: int) -> None:
        results[index] = svc.process_product(products[index])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for index in range(2):
        assert [img.background_removed for img in results[index].images] == [True, False, False]


def test_a_missing_model_stops_the_product_instead_of_degrading(tmp_path, monkeypatch):
    monkeypatch.delenv("U2NET_HOME", raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("REMBG_HOME", str(tmp_path / "empty"))
    svc = service(BackgroundRemover("u2netp"))
    with pytest.raises(ModelNotInstalledError):
        svc.process_product([downloaded(encode(product_photo(600, 600, seed=60)))])


class _BrokenInference(BackgroundRemover):
    """An inference that fails on this one picture (ONNX Runtime error, out of memory...)."""

    def remove(self, image: Image.Image) -> Image.Image:
        raise RuntimeError("onnxruntime: simulated failure")


def test_an_inference_failure_keeps_the_normalised_original():
    photo = product_photo(600, 600, seed=61, background=(200, 190, 170))
    outcome = service(_BrokenInference(), cover_policy="lenient").process_product([downloaded(encode(photo))])
    assert len(outcome.images) == 1
    assert outcome.images[0].removal_rejected
    assert not outcome.images[0].background_removed
    assert outcome.cover_flagged  # its own backdrop is no cover
    # Under the strict policy (the default) the same product keeps nothing and says why.
    strict = service(_BrokenInference()).process_product([downloaded(encode(photo))])
    assert strict.images == []
    assert strict.reason_code == "no_compliant_cover"
    assert strict.failed_checks == ["cover_not_white"]
