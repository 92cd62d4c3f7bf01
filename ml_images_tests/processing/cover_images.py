"""Generated cover candidates for the cover tests: products with known masks, and removers that fail like u2netp.

The pictures come from the project's labelled set (``demo.labelled_pictures``: scikit-image photographs
cut along a known outline, the demo's 3D renders) plus a printed box whose text the OCR must read. The removers
wrap the real rembg session and damage its output the way the issue describes (haze, a ghost of a lost part).
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from demo import labelled_pictures as lp
from demo.textures import font
from ml_images.download.results import DownloadedImage
from ml_images.processing.background import BackgroundRemover
from ml_images.search.candidates import ImageCandidate


def as_download(image: Image.Image, index: int = 0) -> DownloadedImage:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=92)
    url = f"https://127.0.0.1/cover/{index}.jpg"
    return DownloadedImage(
        candidate=ImageCandidate(image_url=url, rank=index), final_url=url, data=out.getvalue(), format="jpeg"
    )


def open_jpeg(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def printed_box(lines: tuple[str, ...], *, size: tuple[int, int] = (800, 600)) -> lp.LabelledPicture:
    """A dark blue product box printed with white text, on a white backdrop with a soft shadow."""
    w, h = size
    truth = Image.new("L", size, 0)
    box = (round(w * 0.22), round(h * 0.14), round(w * 0.78), round(h * 0.86))
    ImageDraw.Draw(truth).rounded_rectangle(box, radius=12, fill=255)
    image = Image.new("RGB", size, (255, 255, 255))
    shadow = Image.new("L", size, 0)
    shadow.paste(truth, (12, 16))
    shadow = shadow.filter(ImageFilter.GaussianBlur(10))
    image = Image.composite(Image.new("RGB", size, (215, 215, 215)), image, shadow.point(lambda v: v // 3))
    image.paste((28, 40, 78), mask=truth)
    d = ImageDraw.Draw(image)
    f = font(round(h * 0.05))
    for index, text in enumerate(lines):
        length = d.textlength(text, font=f)
        d.text(((w - length) / 2, h * (0.32 + 0.16 * index)), text, font=f, fill=(240, 240, 240))
    return lp.LabelledPicture("printed-box", lp.STUDIO, image, truth)


class WrappedRemover(BackgroundRemover):
    """Delegates to the real remover (its shared session), then alters the mask; counts its runs."""

    def __init__(self, inner: BackgroundRemover) -> None:
        super().__init__(inner.model_name)
        self.inner = inner
        self.runs = 0

    def alter(self, alpha: np.ndarray) -> np.ndarray:
        return alpha

    def remove(self, image: Image.Image) -> Image.Image:
        self.runs += 1
        out = self.inner.remove(image)
        out.putalpha(Image.fromarray(self.alter(np.asarray(out.getchannel("A")).copy()), "L"))
        return out


class HazyRemover(WrappedRemover):
    """The model's mask plus a grey veil over the whole background and a half-transparent ghost in a corner."""

    def alter(self, alpha: np.ndarray) -> np.ndarray:
        h, w = alpha.shape
        alpha = np.maximum(alpha, 50)
        alpha[: h // 6, : w // 6] = 110
        return alpha


class GhostRemover(WrappedRemover):
    """The model keeps the upper part of the object and leaves the rest as a faint ghost (the monitor whose bezel
    and stand were lost)."""

    def alter(self, alpha: np.ndarray) -> np.ndarray:
        ys, _ = np.nonzero(alpha >= 128)
        cut = int(ys.min() + 0.55 * (ys.max() - ys.min()))
        lower = alpha[cut:]
        lower[lower >= 128] = 70
        return alpha


class CountingRemover(WrappedRemover):
    """The real mask, unchanged; only counts the runs."""
