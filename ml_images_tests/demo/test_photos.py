"""The demo's photo generator: deterministic, the intended sizes and formats, decodable, cached by manifest."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from demo.photos import MANIFEST, PhotoSpec, encode, render, write_photos
from demo.product_models import ProductKind, ProductLook
from demo.sample_catalog import PRODUCTS, all_photos
from demo.scenes import Scene, Shot, render_shot
from ml_images.processing.quality import DEFAULT_DARK_EDGE_THRESHOLD, edge_luminance

NOTEBOOK = ProductLook(ProductKind.NOTEBOOK, "lenovo", body=(72, 74, 80), wallpaper="astronaut")
MONITOR = ProductLook(ProductKind.MONITOR, "LG", wallpaper="chelsea")


def _spec(name: str, *, look: ProductLook = NOTEBOOK, scene: Scene = Scene.LOFT, size=(240, 180), fmt="jpeg"):
    return PhotoSpec(name, look, Shot(scene, size[0], size[1], seed=7), fmt)


def test_rendering_is_deterministic() -> None:
    spec = _spec("a")
    assert render(spec) == render(spec)
    assert render(spec) != render(_spec("a", scene=Scene.BRICK_DESK))


def test_a_photo_is_a_product_on_a_background_not_a_flat_fill() -> None:
    image = render_shot(MONITOR, Shot(Scene.WORKSHOP, 320, 240, seed=3))
    pixels = np.asarray(image, dtype=np.float32)
    assert image.size == (320, 240)
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 5000  # textures, shading, noise
    centre = pixels[80:160, 110:210].mean()
    corners = np.concatenate([pixels[:30, :30], pixels[:30, -30:]]).mean()
    assert abs(centre - corners) > 10  # the product stands out from the wall


@pytest.mark.parametrize("scene", list(Scene))
def test_only_the_dark_scene_has_a_dark_background(scene: Scene) -> None:
    image = render_shot(NOTEBOOK, Shot(scene, 320, 240, seed=11))
    luma = edge_luminance(image)
    if scene is Scene.DARK:
        assert luma < DEFAULT_DARK_EDGE_THRESHOLD / 2
    else:
        assert luma > DEFAULT_DARK_EDGE_THRESHOLD + 15


@pytest.mark.parametrize(("fmt", "pil_format"), [("jpeg", "JPEG"), ("png", "PNG"), ("webp", "WEBP")])
def test_formats_decode(fmt: str, pil_format: str) -> None:
    data = encode(Image.new("RGB", (64, 48), (10, 200, 30)), fmt)
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == pil_format
        assert im.size == (64, 48)


def test_write_photos_sizes_formats_duplicate_and_manifest(tmp_path: Path) -> None:
    specs = [
        _spec("main", size=(320, 240)),
        _spec("square", look=MONITOR, scene=Scene.STUDIO, size=(200, 200), fmt="png"),
        _spec("web", scene=Scene.CAFE, size=(240, 180), fmt="webp"),
        PhotoSpec("copy", NOTEBOOK, Shot(Scene.LOFT, 320, 240, seed=7), "jpeg", duplicate_of="main"),
    ]
    calls: list[str] = []
    paths = write_photos(specs, tmp_path, progress=lambda i, n, f: calls.append(f), workers=1)
    assert sorted(calls) == ["copy.jpg", "main.jpg", "square.png", "web.webp"]
    expected = {"main": ("JPEG", (320, 240)), "square": ("PNG", (200, 200)), "web": ("WEBP", (240, 180))}
    for name, (pil_format, size) in expected.items():
        with Image.open(paths[name]) as im:
            im.load()
            assert (im.format, im.size) == (pil_format, size)
    assert paths["copy"].read_bytes() == paths["main"].read_bytes()
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    assert manifest["square"]["width"] == 200
    assert manifest["main"]["sha256"] == manifest["copy"]["sha256"]

    calls.clear()
    write_photos(specs, tmp_path, progress=lambda i, n, f: calls.append(f), workers=1)
    assert calls == []  # nothing changed: nothing rendered again

    changed = [_spec("main", size=(300, 240)), *specs[1:]]
    write_photos(changed, tmp_path, progress=lambda i, n, f: calls.append(f), workers=1)
    assert sorted(calls) == ["copy.jpg", "main.jpg"]  # the copy follows its original
    assert paths["copy"].read_bytes() == paths["main"].read_bytes()
    with Image.open(paths["main"]) as im:
        assert im.size == (300, 240)


def test_parallel_rendering_gives_the_same_bytes(tmp_path: Path) -> None:
    specs = [_spec("p1", size=(200, 150)), _spec("p2", scene=Scene.DARK, size=(200, 150))]
    one = write_photos(specs, tmp_path / "one", workers=1)
    two = write_photos(specs, tmp_path / "two", workers=2)
    assert all(one[n].read_bytes() == two[n].read_bytes() for n in one)


def test_spec_validation(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="format"):
        _spec("x", fmt="gif")
    with pytest.raises(ValueError, match="file stem"):
        _spec("../x")
    with pytest.raises(ValueError, match="unique"):
        write_photos([_spec("x"), _spec("x")], tmp_path)
    with pytest.raises(ValueError, match="not an original"):
        write_photos([PhotoSpec("y", NOTEBOOK, Shot(Scene.LOFT, 10, 10), duplicate_of="nope")], tmp_path)
    with pytest.raises(ValueError, match="duplicate"):
        render(PhotoSpec("y", NOTEBOOK, Shot(Scene.LOFT, 10, 10), duplicate_of="x"))


def test_demo_photo_set_exercises_the_refusal_rules() -> None:
    specs = all_photos()
    assert len({s.name for s in specs}) == len(specs)
    assert 3 <= min(len(p.photos) for p in PRODUCTS if p.expected == "eligible") <= 6
    assert max(len(p.photos) for p in PRODUCTS) <= 6
    sizes = [(s.shot.width, s.shot.height) for s in specs]
    assert sum(1 for w, h in sizes if max(w, h) >= 800) >= 0.9 * len(specs)
    assert any(max(w, h) <= 300 for w, h in sizes)  # a thumbnail: too small
    duplicates = [s for s in specs if s.duplicate_of is not None]
    assert len(duplicates) == 1
    assert {s.format for s in specs} == {"jpeg", "png", "webp"}
    assert any(s.shot.scene is Scene.DARK for s in specs)
    # the main picture (first candidate) of every product is on a light enough set for background removal
    assert all(p.photos[0].shot.scene not in (Scene.DARK, Scene.CAFE) for p in PRODUCTS if p.photos)
