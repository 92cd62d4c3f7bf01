"""A tiny projective renderer for the demo's product photos: textured quads, a pinhole camera, painter's order.

Drawing products as flat 2D shapes makes them look like clip-art, and background removal behaves differently on
clip-art than on photographs. Real perspective, per-face lighting and soft cast shadows are what make the
generated pictures read as product photos, so the generator builds objects from 3D quads and projects them.

World units are centimetres, ``y`` points up, the ground is ``y = 0``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

Vec3 = tuple[float, float, float]


def _v(p: Sequence[float]) -> np.ndarray:
    return np.asarray(p, dtype=np.float64)


def _unit(p: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(p))
    return p / n if n else p


@dataclass(frozen=True)
class Camera:
    """Pinhole camera looking from ``eye`` at ``target``; ``focal`` is in pixels of the output image."""

    eye: Vec3
    target: Vec3
    width: int
    height: int
    focal: float

    def basis(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        forward = _unit(_v(self.target) - _v(self.eye))
        # right = up × forward keeps world +x on the right of the picture when looking along +z
        right = _unit(np.cross(_v((0.0, 1.0, 0.0)), forward))
        up = np.cross(forward, right)
        return right, up, forward

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World points (n, 3) → pixel coordinates (n, 2) and depth along the view axis (n,)."""
        right, up, forward = self.basis()
        rel = points - _v(self.eye)
        x, y, z = rel @ right, rel @ up, rel @ forward
        z = np.maximum(z, 1e-3)
        px = self.width / 2 + self.focal * x / z
        py = self.height / 2 - self.focal * y / z
        return np.stack([px, py], axis=1), z

    @staticmethod
    def orbit(
        target: Vec3, *, distance: float, yaw_deg: float, pitch_deg: float, width: int, height: int, fov_deg: float
    ) -> Camera:
        """A camera on a sphere around ``target``: yaw turns around the vertical axis, pitch looks down."""
        yaw, pitch = math.radians(yaw_deg), math.radians(pitch_deg)
        eye = (
            target[0] + distance * math.cos(pitch) * math.sin(yaw),
            target[1] + distance * math.sin(pitch),
            target[2] - distance * math.cos(pitch) * math.cos(yaw),
        )
        focal = (max(width, height) / 2) / math.tan(math.radians(fov_deg) / 2)
        return Camera(eye=eye, target=target, width=width, height=height, focal=focal)


@dataclass
class Quad:
    """A planar quadrilateral ``p0..p3`` (texture corners top-left, top-right, bottom-right, bottom-left).

    ``emissive`` faces (screens) ignore the light; ``edge`` draws a faint highlight along the outline, which is
    what a bevelled or rounded edge looks like from a few metres away.
    """

    points: np.ndarray  # (4, 3)
    texture: Image.Image
    emissive: bool = False
    edge: float = 0.18
    double_sided: bool = False

    @property
    def normal(self) -> np.ndarray:
        p = self.points
        return _unit(np.cross(p[1] - p[0], p[3] - p[0]))

    @property
    def center(self) -> np.ndarray:
        return np.asarray(self.points.mean(axis=0))


@dataclass(frozen=True)
class Light:
    direction: Vec3 = (-0.45, 0.8, -0.4)  # towards the light: upper left, in front of the object
    ambient: float = 0.55
    diffuse: float = 0.55


def shade_factor(normal: np.ndarray, light: Light) -> float:
    lam = max(0.0, float(np.dot(normal, _unit(_v(light.direction)))))
    return light.ambient + light.diffuse * lam


def _lit_texture(texture: Image.Image, factor: float) -> Image.Image:
    rgb = np.asarray(texture.convert("RGB"), dtype=np.float32) * factor
    lit = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB")
    if texture.mode == "RGBA":
        lit.putalpha(texture.getchannel("A"))
    return lit


NEAR = 1.0  # cm: geometry closer to the camera than this is clipped away


def render_quads(quads: Iterable[Quad], camera: Camera, light: Light, *, supersample: int = 2) -> Image.Image:
    """Render the quads onto a transparent RGBA image of the camera's size.

    Hidden surfaces are resolved per pixel with a depth buffer (painter's order fails for a monitor's neck
    behind its panel); anti-aliasing comes from rendering ``supersample`` times larger and downsampling.
    """
    ss = supersample
    big = Camera(camera.eye, camera.target, camera.width * ss, camera.height * ss, camera.focal * ss)
    target = _Target(big.width, big.height)
    eye = _v(camera.eye)
    for quad in quads:
        if float(np.dot(quad.normal, eye - quad.center)) <= 0 and not quad.double_sided:
            continue
        _paste_quad(target, quad, big, light)
    return target.image().resize((camera.width, camera.height), Image.Resampling.LANCZOS)


class _Target:
    """Colour, coverage and depth buffers of one render."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.rgba = np.zeros((height, width, 4), dtype=np.uint8)
        self.depth = np.full((height, width), np.inf, dtype=np.float32)

    def image(self) -> Image.Image:
        return Image.fromarray(self.rgba, "RGBA")


def _camera_matrices(camera: Camera) -> tuple[np.ndarray, np.ndarray]:
    right, up, forward = camera.basis()
    rot = np.stack([right, up, forward])
    k = np.array([[camera.focal, 0, camera.width / 2], [0, -camera.focal, camera.height / 2], [0, 0, 1]])
    return k, rot


def _clip_near(points_cam: np.ndarray) -> np.ndarray:
    """Sutherland–Hodgman against the plane z = NEAR (camera space)."""
    out: list[np.ndarray] = []
    n = len(points_cam)
    for i in range(n):
        cur, nxt = points_cam[i], points_cam[(i + 1) % n]
        cur_in, nxt_in = cur[2] >= NEAR, nxt[2] >= NEAR
        if cur_in:
            out.append(cur)
        if cur_in != nxt_in:
            t = (NEAR - cur[2]) / (nxt[2] - cur[2])
            out.append(cur + t * (nxt - cur))
    return np.asarray(out)


def _paste_quad(target: _Target, quad: Quad, camera: Camera, light: Light) -> None:
    """Map the quad's texture through the exact plane-to-screen homography, clipped at the near plane.

    Quads are parallelograms (box faces, planes), so texture (u, v) → world point is affine and the whole
    texture → screen mapping is one 3×3 homography, valid even when part of the quad lies behind the camera.
    """
    k, rot = _camera_matrices(camera)
    eye = _v(camera.eye)
    cam_pts = (quad.points - eye) @ rot.T
    poly_cam = _clip_near(cam_pts)
    if len(poly_cam) < 3:
        return
    proj = (k @ poly_cam.T).T
    poly = proj[:, :2] / proj[:, 2:3]
    x0, y0 = np.floor(poly.min(axis=0)).astype(int)
    x1, y1 = np.ceil(poly.max(axis=0)).astype(int)
    x0, y0 = max(int(x0), 0), max(int(y0), 0)
    x1, y1 = min(int(x1), target.width), min(int(y1), target.height)
    if x1 - x0 < 1 or y1 - y0 < 1:
        return
    tw, th = quad.texture.size
    p0, p1, p3 = quad.points[0], quad.points[1], quad.points[3]
    plane = np.column_stack([(p1 - p0) / tw, (p3 - p0) / th, p0 - eye])
    to_local = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]], dtype=np.float64)
    forward_h = to_local @ k @ rot @ plane
    try:
        inverse = np.linalg.inv(forward_h)
    except np.linalg.LinAlgError:
        return
    if abs(inverse[2, 2]) < 1e-12:
        return
    inverse = inverse / inverse[2, 2]
    coeffs = tuple(float(c) for c in inverse.flatten()[:8])
    factor = 1.0 if quad.emissive else shade_factor(quad.normal, light)
    tex = quad.texture if quad.emissive else _lit_texture(quad.texture, factor)
    tex = tex.convert("RGBA")
    size = (x1 - x0, y1 - y0)
    warped = tex.transform(size, Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BICUBIC)
    local = [(float(px - x0), float(py - y0)) for px, py in poly]
    if quad.edge > 0 and not quad.emissive:
        # drawn on the face itself, so only the inner half survives the mask: a highlight on the face's rim
        width = max(2, round(min(target.width, target.height) / 450))
        rim = Image.new("RGBA", size, (0, 0, 0, 0))
        ImageDraw.Draw(rim).line([*local, local[0]], fill=(255, 255, 255, int(255 * quad.edge)), width=width)
        warped.alpha_composite(rim)
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).polygon(local, fill=255)
    # camera-space depth of the plane at every pixel: z = (n·q) / (n·ray), with ray = K⁻¹(x, y, 1)
    n_cam = rot @ quad.normal
    q_cam = rot @ (p0 - eye)
    xs = (np.arange(x0, x1, dtype=np.float64) + 0.5 - camera.width / 2) / camera.focal
    ys = -(np.arange(y0, y1, dtype=np.float64) + 0.5 - camera.height / 2) / camera.focal
    denom = n_cam[0] * xs[None, :] + n_cam[1] * ys[:, None] + n_cam[2]
    with np.errstate(divide="ignore", invalid="ignore"):
        depth = (float(n_cam @ q_cam) / denom).astype(np.float32)
    pixels = np.asarray(warped)
    region = target.depth[y0:y1, x0:x1]
    cover = (np.asarray(mask) > 127) & (pixels[..., 3] > 127) & (depth > 0) & (depth < region - 1e-3)
    target.rgba[y0:y1, x0:x1][cover] = np.concatenate(
        [pixels[..., :3][cover], np.full((int(cover.sum()), 1), 255, np.uint8)], axis=1
    )
    region[cover] = depth[cover]


def convex_hull(points: np.ndarray) -> list[tuple[float, float]]:
    """Andrew's monotone chain on (n, 2) points; returns the hull counter-clockwise."""
    pts = sorted({(float(x), float(y)) for x, y in points})
    if len(pts) <= 2:
        return pts

    def cross(o: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list[tuple[float, float]] = []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    upper: list[tuple[float, float]] = []
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return lower[:-1] + upper[:-1]


def shadow_mask(quads: Sequence[Quad], camera: Camera, light: Light, *, softness: float = 0.03) -> Image.Image:
    """Soft shadow on the ground (``y = 0``) as an L mask: a contact shadow plus a cast shadow along the light."""
    vertices = np.concatenate([q.points for q in quads])
    ldir = _unit(_v(light.direction))
    along = ldir[1] if abs(ldir[1]) > 1e-3 else 1e-3
    cast = vertices - np.outer(vertices[:, 1] / along, ldir)
    cast[:, 1] = 0.0
    contact = vertices.copy()
    contact[:, 1] = 0.0
    size = max(camera.width, camera.height)
    mask = Image.new("L", (camera.width, camera.height), 0)
    layer = Image.new("L", mask.size, 0)
    ImageDraw.Draw(layer).polygon(convex_hull(camera.project(cast)[0]), fill=135)
    mask = Image.fromarray(
        np.maximum(np.asarray(mask), np.asarray(layer.filter(ImageFilter.GaussianBlur(size * softness * 0.7))))
    )
    layer = Image.new("L", mask.size, 0)
    ImageDraw.Draw(layer).polygon(convex_hull(camera.project(contact)[0]), fill=190)
    contact_blur = layer.filter(ImageFilter.GaussianBlur(size * softness * 0.3))
    return Image.fromarray(np.maximum(np.asarray(mask), np.asarray(contact_blur)))


def box(
    center: Vec3,
    size: Vec3,
    textures: dict[str, Image.Image],
    *,
    yaw_deg: float = 0.0,
    pitch_deg: float = 0.0,
    pivot: Vec3 | None = None,
    emissive: Sequence[str] = (),
    edge: float = 0.18,
) -> list[Quad]:
    """An axis-aligned box (then rotated) as six quads named front/back/left/right/top/bottom.

    ``front`` faces the camera at yaw 0 (towards ``-z``). ``pitch_deg`` tilts around the x axis through ``pivot``
    (a laptop lid's hinge); ``yaw_deg`` turns around the vertical axis through ``center``. A missing texture
    falls back to ``textures["default"]``.
    """
    cx, cy, cz = center
    hx, hy, hz = size[0] / 2, size[1] / 2, size[2] / 2
    c = [
        (cx - hx, cy + hy, cz - hz),  # 0 front top left
        (cx + hx, cy + hy, cz - hz),  # 1 front top right
        (cx + hx, cy - hy, cz - hz),  # 2 front bottom right
        (cx - hx, cy - hy, cz - hz),  # 3 front bottom left
        (cx - hx, cy + hy, cz + hz),  # 4 back top left
        (cx + hx, cy + hy, cz + hz),  # 5 back top right
        (cx + hx, cy - hy, cz + hz),  # 6 back bottom right
        (cx - hx, cy - hy, cz + hz),  # 7 back bottom left
    ]
    faces = {
        "front": (0, 1, 2, 3),
        "back": (5, 4, 7, 6),
        "left": (4, 0, 3, 7),
        "right": (1, 5, 6, 2),
        "top": (4, 5, 1, 0),
        "bottom": (3, 2, 6, 7),
    }
    pts = np.asarray(c, dtype=np.float64)
    if pitch_deg:
        pv = _v(pivot if pivot is not None else center)
        a = math.radians(pitch_deg)
        rot = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
        pts = (pts - pv) @ rot.T + pv
    if yaw_deg:
        pts = rotate_yaw(pts, yaw_deg, center)
    quads = []
    for name, idx in faces.items():
        tex = textures.get(name, textures["default"])
        quads.append(Quad(pts[list(idx)], tex, emissive=name in emissive, edge=edge))
    return quads


def rotate_yaw(points: np.ndarray, yaw_deg: float, origin: Vec3) -> np.ndarray:
    a = math.radians(yaw_deg)
    rot = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    o = _v(origin)
    return np.asarray((points - o) @ rot.T + o)


def yaw_quads(quads: Sequence[Quad], yaw_deg: float, origin: Vec3 = (0.0, 0.0, 0.0)) -> list[Quad]:
    return [Quad(rotate_yaw(q.points, yaw_deg, origin), q.texture, q.emissive, q.edge, q.double_sided) for q in quads]
