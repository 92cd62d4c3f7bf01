"""Surfaces for the demo's product photos: real photographs and textures shipped with scikit-image, plus
procedural materials (wood, plastic, brushed aluminium) and device faces (screens, keyboards, front panels).

Nothing is downloaded: the scikit-image files are read straight from the installed package folder (its loader
functions may try the network for files that are not bundled). Everything is seeded, so the output is
byte-for-byte reproducible for a given Pillow/numpy build.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont, ImageOps

RGB = tuple[int, int, int]

# Shipped with scikit-image (installed with rembg): real photographs and textures.
SKIMAGE_FILES = {
    "astronaut": "astronaut.png",
    "brick": "brick.png",
    "chelsea": "chelsea.png",
    "coffee": "coffee.png",
    "grass": "grass.png",
    "gravel": "gravel.png",
    "hubble": "hubble_deep_field.jpg",
    "motorcycle": "motorcycle_left.png",
    "rocket": "rocket.jpg",
    "retina": "retina.jpg",
    "ihc": "ihc.png",
}


def skimage_data_dir() -> Path:
    import skimage.data

    return Path(skimage.data.__file__).parent


@functools.lru_cache(maxsize=32)
def skimage_photo(name: str) -> Image.Image:
    """One of scikit-image's bundled images, loaded from disk (never through its downloader)."""
    path = skimage_data_dir() / SKIMAGE_FILES[name]
    with Image.open(path) as im:
        im.load()
        return im.convert("RGB") if im.mode not in ("RGB", "L") else im.copy()


def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def value_noise(size: tuple[int, int], rng: np.random.Generator, *, scale: float, octaves: int = 4) -> np.ndarray:
    """Smooth noise in [-1, 1]: random grids upsampled bicubically and summed over octaves."""
    w, h = size
    out = np.zeros((h, w), dtype=np.float32)
    amp, total = 1.0, 0.0
    for o in range(octaves):
        cells = max(2, int(max(w, h) / (scale / (2**o))))
        gw, gh = max(2, int(cells * w / max(w, h)) + 2), max(2, int(cells * h / max(w, h)) + 2)
        grid = rng.uniform(0, 255, (gh, gw)).astype(np.uint8)
        layer = np.asarray(Image.fromarray(grid, "L").resize((w, h), Image.Resampling.BICUBIC), dtype=np.float32)
        out += amp * (layer / 127.5 - 1.0)
        total += amp
        amp *= 0.5
    return np.asarray(out / total)


def to_image(rgb: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB")


def colorize(gray: Image.Image, stops: list[tuple[float, RGB]]) -> Image.Image:
    """Gradient-map a grey image: luminance 0..1 → colours interpolated between ``stops``."""
    g = np.asarray(gray.convert("L"), dtype=np.float32) / 255.0
    xs = np.asarray([s[0] for s in stops], dtype=np.float32)
    channels = [np.interp(g, xs, np.asarray([s[1][c] for s in stops], dtype=np.float32)) for c in range(3)]
    return to_image(np.stack(channels, axis=-1))


# --- materials ---------------------------------------------------------------------------------------------------


def plastic(color: RGB, size: tuple[int, int], rng: np.random.Generator, *, grain: float = 3.0) -> Image.Image:
    """Satin plastic: a soft vertical light falloff and fine grain (flat fills look like vector art)."""
    w, h = size
    ramp = np.linspace(1.06, 0.9, h, dtype=np.float32)[:, None, None]
    base = np.asarray(color, dtype=np.float32)[None, None, :] * ramp
    noise = rng.normal(0, grain, (h, w, 1)).astype(np.float32)
    return to_image(base + noise)


def brushed_metal(color: RGB, size: tuple[int, int], rng: np.random.Generator) -> Image.Image:
    """Brushed aluminium: horizontal streaks plus a broad diagonal sheen."""
    w, h = size
    streaks = rng.normal(0, 1, (h, 1)).astype(np.float32) * 5 + rng.normal(0, 1, (h, w)).astype(np.float32) * 2.5
    streaks = np.asarray(Image.fromarray(streaks).filter(ImageFilter.BoxBlur(0)), dtype=np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    sheen = 14 * np.exp(-(((xx / w - 0.3) - (yy / h) * 0.5) ** 2) / 0.02)
    base = np.asarray(color, dtype=np.float32)[None, None, :] + (streaks + sheen)[..., None]
    return to_image(base)


def wood(size: tuple[int, int], rng: np.random.Generator, *, tone: str = "walnut") -> Image.Image:
    """Planked table top: long streaky grain along the planks, per-plank tone, seams and end joints."""
    palettes = {
        "walnut": [(0.0, (72, 44, 26)), (0.4, (130, 84, 52)), (0.75, (172, 120, 78)), (1.0, (202, 152, 102))],
        "oak": [(0.0, (112, 76, 44)), (0.45, (164, 122, 78)), (0.8, (198, 158, 110)), (1.0, (222, 188, 140))],
    }
    w, h = size
    n_planks = int(rng.integers(14, 19))
    plank_h = h / n_planks
    yy = np.arange(h, dtype=np.float32)[:, None]
    plank = np.minimum((yy // plank_h).astype(int), n_planks - 1)

    def streaks(cells_y: int, cells_x: int) -> np.ndarray:
        grid = rng.normal(0, 1, (cells_y, cells_x)).astype(np.float32)
        img = Image.fromarray(grid, "F").resize((w, h), Image.Resampling.BILINEAR)
        return np.asarray(img, dtype=np.float32)

    # grain: noise stretched along the plank (few cells across x, many across y) at three scales
    grain = 0.6 * streaks(h // 3, max(2, w // 300)) + 0.3 * streaks(h // 10, max(2, w // 120))
    grain += 0.25 * streaks(h // 40, max(2, w // 60))
    waves = np.sin(yy / plank_h * 40 + streaks(max(2, h // 60), max(2, w // 200)) * 3.0)
    tones = rng.uniform(-0.12, 0.12, n_planks).astype(np.float32)
    lum = 0.55 + 0.09 * grain + 0.05 * waves + tones[plank]
    seam = np.minimum(yy - plank * plank_h, (plank + 1) * plank_h - yy)
    lum = lum * np.clip(0.45 + seam / 3.0, 0.45, 1.0)
    xx = np.arange(w, dtype=np.float32)[None, :]
    joints = rng.uniform(0.1, 0.9, n_planks) * w
    lum = lum * np.where(np.abs(xx - joints[plank].astype(np.float32)) < 1.6, 0.55, 1.0)
    gray = Image.fromarray(np.clip(lum * 255, 0, 255).astype(np.uint8), "L")
    return colorize(gray, palettes[tone])


def _tiled(tile: Image.Image, size: tuple[int, int], tile_px: int) -> Image.Image:
    """Repeat a texture with alternate mirroring (hides seams) at ``tile_px`` per tile."""
    t = tile.resize((tile_px, round(tile_px * tile.height / tile.width)), Image.Resampling.LANCZOS)
    out = Image.new(t.mode, size)
    for j in range(0, size[1], t.height):
        for i in range(0, size[0], t.width):
            piece = t
            if (i // t.width) % 2:
                piece = ImageOps.mirror(piece)
            if (j // t.height) % 2:
                piece = ImageOps.flip(piece)
            out.paste(piece, (i, j))
    return out


def brick_wall(size: tuple[int, int], *, style: str = "red", tile_px: int = 180) -> Image.Image:
    """scikit-image's brick photograph, turned to lie as a wall, tiled, and gradient-mapped to red or white brick."""
    stops = {
        "red": [(0.0, (92, 46, 36)), (0.35, (162, 84, 62)), (0.62, (194, 114, 86)), (0.8, (216, 192, 172)),
                (1.0, (238, 228, 216))],
        "white": [(0.0, (150, 146, 138)), (0.4, (206, 202, 194)), (0.75, (232, 229, 222)), (1.0, (245, 243, 238))],
    }  # fmt: skip
    brick = ImageOps.autocontrast(skimage_photo("brick"), cutoff=1).rotate(90, expand=True)
    return colorize(_tiled(brick, size, tile_px), stops[style])


def concrete(size: tuple[int, int], *, dark: bool = False) -> Image.Image:
    """A polished concrete / terrazzo counter from the gravel texture."""
    g = _tiled(skimage_photo("gravel"), size, 220).filter(ImageFilter.GaussianBlur(0.8))
    stops = (
        [(0.0, (10, 10, 12)), (0.5, (22, 22, 25)), (1.0, (40, 40, 44))]
        if dark
        else [(0.0, (136, 134, 130)), (0.5, (170, 167, 162)), (1.0, (198, 195, 190))]
    )
    return colorize(g, stops)


def workshop_backdrop(size: tuple[int, int]) -> Image.Image:
    """The shelves of scikit-image's garage photograph, without the motorcycle (a strong object would compete)."""
    photo = skimage_photo("motorcycle")
    return _tiled(photo.crop((595, 0, 741, 225)), size, 420)


def studio_sweep(size: tuple[int, int], *, top: RGB, bottom: RGB) -> Image.Image:
    w, h = size
    t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    rgb = np.asarray(top, np.float32) * (1 - t) + np.asarray(bottom, np.float32) * t
    return to_image(np.broadcast_to(rgb, (h, w, 3)).copy())


def _cover(im: Image.Image, size: tuple[int, int]) -> Image.Image:
    return ImageOps.fit(im, size, Image.Resampling.BICUBIC)


# --- device faces ------------------------------------------------------------------------------------------------


def screen_content(wallpaper: str, size: tuple[int, int], *, dark_ui: bool = True) -> Image.Image:
    """A desktop: a real photograph as wallpaper, a taskbar with icons and a clock, one open window."""
    w, h = size
    img = _cover(skimage_photo(wallpaper).convert("RGB"), size)
    d = ImageDraw.Draw(img, "RGBA")
    bar = max(8, h // 22)
    d.rectangle([0, h - bar, w, h], fill=(20, 22, 28, 215) if dark_ui else (236, 238, 242, 220))
    for i in range(7):
        x = w // 2 - 4 * bar + i * int(bar * 1.15)
        colors = [(0, 120, 212), (240, 180, 0), (232, 72, 56), (64, 180, 100), (150, 90, 220), (0, 170, 200)]
        d.rounded_rectangle(
            [x, h - bar + bar * 0.2, x + bar * 0.6, h - bar * 0.2], radius=bar * 0.12, fill=(*colors[i % 6], 255)
        )
    d.text((w - bar * 3.2, h - bar * 0.85), "10:42", fill=(235, 235, 235), font=font(max(6, int(bar * 0.5))))
    # an open browser-like window on the left third keeps the screen from being "just a photo"
    wx0, wy0, wx1, wy1 = int(w * 0.05), int(h * 0.12), int(w * 0.34), int(h * 0.58)
    d.rectangle([wx0 + 4, wy0 + 6, wx1 + 6, wy1 + 8], fill=(0, 0, 0, 60))
    d.rectangle([wx0, wy0, wx1, wy1], fill=(248, 248, 250, 245))
    d.rectangle([wx0, wy0, wx1, wy0 + bar], fill=(222, 226, 232, 255))
    for k in range(3):
        d.ellipse([wx0 + 6 + k * bar * 0.6, wy0 + bar * 0.3, wx0 + 6 + k * bar * 0.6 + bar * 0.4, wy0 + bar * 0.7],
                  fill=[(236, 96, 86), (244, 190, 80), (96, 200, 110)][k])  # fmt: skip
    ly = wy0 + bar * 1.6
    while ly < wy1 - bar:
        d.rectangle([wx0 + bar * 0.6, ly, wx0 + (wx1 - wx0) * 0.85, ly + bar * 0.18], fill=(180, 186, 196, 255))
        ly += bar * 0.55
    return img


def glass_sheen(img: Image.Image, strength: float = 0.22) -> Image.Image:
    """A faint diagonal reflection: glossy screens catch the room light."""
    w, h = img.size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    band = np.exp(-((((xx / w) * 0.8 + (yy / h) * 0.6) - 0.55) ** 2) / 0.02) * strength
    base = np.asarray(img.convert("RGB"), dtype=np.float32)
    out = base + (255 - base) * band[..., None]
    return to_image(out)


def display_face(
    screen: Image.Image,
    size: tuple[int, int],
    *,
    bezel: RGB,
    border: tuple[float, float, float, float],
    brand: str | None,
    logo_color: RGB,
    webcam: bool,
    chin: RGB | None = None,
) -> Image.Image:
    """The front of a lid, monitor or all-in-one: bezel colour, the screen inset by ``border`` (l, t, r, b)."""
    w, h = size
    face = Image.new("RGB", size, bezel)
    left, t, r, b = (int(border[0] * w), int(border[1] * h), int(border[2] * w), int(border[3] * h))
    sw, sh = w - left - r, h - t - b
    face.paste(glass_sheen(screen.resize((sw, sh), Image.Resampling.LANCZOS)), (left, t))
    d = ImageDraw.Draw(face)
    if chin is not None:
        d.rectangle([0, h - b, w, h], fill=chin)
    if webcam and t > 6:
        cr = max(2, t // 6)
        d.ellipse([w // 2 - cr, t // 2 - cr, w // 2 + cr, t // 2 + cr], fill=(12, 12, 14))
    if brand and b > 10:
        f = font(max(8, int(b * 0.42)))
        box = d.textbbox((0, 0), brand, font=f)
        d.text(((w - (box[2] - box[0])) / 2, h - b + (b - (box[3] - box[1])) / 2 - box[1]), brand,
               fill=logo_color, font=f)  # fmt: skip
    return face


def keyboard_deck(size: tuple[int, int], color: RGB, key_color: RGB, rng: np.random.Generator) -> Image.Image:
    """A laptop's top case seen from above: six rows of keys, a touchpad, speaker grilles."""
    w, h = size
    deck = plastic(color, size, rng, grain=2.0)
    d = ImageDraw.Draw(deck)
    kx0, kx1 = w * 0.07, w * 0.93
    ky0, ky1 = h * 0.08, h * 0.52
    rows, cols = 6, 15
    kw, kh = (kx1 - kx0) / cols, (ky1 - ky0) / rows
    shadow = tuple(max(0, c - 30) for c in color)
    for r in range(rows):
        for c in range(cols):
            x, y = kx0 + c * kw, ky0 + r * kh
            if r == rows - 1 and 4 <= c <= 9:
                if c == 4:  # space bar
                    d.rounded_rectangle([x + kw * 0.08, y + kh * 0.1, x + kw * 6 - kw * 0.08, y + kh * 0.9],
                                        radius=kw * 0.1, fill=key_color, outline=shadow)  # fmt: skip
                continue
            d.rounded_rectangle([x + kw * 0.08, y + kh * 0.1, x + kw * 0.92, y + kh * 0.9], radius=kw * 0.1,
                                fill=key_color, outline=shadow)  # fmt: skip
    tp = [w * 0.34, h * 0.6, w * 0.66, h * 0.92]
    d.rounded_rectangle(tp, radius=w * 0.012, fill=tuple(min(255, c + 8) for c in color), outline=shadow)
    for side in (0.03, 0.95):
        for k in range(10):
            y = ky0 + k * (ky1 - ky0) / 10
            d.line([w * side, y, w * (side + 0.02), y], fill=shadow, width=1)
    return deck


def tower_front(size: tuple[int, int], color: RGB, accent: RGB, brand: str, rng: np.random.Generator) -> Image.Image:
    """Front panel of a desktop tower: mesh intake, a power button with an LED ring, USB ports, a badge."""
    w, h = size
    face = plastic(color, size, rng, grain=2.5)
    d = ImageDraw.Draw(face)
    hole = max(2, w // 60)
    dark = tuple(max(0, c - 28) for c in color)
    for y in range(int(h * 0.3), int(h * 0.92), hole * 3):
        off = (y // (hole * 3)) % 2 * hole * 1.5
        for x in range(int(w * 0.12 + off), int(w * 0.88), hole * 3):
            d.ellipse([x, y, x + hole * 1.6, y + hole * 1.6], fill=dark)
    cx, cy, rr = w * 0.5, h * 0.12, w * 0.07
    d.ellipse([cx - rr * 1.35, cy - rr * 1.35, cx + rr * 1.35, cy + rr * 1.35], fill=accent)
    d.ellipse([cx - rr, cy - rr, cx + rr, cy + rr], fill=tuple(min(255, c + 25) for c in color))
    for i in range(2):
        px = w * (0.3 + 0.3 * i)
        d.rectangle([px, h * 0.2, px + w * 0.1, h * 0.215], fill=(18, 18, 20))  # USB ports
    f = font(max(8, w // 10))
    box = d.textbbox((0, 0), brand, font=f)
    d.text(((w - (box[2] - box[0])) / 2, h * 0.94 - (box[3] - box[1])), brand, fill=(200, 200, 204), font=f)
    return face


def tower_side(
    size: tuple[int, int], color: RGB, rng: np.random.Generator, *, glass: bool, glow: RGB = (80, 160, 255)
) -> Image.Image:
    """Side panel: tempered glass with lit fans and a graphics card, or plain steel with a vent."""
    w, h = size
    if not glass:
        side = plastic(color, size, rng, grain=2.0)
        d = ImageDraw.Draw(side)
        dark = tuple(max(0, c - 30) for c in color)
        for y in range(int(h * 0.15), int(h * 0.45), max(3, h // 60)):
            d.line([w * 0.2, y, w * 0.6, y], fill=dark, width=max(1, h // 200))
        return side
    side = Image.new("RGB", size, (16, 17, 21))
    d = ImageDraw.Draw(side, "RGBA")
    d.rectangle([w * 0.08, h * 0.06, w * 0.72, h * 0.5], fill=(30, 32, 38, 255))  # motherboard
    d.rectangle([w * 0.12, h * 0.56, w * 0.8, h * 0.64], fill=(40, 42, 48, 255))  # graphics card
    d.rectangle([w * 0.12, h * 0.64, w * 0.8, h * 0.655], fill=(*glow, 255))
    d.rectangle([w * 0.06, h * 0.8, w * 0.94, h * 0.95], fill=(26, 27, 31, 255))  # PSU shroud
    glow_layer = Image.new("RGB", size, (0, 0, 0))
    g = ImageDraw.Draw(glow_layer)
    for k in range(3):
        cy = h * (0.14 + 0.2 * k)
        cx, r = w * 0.9, w * 0.08
        g.ellipse([cx - r, cy - r, cx + r, cy + r], outline=glow, width=max(2, w // 60))
        d.ellipse([cx - r * 0.85, cy - r * 0.85, cx + r * 0.85, cy + r * 0.85], fill=(22, 22, 26, 255))
    g.ellipse([w * 0.3, h * 0.18, w * 0.46, h * 0.3], outline=glow, width=max(2, w // 80))  # CPU cooler ring
    blurred = glow_layer.filter(ImageFilter.GaussianBlur(max(2, w // 50)))
    out = np.asarray(side, np.float32) + np.asarray(blurred, np.float32) * 1.2 + np.asarray(glow_layer, np.float32)
    return glass_sheen(to_image(out), 0.12)
