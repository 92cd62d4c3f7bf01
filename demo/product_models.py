"""3D models of the demo's products (notebook, monitor, desktop tower, all-in-one) built from textured boxes.

Dimensions are real-world centimetres (a 15.6" notebook is about 36 × 24 cm), so the products keep plausible
proportions next to each other and on the scenes' tables.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np
from PIL import Image

from demo.render3d import Quad, box
from demo.textures import (
    RGB,
    brushed_metal,
    display_face,
    keyboard_deck,
    plastic,
    screen_content,
    tower_front,
    tower_side,
)


class ProductKind(enum.StrEnum):
    NOTEBOOK = "notebook"
    MONITOR = "monitor"
    TOWER = "tower"
    ALL_IN_ONE = "all_in_one"


@dataclass(frozen=True)
class ProductLook:
    """How one product looks: its shape, finish, the brand printed on it and what its screen shows."""

    kind: ProductKind
    brand: str
    body: RGB = (48, 50, 56)
    accent: RGB = (60, 140, 255)
    metal: bool = False  # brushed aluminium instead of plastic
    wallpaper: str = "astronaut"
    glass_side: bool = False  # towers: tempered-glass side with lit fans


@dataclass(frozen=True)
class Model:
    quads: list[Quad]
    height: float  # cm, for framing
    width: float  # cm, largest horizontal extent


def build(look: ProductLook, rng: np.random.Generator) -> Model:
    builders = {
        ProductKind.NOTEBOOK: _notebook,
        ProductKind.MONITOR: _monitor,
        ProductKind.TOWER: _tower,
        ProductKind.ALL_IN_ONE: _all_in_one,
    }
    return builders[look.kind](look, rng)


def _shade(color: RGB, delta: int) -> RGB:
    return (max(0, min(255, color[0] + delta)), max(0, min(255, color[1] + delta)), max(0, min(255, color[2] + delta)))


def _material(look: ProductLook, size: tuple[int, int], rng: np.random.Generator, *, delta: int = 0) -> Image.Image:
    color = _shade(look.body, delta)
    return brushed_metal(color, size, rng) if look.metal else plastic(color, size, rng)


def _notebook(look: ProductLook, rng: np.random.Generator) -> Model:
    w, d, h = 35.8, 24.2, 1.8
    lid_h, lid_t, tilt = 23.0, 0.6, 16.0
    body = _material(look, (256, 64), rng)
    key = (24, 24, 27) if sum(look.body) > 240 else (14, 14, 16)
    deck = keyboard_deck((716, 484), look.body, key, rng)
    base = box((0.0, h / 2, 0.0), (w, h, d), {"default": body, "top": deck})
    screen = screen_content(look.wallpaper, (960, 560))
    face = display_face(
        screen,
        (716, 460),
        bezel=(12, 12, 14),
        border=(0.03, 0.05, 0.03, 0.1),
        brand=look.brand,
        logo_color=(150, 150, 155),
        webcam=True,
    )
    hinge_z = d / 2 - lid_t / 2
    lid = box(
        (0.0, h + lid_h / 2, hinge_z),
        (w, lid_h, lid_t),
        {"default": body, "front": face, "back": _material(look, (716, 460), rng)},
        pitch_deg=tilt,
        pivot=(0.0, h, hinge_z),
        emissive=("front",),
    )
    return Model(quads=base + lid, height=h + lid_h, width=w)


def _stand(look: ProductLook, rng: np.random.Generator, *, neck_h: float, z: float) -> list[Quad]:
    mat = _material(look, (128, 128), rng, delta=-8)
    base = box((0.0, 0.5, z + 1.0), (23.0, 1.0, 18.0), {"default": mat})
    neck = box((0.0, 1.0 + neck_h / 2, z + 3.2), (4.6, neck_h, 2.0), {"default": mat})
    return base + neck


def _monitor(look: ProductLook, rng: np.random.Generator) -> Model:
    pw, ph, pt, lift = 54.0, 32.5, 1.8, 9.0
    screen = screen_content(look.wallpaper, (1120, 640))
    face = display_face(
        screen,
        (1080, 650),
        bezel=(14, 14, 16),
        border=(0.012, 0.02, 0.012, 0.07),
        brand=look.brand,
        logo_color=(170, 170, 176),
        webcam=False,
    )
    panel = box(
        (0.0, lift + ph / 2, 0.0),
        (pw, ph, pt),
        {"default": _material(look, (256, 160), rng), "front": face},
        emissive=("front",),
    )
    hinge = box((0.0, lift + ph * 0.55, pt / 2 + 1.0), (12.0, 9.0, 2.0), {"default": _material(look, (64, 64), rng)})
    return Model(quads=panel + hinge + _stand(look, rng, neck_h=lift + ph * 0.4, z=0.0), height=lift + ph, width=pw)


def _all_in_one(look: ProductLook, rng: np.random.Generator) -> Model:
    pw, ph, pt, lift = 54.0, 37.0, 1.4, 7.0
    screen = screen_content(look.wallpaper, (1120, 640), dark_ui=False)
    face = display_face(
        screen,
        (1080, 740),
        bezel=(14, 14, 16),
        border=(0.014, 0.02, 0.014, 0.16),
        brand=look.brand,
        logo_color=(96, 96, 100),
        webcam=True,
        chin=_shade(look.body, 20),
    )
    panel = box(
        (0.0, lift + ph / 2, 0.0),
        (pw, ph, pt),
        {"default": _material(look, (256, 180), rng), "front": face},
        emissive=("front",),
    )
    return Model(quads=panel + _stand(look, rng, neck_h=lift + ph * 0.35, z=0.0), height=lift + ph, width=pw)


def _tower(look: ProductLook, rng: np.random.Generator) -> Model:
    w, h, d = 20.0, 43.0, 41.0
    front = tower_front((400, 860), look.body, look.accent, look.brand, rng)
    side = tower_side((820, 860), look.body, rng, glass=look.glass_side, glow=look.accent)
    plain = tower_side((820, 860), look.body, rng, glass=False)
    top = _material(look, (400, 820), rng)
    body = box(
        (0.0, h / 2 + 1.0, 0.0),
        (w, h, d),
        {"default": top, "front": front, "left": side, "right": side if look.glass_side else plain},
        emissive=("left", "right") if look.glass_side else (),
    )
    feet: list[Quad] = []
    foot = plastic((20, 20, 22), (32, 32), rng)
    for fx in (-w / 2 + 2, w / 2 - 2):
        for fz in (-d / 2 + 3, d / 2 - 3):
            feet += box((fx, 0.5, fz), (3.0, 1.0, 3.0), {"default": foot})
    return Model(quads=body + feet, height=h + 1.0, width=d)
