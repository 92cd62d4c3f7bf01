"""A labelled set of cover candidates with known ground truth, for measuring cut-outs and the cover gate.

Two families of pictures, each with the true object mask beside it:

* the demo's 3D renderer (``scenes.render_shot_with_mask``): a product on a desk in front of a wall, or on the
  grey studio sweep; the same render pasted on a pure white backdrop is the manufacturer's picture (``studio``);
* photographs from scikit-image, cut along a known outline (the skimage logo's own alpha, a horse silhouette
  textured with a photo, the espresso cup, the retina's disc, a framed print) and composited the same way on a
  white backdrop or on textured photographs (brick, gravel, wood), with a soft shadow and sensor noise.

The true object of a composite is what is visible (``visible_truth``): where the source's alpha covers pixels of
the backdrop's own colour and they reach the outline (the skimage logo's alpha is opaque over its whole square,
white corners included), those pixels are not part of the object — on a white backdrop nobody can see them, on
brick they are a visible white card and stay. The rule is applied to every composite of the set; the picture
itself is composited exactly as before (the source pasted with its alpha, casting its shadow), so only the label
changes. ``LabelledPicture.pasted`` keeps the source's alpha as pasted (the label the benchmark used before the
rule) so the benchmark can report both.

Bad covers are derived from good pictures with what sellers add or get wrong: a promotional text banner, a
diagonal repeated watermark, a badge stuck on the product's corner, the product cut off by the frame, two
products in one picture. (A damaged cut-out is a property of the remover, not of the picture: the benchmark makes
it with a remover that damages the true mask.) Everything is deterministic for a given seed.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageOps
from scipy import ndimage as ndi

from demo.product_models import ProductKind, ProductLook
from demo.scenes import Scene, Shot, render_shot_with_mask
from demo.textures import brick_wall, colorize, font, skimage_photo, to_image, wood

GOOD = "good"
STUDIO, SCENE, PHOTO_WHITE, PHOTO_TEXTURED = "studio", "scene", "photo_white", "photo_textured"
TEXT_BANNER, WATERMARK, BADGE, TRUNCATED, TWO_PRODUCTS = "text_banner", "watermark", "badge", "truncated", "two"


@dataclass(frozen=True)
class LabelledPicture:
    """A candidate picture, its true object mask (L, 0-255, same size) and what is wrong with it as a cover."""

    name: str
    kind: str  # studio | scene | photo_white | photo_textured
    image: Image.Image  # RGB
    truth: Image.Image  # L: the product (for a two-product picture: both)
    defect: str = GOOD  # good | text_banner | watermark | badge | truncated | two
    overlay: Image.Image | None = None  # L: where added graphics (banner, watermark, badge) cover the picture
    pasted: Image.Image | None = None  # L: the source's alpha as pasted, when the visible truth differs from it

    @property
    def white_backdrop(self) -> bool:
        return self.kind in (STUDIO, PHOTO_WHITE)


LOOKS: dict[str, ProductLook] = {
    "monitor_samsung": ProductLook(ProductKind.MONITOR, "SAMSUNG", body=(28, 28, 32), wallpaper="rocket"),
    "monitor_odyssey": ProductLook(ProductKind.MONITOR, "SAMSUNG", body=(40, 40, 46), wallpaper="retina"),
    "monitor_aoc": ProductLook(ProductKind.MONITOR, "AOC", body=(24, 24, 26), wallpaper="hubble"),
    "notebook_lenovo": ProductLook(ProductKind.NOTEBOOK, "lenovo", body=(72, 74, 80), wallpaper="astronaut"),
    "notebook_hp": ProductLook(ProductKind.NOTEBOOK, "hp", body=(196, 198, 202), wallpaper="coffee", metal=True),
    "tower_dell": ProductLook(ProductKind.TOWER, "DELL", body=(36, 37, 42), accent=(240, 240, 240)),
    "tower_gamer": ProductLook(ProductKind.TOWER, "RGB", body=(22, 22, 26), glass_side=True, accent=(80, 160, 255)),
    "aio_lenovo": ProductLook(
        ProductKind.ALL_IN_ONE, "lenovo", body=(196, 198, 202), wallpaper="astronaut", metal=True
    ),
}
SCENES = (Scene.BRICK_DESK, Scene.LOFT, Scene.WORKSHOP, Scene.STUDIO)
SIZE = (800, 600)


def render(look: str, scene: Scene, *, seed: int = 7, yaw: float = -25.0, fill: float = 0.7) -> LabelledPicture:
    shot = Shot(scene, SIZE[0], SIZE[1], yaw=yaw, pitch=16.0 + seed % 8, fill=fill, seed=seed)
    photo, truth = render_shot_with_mask(LOOKS[look], shot)
    return LabelledPicture(f"{look}-{scene}", SCENE, photo, truth)


def on_white(picture: LabelledPicture, *, shadow: bool, seed: int = 0) -> LabelledPicture:
    """The product of a render pasted on a digitally white backdrop (a manufacturer's picture)."""
    white = Image.new("RGB", picture.image.size, (255, 255, 255))
    backdrop = _with_shadow(white, picture.truth, strength=0.16) if shadow else white
    image = Image.composite(picture.image, backdrop, picture.truth)
    image = _noise(image, np.random.default_rng(seed), sigma=1.2)
    truth, pasted = _labels(picture.image, picture.truth, white)
    name = picture.name.replace(f"-{Scene.STUDIO}", "") + "-white"
    return LabelledPicture(name, STUDIO, image, truth, pasted=pasted)


# --- scikit-image photographs cut along a known outline ------------------------------------------------------


@functools.lru_cache(maxsize=16)
def _object(name: str) -> tuple[Image.Image, Image.Image]:
    """(RGB texture, L mask) of one photographic object, both the same size."""
    if name == "logo":
        logo = skimage_photo_rgba("logo")
        return logo.convert("RGB"), logo.getchannel("A")
    if name.startswith("horse"):
        horse = skimage_photo_rgba("horse")
        mask = ImageOps.invert(horse.convert("L")).point(lambda v: 255 if v > 127 else 0)
        mask = mask.filter(ImageFilter.GaussianBlur(0.8))
        texture = ImageOps.fit(skimage_photo("chelsea" if name == "horse_cat" else "rocket"), mask.size)
        return texture.convert("RGB"), mask
    if name == "cup":
        photo = skimage_photo("coffee")
        mask = Image.new("L", photo.size, 0)
        d = ImageDraw.Draw(mask)
        d.ellipse([78, 74, 479, 387], fill=255)
        d.ellipse([171, 17, 410, 212], fill=255)
        return photo, mask.filter(ImageFilter.GaussianBlur(1.0))
    if name == "retina":
        photo = skimage_photo("retina").resize((600, 600), Image.Resampling.LANCZOS)
        disc = Image.new("L", photo.size, 0)
        ImageDraw.Draw(disc).ellipse([28, 28, 572, 572], fill=255)
        return photo.convert("RGB"), disc.filter(ImageFilter.GaussianBlur(1.0))
    if name == "print":
        photo = skimage_photo("astronaut").convert("RGB")
        framed = ImageOps.expand(photo, border=24, fill=(238, 232, 220))
        framed = ImageOps.expand(framed, border=14, fill=(60, 42, 30))
        mask = Image.new("L", framed.size, 0)
        ImageDraw.Draw(mask).rounded_rectangle([0, 0, framed.width - 1, framed.height - 1], radius=10, fill=255)
        return framed, mask
    raise KeyError(name)


def skimage_photo_rgba(name: str) -> Image.Image:
    from demo.textures import skimage_data_dir

    with Image.open(skimage_data_dir() / f"{name}.png") as im:
        im.load()
        return im.convert("RGBA")


PHOTO_OBJECTS = ("logo", "horse_cat", "horse_rocket", "cup", "retina", "print")
BACKGROUNDS = ("white", "brick", "gravel", "wood")


@functools.lru_cache(maxsize=8)
def _background(name: str, size: tuple[int, int]) -> Image.Image:
    if name == "white":
        return Image.new("RGB", size, (255, 255, 255))
    if name == "brick":
        return brick_wall(size, style="red", tile_px=200)
    if name == "gravel":
        gray = ImageOps.fit(skimage_photo("gravel").convert("L"), size)
        return colorize(gray, [(0.0, (70, 66, 60)), (0.5, (150, 142, 130)), (1.0, (215, 208, 196))])
    if name == "wood":
        return wood(size, np.random.default_rng(11), tone="oak")
    raise KeyError(name)


def photo_on(obj: str, background: str, *, seed: int = 0, scale: float = 0.7) -> LabelledPicture:
    """A photographic object placed on a backdrop with a soft shadow and a touch of sensor noise."""
    rng = np.random.default_rng(seed)
    texture, mask = _object(obj)
    size = SIZE
    fit = scale * min(size[0] / texture.width, size[1] / texture.height)
    dims = (max(1, round(texture.width * fit)), max(1, round(texture.height * fit)))
    texture, mask = texture.resize(dims, Image.Resampling.LANCZOS), mask.resize(dims, Image.Resampling.LANCZOS)
    x = (size[0] - dims[0]) // 2 + int(rng.integers(-size[0] // 20, size[0] // 20))
    y = (size[1] - dims[1]) // 2 + int(rng.integers(-size[1] // 30, size[1] // 30))
    alpha = Image.new("L", size, 0)
    alpha.paste(mask, (x, y))
    layer = Image.new("RGB", size)
    layer.paste(texture, (x, y))
    clean = _background(background, size)
    base = _with_shadow(clean.copy(), alpha, strength=0.14 if background == "white" else 0.3)
    image = _noise(Image.composite(layer, base, alpha), rng, sigma=1.2 if background == "white" else 2.0)
    kind = PHOTO_WHITE if background == "white" else PHOTO_TEXTURED
    truth, pasted = _labels(layer, alpha, clean)
    return LabelledPicture(f"{obj}-on-{background}", kind, image, truth, pasted=pasted)


# The true object is what is visible. A source pixel under the alpha is invisible when it differs from the clean
# backdrop it covers by at most VISIBLE_TOLERANCE levels in every channel (before shadow and sensor noise; the
# studio flood fill allows 22 levels, so this is stricter); invisible regions smaller than a 3×3 square are chance
# matches of a texture, not backdrop-coloured parts, and count as visible. Invisible pixels connected to the
# outside of the alpha through invisible pixels are not part of the object; enclosed ones are (a white label on a
# product is still the product).
VISIBLE_TOLERANCE = 8


def visible_truth(source: Image.Image, alpha: Image.Image, backdrop: Image.Image) -> Image.Image:
    """The true object mask (L) of ``source`` pasted with ``alpha`` on ``backdrop`` (all the same size)."""
    a = np.asarray(alpha)
    difference = np.abs(np.asarray(source, np.int16) - np.asarray(backdrop.convert("RGB"), np.int16)).max(axis=2)
    invisible = ndi.binary_opening((difference <= VISIBLE_TOLERANCE) & (a > 0), structure=np.ones((3, 3), bool))
    # beyond the frame counts as outside (an alpha opaque up to the picture's edge)
    outside = np.pad(a < 128, 1, constant_values=True)
    reached = ndi.binary_propagation(outside, mask=outside | np.pad(invisible, 1), structure=np.ones((3, 3), bool))[
        1:-1, 1:-1
    ]
    return Image.fromarray(np.where(reached & invisible, 0, a).astype(np.uint8), "L")


def _labels(source: Image.Image, alpha: Image.Image, backdrop: Image.Image) -> tuple[Image.Image, Image.Image | None]:
    """(visible truth, the alpha as pasted when it differs from the truth)."""
    truth = visible_truth(source, alpha, backdrop)
    changed = np.any((np.asarray(truth) >= 128) != (np.asarray(alpha) >= 128))
    return truth, (alpha if changed else None)


def _with_shadow(backdrop: Image.Image, truth: Image.Image, *, strength: float) -> Image.Image:
    """A soft drop shadow of the object, down and to the right, darkening the backdrop by up to ``strength``."""
    w, h = truth.size
    offset = (round(w * 0.015), round(h * 0.025))
    shadow = Image.new("L", truth.size, 0)
    shadow.paste(truth, offset)
    shadow = shadow.filter(ImageFilter.GaussianBlur(max(w, h) * 0.015))
    arr = np.asarray(backdrop, dtype=np.float32) * (1 - strength * np.asarray(shadow, np.float32)[..., None] / 255)
    return to_image(arr)


def _noise(image: Image.Image, rng: np.random.Generator, *, sigma: float) -> Image.Image:
    arr = np.asarray(image, dtype=np.float32) + rng.normal(0, sigma, (image.height, image.width, 3))
    return to_image(arr)


# --- what sellers add or get wrong -----------------------------------------------------------------------------


def _truth_box(truth: Image.Image) -> tuple[int, int, int, int]:
    box = truth.point(lambda v: 255 if v >= 128 else 0).getbbox()
    return box if box is not None else (0, 0, truth.width, truth.height)


def with_banner(picture: LabelledPicture, *, top: bool = False, across_object: bool = False) -> LabelledPicture:
    """A promotional band with white capitals (``OFERTA 30% OFF  ENVÍO GRATIS``): across the whole picture at its
    bottom (or top), or ``across_object``: a ribbon over the product's lower part, a little wider than it."""
    image = picture.image.copy()
    w, h = image.size
    band = round(h * 0.15)
    x0, x1 = 0, w
    y0 = 0 if top else h - band
    text = "OFERTA 30% OFF   ENVIO GRATIS"
    if across_object:
        ox0, oy0, ox1, oy1 = _truth_box(picture.truth)
        pad = round(0.25 * (ox1 - ox0))
        x0, x1 = max(2, ox0 - pad), min(w - 3, ox1 + pad)
        band = round(0.1 * h)
        y0 = round(oy0 + 0.62 * (oy1 - oy0))
    d = ImageDraw.Draw(image)
    d.rectangle([x0, y0, x1, y0 + band], fill=(214, 24, 36))
    size = round(band * 0.5)
    while d.textlength(text, font=font(size)) > 0.94 * (x1 - x0) and size > 8:
        size -= 1
    f = font(size)
    length = d.textlength(text, font=f)
    d.text(((x0 + x1 - length) / 2, y0 + band * 0.2), text, font=f, fill=(255, 255, 255))
    overlay = Image.new("L", image.size, 0)
    ImageDraw.Draw(overlay).rectangle([x0, y0, x1, y0 + band], fill=255)
    return replace(picture, name=picture.name + "+banner", image=image, defect=TEXT_BANNER, overlay=overlay)


def with_watermark(picture: LabelledPicture, *, text: str = "tienda-ejemplo.com") -> LabelledPicture:
    """The shop's name repeated diagonally over the whole picture, half transparent."""
    w, h = picture.image.size
    layer = Image.new("RGBA", (w * 2, h * 2), (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    f = font(round(h * 0.06))
    step_x, step_y = round(d.textlength(text, font=f) * 1.25), round(h * 0.16)
    for row, y in enumerate(range(0, h * 2, step_y)):
        for x in range(-(row % 2) * step_x // 2, w * 2, step_x):
            d.text((x + 1, y + 1), text, font=f, fill=(0, 0, 0, 70))
            d.text((x, y), text, font=f, fill=(255, 255, 255, 150))
    layer = layer.rotate(28, resample=Image.Resampling.BICUBIC).crop((w // 2, h // 2, w // 2 + w, h // 2 + h))
    image = picture.image.convert("RGBA")
    image.alpha_composite(layer)
    overlay = layer.getchannel("A").point(lambda v: 255 if v >= 40 else 0)
    return replace(
        picture, name=picture.name + "+watermark", image=image.convert("RGB"), defect=WATERMARK, overlay=overlay
    )


def with_badge(picture: LabelledPicture, *, text: str = "-30%") -> LabelledPicture:
    """A round sticker stuck over the product's top-right corner (a discount or free-shipping badge)."""
    image = picture.image.copy()
    _, y0, x1, _ = _truth_box(picture.truth)
    r = round(min(image.size) * 0.11)
    cx, cy = min(x1, image.width - r - 2), max(y0, r + 2)
    d = ImageDraw.Draw(image)
    d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=(252, 204, 0), outline=(200, 30, 30), width=max(2, r // 12))
    f = font(round(r * min(0.62, 2.6 / max(1, len(text)))))
    length = d.textlength(text, font=f)
    d.text((cx - length / 2, cy - r * 0.36), text, font=f, fill=(20, 20, 20))
    overlay = Image.new("L", image.size, 0)
    ImageDraw.Draw(overlay).ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
    return replace(picture, name=picture.name + "+badge", image=image, defect=BADGE, overlay=overlay)


def truncated(picture: LabelledPicture, *, side: str = "right", cut: float = 0.3) -> LabelledPicture:
    """The frame cuts ``cut`` of the product off on ``side`` (the photo is cropped there)."""
    x0, y0, x1, y1 = _truth_box(picture.truth)
    w, h = picture.image.size
    box = {
        "right": (0, 0, round(x1 - cut * (x1 - x0)), h),
        "left": (round(x0 + cut * (x1 - x0)), 0, w, h),
        "bottom": (0, 0, w, round(y1 - cut * (y1 - y0))),
    }[side]
    image, truth = picture.image.crop(box), picture.truth.crop(box)
    pasted = picture.pasted.crop(box) if picture.pasted is not None else None
    if max(image.size) < 520:  # keep it above the 500 px minimum: enlarge like a shop's re-export would
        factor = 520 / max(image.size)
        size = (round(image.width * factor), round(image.height * factor))
        image, truth = image.resize(size, Image.Resampling.BICUBIC), truth.resize(size, Image.Resampling.BICUBIC)
        pasted = pasted.resize(size, Image.Resampling.BICUBIC) if pasted is not None else None
    name = f"{picture.name}+cut-{side}"
    return replace(picture, name=name, image=image, truth=truth, defect=TRUNCATED, pasted=pasted)


def two_products(left: LabelledPicture, right: LabelledPicture, *, white: bool) -> LabelledPicture:
    """Two products side by side in one picture, on white or on a wooden table top."""
    w, h = SIZE
    backdrop = _background("white" if white else "wood", SIZE).copy()
    truth = Image.new("L", SIZE, 0)
    layers: list[tuple[Image.Image, Image.Image, tuple[int, int]]] = []
    for index, picture in enumerate((left, right)):
        box = _truth_box(picture.truth)
        crop, mask = picture.image.crop(box), picture.truth.crop(box)
        scale = min(0.44 * w / crop.width, 0.7 * h / crop.height)
        size = (round(crop.width * scale), round(crop.height * scale))
        crop, mask = crop.resize(size, Image.Resampling.LANCZOS), mask.resize(size, Image.Resampling.LANCZOS)
        x = round(w * (0.26 if index == 0 else 0.74) - size[0] / 2)
        layers.append((crop, mask, (x, (h - size[1]) // 2)))
        truth.paste(mask, (x, (h - size[1]) // 2), mask)
    clean = backdrop
    backdrop = _with_shadow(backdrop, truth, strength=0.14 if white else 0.3)
    layer = Image.new("RGB", SIZE)
    for crop, mask, xy in layers:
        backdrop.paste(crop, xy, mask)
        layer.paste(crop, xy, mask)
    name = f"{left.name}+{right.name}"
    truth, pasted = _labels(layer, truth, clean)
    kind = STUDIO if white else PHOTO_TEXTURED
    return LabelledPicture(name, kind, backdrop, truth, defect=TWO_PRODUCTS, pasted=pasted)


# --- the sets ------------------------------------------------------------------------------------------------------


def good_pictures() -> Iterator[LabelledPicture]:
    """Renders in four scenes and on white, and the photographic objects on four backdrops."""
    for index, look in enumerate(LOOKS):
        for scene in SCENES:
            picture = render(look, scene, seed=7 + index, yaw=-25.0 + 12 * (index % 4))
            yield picture
            if scene is Scene.STUDIO:
                yield on_white(picture, shadow=index % 2 == 0, seed=index)
    for index, obj in enumerate(PHOTO_OBJECTS):
        for background in BACKGROUNDS:
            yield photo_on(obj, background, seed=index * 10 + len(background))


def bad_pictures() -> Iterator[LabelledPicture]:
    """Each defect on a mix of white-backdrop and textured good pictures."""
    looks = list(LOOKS)
    for index, look in enumerate(looks[:6]):
        scene = SCENES[index % 3]
        picture = render(look, scene, seed=40 + index, yaw=-20.0 + 10 * (index % 3))
        white = on_white(render(look, Scene.STUDIO, seed=40 + index), shadow=index % 2 == 1, seed=index)
        obj = photo_on(PHOTO_OBJECTS[index], BACKGROUNDS[index % 4], seed=90 + index)
        yield with_banner(picture if index % 2 == 0 else white, top=index % 3 == 2, across_object=index % 3 == 1)
        yield with_watermark(white if index % 2 == 0 else picture)
        yield with_badge(obj if index % 2 == 0 else white, text="-30%" if index % 2 else "OFERTA")
        yield truncated(picture if index % 2 else white, side=("right", "left", "bottom")[index % 3])
        other = render(looks[(index + 3) % len(looks)], Scene.STUDIO, seed=60 + index)
        yield two_products(white if index % 2 == 0 else picture, other, white=index % 2 == 0)
