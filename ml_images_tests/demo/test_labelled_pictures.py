"""The labelled picture set: the renderer's true object mask, the composites, and the defects made from them."""

from __future__ import annotations

import numpy as np
from PIL import Image

from demo import labelled_pictures as lp
from demo.scenes import Scene, Shot, render_shot, render_shot_with_mask


def test_the_renderer_emits_the_true_object_mask_beside_the_photo() -> None:
    shot = Shot(Scene.BRICK_DESK, 320, 240, seed=5)
    photo, mask = render_shot_with_mask(lp.LOOKS["monitor_aoc"], shot)
    assert photo.size == mask.size == (320, 240)
    assert mask.mode == "L"
    # the photo itself is unchanged by emitting the mask (cached demo photos stay valid)
    assert np.array_equal(np.asarray(photo), np.asarray(render_shot(lp.LOOKS["monitor_aoc"], shot)))
    m = np.asarray(mask)
    assert 0.05 < (m >= 128).mean() < 0.6
    assert m[0, 0] == 0  # the wall is not the product
    # the product is darker than the wall where the mask says so (a black monitor on red brick)
    gray = np.asarray(photo.convert("L"), dtype=np.float32)
    assert gray[m >= 250].mean() < gray[m == 0].mean()


def test_a_photo_composite_has_its_mask_where_the_object_is() -> None:
    picture = lp.photo_on("retina", "white", seed=1)
    truth = np.asarray(picture.truth) >= 128
    image = np.asarray(picture.image, dtype=np.int16)
    assert picture.white_backdrop
    assert image[~truth].min(axis=1).mean() > 240  # white backdrop (a soft shadow at most)
    assert image[truth].min(axis=1).mean() < 200  # the red fundus photograph


def test_defects_are_labelled_and_their_graphics_located() -> None:
    base = lp.photo_on("cup", "white", seed=2)
    banner = lp.with_banner(base)
    assert banner.defect == lp.TEXT_BANNER
    assert banner.overlay is not None
    overlay = np.asarray(banner.overlay) > 0
    assert overlay[-1].all()  # along the bottom edge
    assert not overlay[0].any()
    badge = lp.with_badge(base)
    assert badge.defect == lp.BADGE
    assert badge.overlay is not None
    assert 0.01 < (np.asarray(badge.overlay) > 0).mean() < 0.1
    cut = lp.truncated(base, side="right")
    assert cut.defect == lp.TRUNCATED
    assert (np.asarray(cut.truth)[:, -1] >= 128).any()  # the object now runs into the right edge
    assert max(cut.image.size) >= 500
    two = lp.two_products(base, lp.photo_on("retina", "white", seed=1), white=True)
    assert two.defect == lp.TWO_PRODUCTS
    assert two.image.size == lp.SIZE
    assert isinstance(lp.with_watermark(base).image, Image.Image)


def test_the_truth_is_what_is_visible_the_logos_white_corners_only_on_white() -> None:
    """The skimage logo's alpha is opaque over its whole square: on white its white corners are invisible and not
    the object (the label before the rule is kept as ``pasted``); on brick they are a visible white card."""
    on_white = lp.photo_on("logo", "white", seed=5)
    on_brick = lp.photo_on("logo", "brick", seed=5)
    assert on_white.pasted is not None
    truth, pasted = np.asarray(on_white.truth) >= 128, np.asarray(on_white.pasted) >= 128
    assert not (truth & ~pasted).any()  # the rule only ever removes
    assert 0.6 < truth.sum() / pasted.sum() < 0.8  # the disc inside the square (π/4 of it), less the white stroke
    ys, xs = np.nonzero(pasted)
    assert not truth[ys.min() + 2, xs.min() + 2]  # a white corner
    assert truth[(ys.min() + ys.max()) // 2, xs.min() + (xs.max() - xs.min()) // 4]  # the green half
    assert on_brick.pasted is None  # on brick nothing of the square is the backdrop's colour


def test_a_backdrop_coloured_region_enclosed_by_the_object_stays_the_object() -> None:
    source = Image.new("RGB", (60, 60), (255, 255, 255))
    source.paste((30, 60, 200), (10, 10, 50, 50))
    source.paste((255, 255, 255), (25, 25, 35, 35))  # a white label on the product
    alpha = Image.new("L", (60, 60), 255)  # opaque over the whole square, white margin included
    truth = np.asarray(lp.visible_truth(source, alpha, Image.new("RGB", (60, 60), (255, 255, 255)))) >= 128
    assert truth[10:50, 10:50].all()  # the product with its label
    assert not truth[:10].any()
    assert not truth[:, 50:].any()
