"""Deterministic generator of the demo's candidate product photos.

Each photo is a :class:`PhotoSpec`: which product (its look), which shot (scene, camera, size), the file format,
or "an exact copy of another photo" (a duplicate the pipeline must drop). :func:`write_photos` renders the specs
into a folder once; a manifest of spec fingerprints lets later runs skip the work (rendering costs about a
second per photo on this machine).

The pictures are made to exercise the pipeline's rules on purpose: most are large JPEGs on real-looking
backgrounds, and a demo catalog adds a 300 px thumbnail (too small), an exact duplicate, a PNG, a WebP and a
photo on a black backdrop.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from demo.product_models import ProductLook
from demo.scenes import Shot, render_shot

log = logging.getLogger(__name__)

GENERATOR_VERSION = 2  # bump when rendering changes, so cached photos are regenerated
MANIFEST = "manifest.json"
FORMATS = {"jpeg": ".jpg", "png": ".png", "webp": ".webp"}
CONTENT_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp"}


@dataclass(frozen=True)
class PhotoSpec:
    """One candidate photo. ``name`` is the file stem (unique in a folder); ``duplicate_of`` names another spec
    whose file is copied byte for byte instead of rendering."""

    name: str
    look: ProductLook
    shot: Shot
    format: str = "jpeg"
    duplicate_of: str | None = None

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"unknown photo format {self.format!r}; expected one of {sorted(FORMATS)}")
        if not self.name or "/" in self.name or self.name.startswith("."):
            raise ValueError(f"photo name must be a plain file stem, got {self.name!r}")

    @property
    def filename(self) -> str:
        return self.name + FORMATS[self.format]

    def fingerprint(self) -> str:
        payload = json.dumps({"v": GENERATOR_VERSION, **asdict(self)}, sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()


def encode(image: Image.Image, fmt: str) -> bytes:
    """Encode like a web shop would publish: JPEG q90, PNG, WebP q88 (fixed settings: reproducible bytes)."""
    buf = io.BytesIO()
    if fmt == "jpeg":
        image.save(buf, "JPEG", quality=90)
    elif fmt == "png":
        image.save(buf, "PNG", compress_level=6)
    elif fmt == "webp":
        image.save(buf, "WEBP", quality=88, method=4)
    else:
        raise ValueError(f"unknown photo format {fmt!r}")
    return buf.getvalue()


def render(spec: PhotoSpec) -> bytes:
    """The encoded bytes of one (non-duplicate) photo."""
    if spec.duplicate_of is not None:
        raise ValueError(f"{spec.name} is a duplicate of {spec.duplicate_of}; copy that file instead")
    return encode(render_shot(spec.look, spec.shot), spec.format)


def _load_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def default_workers() -> int:
    """Rendering is CPU-bound numpy/Pillow work: one process per core, at most four."""
    return max(1, min(4, os.cpu_count() or 1))


def write_photos(
    specs: Sequence[PhotoSpec],
    folder: Path,
    *,
    progress: Callable[[int, int, str], None] | None = None,
    workers: int | None = None,
) -> dict[str, Path]:
    """Render every spec into ``folder`` (skipping files whose spec did not change); name → file path.

    Photos are rendered in ``workers`` processes (default: :func:`default_workers`); the bytes do not depend on
    it. Duplicates are copied from their original afterwards, so they are byte-identical. ``progress`` is called
    with (done, to do, file name) for each photo written.
    """
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError("photo names must be unique")
    by_name = {s.name: s for s in specs}
    for spec in specs:
        if spec.duplicate_of is not None and (
            spec.duplicate_of not in by_name or by_name[spec.duplicate_of].duplicate_of
        ):
            raise ValueError(f"{spec.name} duplicates {spec.duplicate_of!r}, which is not an original photo here")
    folder.mkdir(parents=True, exist_ok=True)
    manifest = _load_manifest(folder)
    paths = {s.name: folder / s.filename for s in specs}

    def up_to_date(spec: PhotoSpec, fingerprint: str) -> bool:
        entry = manifest.get(spec.name)
        return isinstance(entry, dict) and entry.get("fingerprint") == fingerprint and paths[spec.name].is_file()

    originals = [s for s in specs if s.duplicate_of is None and not up_to_date(s, s.fingerprint())]
    duplicates = [(s, s.duplicate_of) for s in specs if s.duplicate_of is not None]
    total = len(originals) + sum(1 for s, _ in duplicates if s.name not in manifest or not paths[s.name].is_file())
    done = 0

    def record(spec: PhotoSpec, data: bytes, fingerprint: str) -> None:
        nonlocal done
        with Image.open(io.BytesIO(data)) as im:
            width, height = im.size
        manifest[spec.name] = {
            "fingerprint": fingerprint,
            "file": spec.filename,
            "sha256": hashlib.sha256(data).hexdigest(),
            "width": width,
            "height": height,
            "bytes": len(data),
        }
        _atomic_write(folder / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True).encode())
        done += 1
        if progress is not None:
            progress(done, max(total, done), spec.filename)

    workers = default_workers() if workers is None else max(1, workers)
    if workers > 1 and len(originals) > 1:
        # "spawn", not the platform's default fork: forking a process that runs other threads (the demo's
        # fixture server, pytest's servers) can copy a held lock into the child and hang it forever.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(workers, len(originals)), mp_context=context) as pool:
            for spec, data in zip(originals, pool.map(render, originals), strict=True):
                _atomic_write(paths[spec.name], data)
                record(spec, data, spec.fingerprint())
    else:
        for spec in originals:
            data = render(spec)
            _atomic_write(paths[spec.name], data)
            record(spec, data, spec.fingerprint())
    for spec, original in duplicates:
        # the copy is stale when its original changed, so the original's hash is part of its fingerprint
        fingerprint = hashlib.sha256((spec.fingerprint() + manifest[original]["sha256"]).encode()).hexdigest()
        if up_to_date(spec, fingerprint):
            continue
        data = paths[original].read_bytes()
        _atomic_write(paths[spec.name], data)
        record(spec, data, fingerprint)
    return paths


def content_type(path: Path) -> str:
    return CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")
