"""Photo sets for the demo: a product standing on a table in front of a wall, lit, shadowed and "shot".

A scene is a table top and a wall rendered with the same camera as the product (so the horizon and the cast
shadow agree with the product's perspective), a shallow depth of field on the background, optional props, and
the grading of a real camera (white balance, vignetting, sensor noise).
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter

from demo.product_models import Model, ProductLook, build
from demo.render3d import Camera, Light, Quad, render_quads, shadow_mask
from demo.textures import (
    brick_wall,
    concrete,
    skimage_photo,
    studio_sweep,
    to_image,
    wood,
    workshop_backdrop,
)


class Scene(enum.StrEnum):
    BRICK_DESK = "brick_desk"  # red brick wall, walnut desk
    LOFT = "loft"  # white-painted brick, concrete counter
    WORKSHOP = "workshop"  # shelves of a garage (photograph), oak bench
    CAFE = "cafe"  # walnut table with an espresso cup (photograph) beside the product
    STUDIO = "studio"  # light grey paper sweep
    DARK = "dark"  # black backdrop, dark slate: the picture a white-background rule should refuse


@dataclass(frozen=True)
class Shot:
    """Camera and framing of one photo."""

    scene: Scene
    width: int
    height: int
    yaw: float = -25.0  # degrees; negative shows the left side
    pitch: float = 18.0  # degrees looking down
    fill: float = 0.68  # fraction of the frame's shorter side the product spans
    shift: float = 0.0  # horizontal offset of the product, fraction of the width (props need room)
    seed: int = 0


@dataclass(frozen=True)
class _Look:
    wall_z: float
    light: Light
    gains: tuple[float, float, float]
    vignette: float
    shadow: float
    wall_blur: float  # fraction of the image size


_SCENES: dict[Scene, _Look] = {
    Scene.BRICK_DESK: _Look(55.0, Light((-0.5, 0.8, -0.35), 0.55, 0.55), (1.05, 1.0, 0.92), 0.18, 0.55, 0.006),
    Scene.LOFT: _Look(70.0, Light((0.45, 0.85, -0.35), 0.6, 0.5), (0.98, 1.0, 1.03), 0.18, 0.45, 0.005),
    Scene.WORKSHOP: _Look(90.0, Light((-0.4, 0.85, -0.45), 0.55, 0.55), (1.06, 1.0, 0.9), 0.2, 0.5, 0.008),
    Scene.CAFE: _Look(60.0, Light((0.5, 0.8, -0.3), 0.55, 0.55), (1.07, 1.0, 0.9), 0.2, 0.55, 0.007),
    Scene.STUDIO: _Look(80.0, Light((-0.3, 0.9, -0.4), 0.62, 0.45), (1.0, 1.0, 1.0), 0.12, 0.35, 0.0),
    Scene.DARK: _Look(60.0, Light((-0.6, 0.7, -0.35), 0.32, 0.6), (0.96, 0.98, 1.05), 0.45, 0.6, 0.0),
}


def render_shot(look: ProductLook, shot: Shot) -> Image.Image:
    """One RGB photograph of the product in the scene, deterministic for ``(look, shot)``."""
    return render_shot_with_mask(look, shot)[0]


def render_shot_with_mask(look: ProductLook, shot: Shot) -> tuple[Image.Image, Image.Image]:
    """The photograph and the true object mask beside it (mode ``L``, the product's rendered coverage: 255 on the
    product, 0 on the set, anti-aliased along the outline). The mask excludes the shadow and the props, which are
    background for a cut-out; benchmarks measure cut-outs against it."""
    rng = np.random.default_rng(shot.seed)
    model = build(look, rng)
    style = _SCENES[shot.scene]
    camera = _frame(model, shot)
    background = _background(shot, style, camera, rng)
    shadow = shadow_mask(model.quads, camera, style.light, softness=0.025)
    shade = 1.0 - style.shadow * np.asarray(shadow, dtype=np.float32)[..., None] / 255.0
    photo = Image.fromarray(np.clip(np.asarray(background, np.float32) * shade, 0, 255).astype(np.uint8), "RGB")
    photo = photo.convert("RGBA")
    prop = _cup_prop(camera, model) if shot.scene is Scene.CAFE else None
    if prop is not None:
        photo.alpha_composite(prop[0], prop[1])
    product = render_quads(model.quads, camera, style.light, supersample=2)
    photo.alpha_composite(_contact_darkening(product))
    photo.alpha_composite(product)
    return _grade(photo.convert("RGB"), style, rng), product.getchannel("A")


def _frame(model: Model, shot: Shot) -> Camera:
    """Place the camera so the product spans ``fill`` of the frame, shifted sideways by ``shift``."""
    vertices = np.concatenate([q.points for q in model.quads])
    target = (0.0, model.height * 0.42, 0.0)
    distance = 150.0
    camera = Camera.orbit(target, distance=distance, yaw_deg=shot.yaw, pitch_deg=shot.pitch,
                          width=shot.width, height=shot.height, fov_deg=34.0)  # fmt: skip
    for _ in range(3):
        pts, _ = camera.project(vertices)
        span = max((pts[:, 0].max() - pts[:, 0].min()) / shot.width, (pts[:, 1].max() - pts[:, 1].min()) / shot.height)
        span_short = span * max(shot.width, shot.height) / min(shot.width, shot.height)
        distance *= span_short / shot.fill if span_short > 0 else 1.0
        distance = float(np.clip(distance, 30.0, 2000.0))
        camera = Camera.orbit(target, distance=distance, yaw_deg=shot.yaw, pitch_deg=shot.pitch,
                              width=shot.width, height=shot.height, fov_deg=34.0)  # fmt: skip
    pts, _ = camera.project(vertices)
    # centre the product's projected box, then shift it: move the aim point along the camera's right axis
    right, up, _ = camera.basis()
    cx = (pts[:, 0].max() + pts[:, 0].min()) / 2 - shot.width / 2 - shot.shift * shot.width
    cy = (pts[:, 1].max() + pts[:, 1].min()) / 2 - shot.height / 2
    depth = distance
    move = right * (cx * depth / camera.focal) - up * (cy * depth / camera.focal)
    return Camera(
        eye=tuple(float(v) for v in np.asarray(camera.eye) + move),  # type: ignore[arg-type]
        target=tuple(float(v) for v in np.asarray(camera.target) + move),  # type: ignore[arg-type]
        width=shot.width,
        height=shot.height,
        focal=camera.focal,
    )


def _background(shot: Shot, style: _Look, camera: Camera, rng: np.random.Generator) -> Image.Image:
    size = (shot.width, shot.height)
    wall_z = style.wall_z
    wall_tex, desk_tex = _surfaces(shot.scene)
    x0, x1 = -260.0, 260.0
    wall = Quad(np.array([(x0, 240.0, wall_z), (x1, 240.0, wall_z), (x1, -40.0, wall_z), (x0, -40.0, wall_z)]),
                wall_tex, edge=0.0)  # fmt: skip
    near = float(np.asarray(camera.eye)[2]) - 40.0
    dx0, dx1 = -220.0, 220.0
    desk = [Quad(np.array([(dx0, 0.0, wall_z), (dx1, 0.0, wall_z), (dx1, 0.0, near), (dx0, 0.0, near)]),
                 desk_tex, edge=0.0)]  # fmt: skip
    flat = Light(style.light.direction, ambient=1.0, diffuse=0.0)
    wall_layer = render_quads([wall], camera, flat, supersample=1)
    desk_layer = render_quads(desk, camera, flat, supersample=1)
    base = Image.new("RGBA", size, (20, 20, 20, 255))
    if style.wall_blur:
        wall_layer = wall_layer.filter(ImageFilter.GaussianBlur(style.wall_blur * max(size)))
        desk_layer = _depth_blur(desk_layer, style.wall_blur * max(size) * 0.5)
    base.alpha_composite(wall_layer)
    # light falls off up the wall, away from the table lamp / window
    h = size[1]
    falloff = np.linspace(0.78, 1.0, h, dtype=np.float32)[:, None, None]
    base_rgb = np.asarray(base.convert("RGB"), np.float32) * falloff
    base = to_image(base_rgb).convert("RGBA")
    base.alpha_composite(desk_layer)
    return base.convert("RGB")


def _depth_blur(layer: Image.Image, radius: float) -> Image.Image:
    """Blur the far half of the table more than the near half (a cheap depth of field)."""
    blurred = layer.filter(ImageFilter.GaussianBlur(radius))
    h = layer.height
    ramp = np.linspace(255, 0, h, dtype=np.float32)
    mask = Image.fromarray(np.broadcast_to(ramp[:, None], (h, layer.width)).astype(np.uint8), "L")
    return Image.composite(blurred, layer, mask)


@functools.lru_cache(maxsize=8)
def _surfaces(scene: Scene) -> tuple[Image.Image, Image.Image]:
    """Wall and table textures of a scene; one fixed set per scene (a set is the same room in every photo)."""
    rng = np.random.default_rng(sorted(Scene).index(scene) + 101)
    wall_size, desk_size = (1400, 650), (2400, 1600)
    if scene is Scene.BRICK_DESK:
        return brick_wall(wall_size, style="red"), wood(desk_size, rng, tone="walnut")
    if scene is Scene.LOFT:
        return brick_wall(wall_size, style="white"), concrete(desk_size)
    if scene is Scene.WORKSHOP:
        return workshop_backdrop(wall_size), wood(desk_size, rng, tone="oak")
    if scene is Scene.CAFE:
        return brick_wall(wall_size, style="red").filter(ImageFilter.GaussianBlur(3)), wood(desk_size, rng)
    if scene is Scene.STUDIO:
        return (
            studio_sweep(wall_size, top=(206, 208, 212), bottom=(232, 233, 236)),
            studio_sweep(desk_size, top=(226, 227, 230), bottom=(240, 240, 242)),
        )
    return (
        studio_sweep(wall_size, top=(6, 6, 8), bottom=(16, 16, 19)),
        concrete(desk_size, dark=True),
    )


def _cup_prop(camera: Camera, model: Model) -> tuple[Image.Image, tuple[int, int]] | None:
    """scikit-image's espresso photograph, cut out and stood on the table beside the product."""
    photo = skimage_photo("coffee")
    mask = Image.new("L", photo.size, 0)
    d = ImageDraw.Draw(mask)
    d.ellipse([78, 74, 479, 387], fill=255)  # saucer
    d.ellipse([171, 17, 410, 212], fill=255)  # cup rim
    d.polygon([(397, 80), (403, 66), (417, 66), (424, 76), (416, 140), (398, 140)], fill=255)  # spoon
    sprite = photo.convert("RGBA")
    sprite.putalpha(mask.filter(ImageFilter.GaussianBlur(1.5)))
    spot = np.array([[-(model.width / 2 + 14.0), 0.0, -12.0], [-(model.width / 2 + 14.0) + 15.0, 0.0, -12.0]])
    pts, depth = camera.project(spot)
    px_per_15cm = float(np.linalg.norm(pts[1] - pts[0]))
    scale = px_per_15cm / 400.0
    if scale <= 0.02 or depth[0] <= 0:
        return None
    size = (max(1, round(sprite.width * scale)), max(1, round(sprite.height * scale)))
    sprite = sprite.resize(size, Image.Resampling.LANCZOS)
    cx, cy = pts[0] + (pts[1] - pts[0]) / 2
    x, y = round(cx - size[0] / 2), round(cy - size[1] * 0.78)
    layer = Image.new("RGBA", (camera.width, camera.height), (0, 0, 0, 0))
    shadow = Image.new("L", layer.size, 0)
    ImageDraw.Draw(shadow).ellipse([x + size[0] * 0.08, y + size[1] * 0.3, x + size[0] * 0.98, y + size[1] * 1.02],
                                   fill=120)  # fmt: skip
    shadow = shadow.filter(ImageFilter.GaussianBlur(max(2, size[0] // 20)))
    layer.paste((0, 0, 0, 255), (0, 0), shadow)
    layer.alpha_composite(sprite, (x, y))
    return layer, (0, 0)


def _contact_darkening(product: Image.Image) -> Image.Image:
    """A thin dark halo where the product meets the table: ambient occlusion the renderer does not compute."""
    alpha = product.getchannel("A")
    grown = alpha.filter(ImageFilter.MaxFilter(5)).filter(ImageFilter.GaussianBlur(3))
    ring = ImageChops.subtract(grown, alpha)
    layer = Image.new("RGBA", product.size, (0, 0, 0, 0))
    layer.putalpha(ring.point(lambda v: int(v * 0.25)))
    return layer


def _grade(photo: Image.Image, style: _Look, rng: np.random.Generator) -> Image.Image:
    """Camera look: white balance, vignetting, a touch of sensor noise."""
    w, h = photo.size
    rgb = np.asarray(photo, dtype=np.float32) * np.asarray(style.gains, dtype=np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2
    rgb *= (1.0 - style.vignette * np.clip(r2 / 2, 0, 1) ** 1.2)[..., None]
    rgb += rng.normal(0, 2.2, rgb.shape).astype(np.float32)
    return to_image(rgb)
