"""Text on a picture with rapidocr-onnxruntime: PP-OCRv4 detection, then recognition where text was found.

The models ship inside the ``rapidocr-onnxruntime`` wheel (Apache-2.0) and run on the project's onnxruntime, so
nothing is downloaded at run time. Detection runs on a reduced copy of the cover candidate (``detection_side``,
384 px by default: promotional banners, badges and watermarks are large enough to be found there, and detection
costs grow with the pixel count); recognition runs only on the lines found, the largest first, at most
``max_recognised`` of them.

One engine per process, built on first use and shared; calls are serialised by a lock (the engine keeps per-call
state in its pre-processing object, so two threads must not interleave inside it).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from ml_images.processing.background import available_cpus

log = logging.getLogger(__name__)

DEFAULT_DETECTION_SIDE = 384


@dataclass(frozen=True)
class TextLine:
    """A detected line: its quadrilateral in the coordinates of the image given to ``read`` (tl, tr, br, bl)."""

    quad: tuple[tuple[float, float], ...]
    text: str = ""
    score: float = 0.0

    @property
    def angle(self) -> float:
        """Slant of the line's top edge in degrees (-90..90, positive = rising to the right)."""
        (x0, y0), (x1, y1) = self.quad[0], self.quad[1]
        angle = float(np.degrees(np.arctan2(y0 - y1, x1 - x0)))
        if angle > 90:
            angle -= 180
        elif angle < -90:
            angle += 180
        return angle

    @property
    def size(self) -> tuple[float, float]:
        """(length along the line, height across it) in pixels."""
        q = np.asarray(self.quad, dtype=np.float64)
        length = (np.linalg.norm(q[1] - q[0]) + np.linalg.norm(q[2] - q[3])) / 2
        height = (np.linalg.norm(q[3] - q[0]) + np.linalg.norm(q[2] - q[1])) / 2
        return float(length), float(height)


@dataclass(frozen=True)
class TextReading:
    lines: tuple[TextLine, ...]
    size: tuple[int, int]  # the size of the copy the lines' coordinates refer to
    detect_seconds: float
    recognise_seconds: float


class TextDetector:
    """Finds text lines on a picture and reads them. ``intra_op_threads`` defaults to the process's cores."""

    def __init__(
        self,
        *,
        detection_side: int = DEFAULT_DETECTION_SIDE,
        max_recognised: int = 6,
        min_recognition_score: float = 0.5,
        min_aspect: float = 1.3,
        intra_op_threads: int | None = None,
    ) -> None:
        if detection_side < 64 or max_recognised < 0:
            raise ValueError("detection_side must be >= 64 and max_recognised >= 0")
        self.detection_side = detection_side
        self.max_recognised = max_recognised
        self.min_recognition_score = min_recognition_score
        self.min_aspect = min_aspect
        self.intra_op_threads = intra_op_threads or available_cpus()
        self._engine: Any = None
        self._build_lock = threading.Lock()
        self._run_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"TextDetector(detection_side={self.detection_side}, max_recognised={self.max_recognised})"

    def load(self) -> None:
        self._get_engine()

    def _get_engine(self) -> Any:
        engine = self._engine
        if engine is not None:
            return engine
        with self._build_lock:
            if self._engine is None:
                from rapidocr_onnxruntime import RapidOCR

                # limit_type "max": never enlarge the reduced copy (the library's default enlarges the shorter side
                # to 736 px, four times the work of a 384 px copy).
                self._engine = RapidOCR(
                    det_limit_type="max",
                    det_limit_side_len=max(self.detection_side, 64),
                    intra_op_num_threads=self.intra_op_threads,
                    inter_op_num_threads=1,
                )
            return self._engine

    def reduced(self, image: Image.Image) -> Image.Image:
        """The copy detection works on: RGB, longest side at most ``detection_side``."""
        copy = image.convert("RGB") if image.mode != "RGB" else image
        if max(copy.size) > self.detection_side:
            copy = copy.copy()
            copy.thumbnail((self.detection_side, self.detection_side), Image.Resampling.BILINEAR, reducing_gap=2.0)
        return copy

    def detect(self, image: Image.Image) -> tuple[list[TextLine], np.ndarray, float]:
        """Lines found on ``image`` (already reduced), the BGR array they refer to, and the seconds it took."""
        engine = self._get_engine()
        bgr = np.ascontiguousarray(np.asarray(image.convert("RGB"))[..., ::-1])
        started = time.perf_counter()
        with self._run_lock:
            boxes, _ = engine.text_det(bgr)
        seconds = time.perf_counter() - started
        lines = [] if boxes is None else [TextLine(tuple((float(x), float(y)) for x, y in box)) for box in boxes]
        return lines, bgr, seconds

    def recognise(self, bgr: np.ndarray, lines: list[TextLine]) -> tuple[list[TextLine], float]:
        """The same lines with their text (the ``max_recognised`` largest; the others keep ``text=""``)."""
        if not lines or self.max_recognised == 0:
            return lines, 0.0
        engine = self._get_engine()
        order = sorted(range(len(lines)), key=lambda i: -np.prod(lines[i].size))[: self.max_recognised]
        quads = [np.asarray(lines[i].quad, dtype=np.float32) for i in order]
        started = time.perf_counter()
        with self._run_lock:
            crops = engine.get_crop_img_list(bgr, quads)
            results, _ = engine.text_rec(crops)
        seconds = time.perf_counter() - started
        out = list(lines)
        for index, (text, score) in zip(order, results, strict=True):
            if float(score) >= self.min_recognition_score:
                out[index] = TextLine(lines[index].quad, str(text).strip(), float(score))
        return out, seconds

    def read(self, image: Image.Image) -> TextReading:
        """The text lines on ``image`` (reduced first) with what they say.

        The detector also answers to glossy highlights and striped edges; such regions are dropped in two steps:
        a line must be longer than it is tall (``min_aspect``, text runs along its line), and what recognition
        reads in it must be at least one character with ``min_recognition_score``. Lines beyond the
        ``max_recognised`` largest are kept unread (counted as text: the cautious side)."""
        small = self.reduced(image)
        found, bgr, det = self.detect(small)
        shaped = [line for line in found if line.size[0] >= self.min_aspect * line.size[1]]
        read, rec = self.recognise(bgr, shaped)
        recognised = sorted(range(len(shaped)), key=lambda i: -np.prod(shaped[i].size))[: self.max_recognised]
        lines = [line for i, line in enumerate(read) if i not in recognised or line.text]
        return TextReading(tuple(lines), small.size, det, rec)


_shared: dict[str, TextDetector] = {}
_shared_lock = threading.Lock()


def _forget_after_fork() -> None:
    # An ONNX Runtime session does not survive fork(); a forked worker builds its own on first use.
    global _shared_lock
    _shared.clear()
    _shared_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


def get_shared_text_detector() -> TextDetector:
    """One text detector (hence one pair of ONNX sessions) per process."""
    with _shared_lock:
        detector = _shared.get("default")
        if detector is None:
            detector = _shared["default"] = TextDetector()
        return detector
