"""Issue 10.10 — memory near the pixel cap: peak RSS of the run process when every product's candidates are
large pictures that decode to far more than they weigh (goal: under 1 GB).

A lossless WebP of 6000×6000 weighs a few KB and decoded to a 594 MB peak on its own; twelve products of such
files took the run process to 1.79 GB. Here each product gets, in this order:

1. the issue's file: a 6000×6000 lossless WebP (36 MP);
2. a lossless WebP just under the WebP pixel cap;
3. an RGBA PNG (transparent background) just under the PNG pixel cap;
4. a JPEG just under the JPEG pixel cap;
5. an ordinary 1000×1000 JPEG product photo.

The caps are read from ``ml_images.processing.decode`` (``pixel_cap(format)``), so the files follow whatever the
code enforces. Everything else is the end-to-end benchmark's real path: ``ml-images fetch`` in a fresh process
against a seeded catalog, the fixture search server and moto's S3 server, all on 127.0.0.1. The figure is the
``wait4`` peak RSS (``ru_maxrss``) of that process, which executes the Dagster runs in-process.

Run: ``python -m benchmarks.decode_memory`` (part of ``make bench``); ``--no-append`` prints only.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.harness import (
    BenchProduct,
    MotoS3Server,
    bench_root,
    make_products,
    product_photos,
    summarize,
)

MEMORY_GOAL_MB = 1000.0  # 1 GB
_MIB_TO_MB = 1.048576  # /proc and ru_maxrss report KiB; the goal is in MB (10^6 bytes)
CANDIDATES_VERSION = "1"
ISSUE_WEBP_SIDE = 6000


@dataclass(frozen=True)
class LargeCandidate:
    label: str
    path: Path
    width: int
    height: int

    @property
    def megapixels(self) -> float:
        return self.width * self.height / 1e6


def _cap(fmt: str) -> int:
    from ml_images.processing import decode

    return int(decode.pixel_cap(fmt))


def _side_under(cap: int) -> int:
    """The largest square side whose pixel count stays under ``cap``."""
    return math.isqrt(cap - 1)


def _object_picture(side: int, mode: str) -> object:
    """A product-like picture: a shaded bottle shape on white (RGB) or on transparency (RGBA)."""
    from PIL import Image, ImageDraw

    background = (255, 255, 255, 0) if mode == "RGBA" else (255, 255, 255)
    image = Image.new(mode, (side, side), background)
    draw = ImageDraw.Draw(image)
    body = (int(side * 0.3), int(side * 0.3), int(side * 0.7), int(side * 0.9))
    neck = (int(side * 0.44), int(side * 0.12), int(side * 0.56), int(side * 0.34))
    color = (40, 90, 170, 255) if mode == "RGBA" else (40, 90, 170)
    draw.ellipse(body, fill=color)
    draw.rectangle(neck, fill=color)
    highlight = (int(side * 0.38), int(side * 0.45), int(side * 0.45), int(side * 0.75))
    draw.ellipse(highlight, fill=(200, 220, 250, 255) if mode == "RGBA" else (200, 220, 250))
    return image


def large_candidates(root: Path | None = None) -> list[LargeCandidate]:
    """The four large files (generated once and cached; regenerated when a cap changes)."""
    folder = (root or bench_root() / "large_candidates") / f"v{CANDIDATES_VERSION}"
    folder.mkdir(parents=True, exist_ok=True)
    plan = [
        ("issue's lossless WebP", "webp", ISSUE_WEBP_SIDE, "RGB"),
        ("lossless WebP under the WebP cap", "webp", _side_under(_cap("WEBP")), "RGB"),
        ("RGBA PNG under the PNG cap", "png", _side_under(_cap("PNG")), "RGBA"),
        ("JPEG under the JPEG cap", "jpg", _side_under(_cap("JPEG")), "RGB"),
    ]
    out = []
    for label, ext, side, mode in plan:
        path = folder / f"{ext}-{mode.lower()}-{side}.{ext}"
        if not path.exists():
            image = _object_picture(side, mode)
            tmp = path.with_suffix(".tmp")
            if ext == "webp":
                image.save(tmp, "WEBP", lossless=True)  # type: ignore[attr-defined]
            elif ext == "png":
                image.save(tmp, "PNG")  # type: ignore[attr-defined]
            else:
                image.save(tmp, "JPEG", quality=90)  # type: ignore[attr-defined]
            tmp.rename(path)
        out.append(LargeCandidate(label, path, side, side))
    return out


@dataclass
class DecodeMemoryResult:
    products: int
    batch_size: int
    candidates: list[LargeCandidate]
    peaks_mib: list[float] = field(default_factory=list)
    products_stored: list[int] = field(default_factory=list)
    images_stored: list[int] = field(default_factory=list)
    wall_s: list[float] = field(default_factory=list)
    refusals: dict[str, int] = field(default_factory=dict)

    def title(self) -> str:
        return (
            f"Memory near the pixel cap — {self.products} products × {len(self.candidates) + 1} large candidates, "
            f"batch {self.batch_size}, {len(self.peaks_mib)} repeat(s), median (min–max)"
        )

    def rows(self) -> list[dict[str, str]]:
        peak_mb = summarize([p * _MIB_TO_MB for p in self.peaks_mib])
        peak_mib = summarize(self.peaks_mib)
        verdict = (
            f"met (goal < {MEMORY_GOAL_MB:.0f} MB)"
            if peak_mb.median < MEMORY_GOAL_MB
            else f"MISSED by {peak_mb.median - MEMORY_GOAL_MB:.0f} MB (goal < {MEMORY_GOAL_MB:.0f} MB)"
        )
        rows = [
            {
                "quantity": "peak RSS of the run process (`ml-images fetch`, wait4 ru_maxrss)",
                "value": f"{peak_mb.fmt(0)} MB ({peak_mib.fmt(0)} MiB) — {verdict}",
            },
            {
                "quantity": "products stored / images stored / wall time",
                "value": f"{summarize(self.products_stored).fmt(0)} of {self.products} / "
                f"{summarize(self.images_stored).fmt(0)} / {summarize(self.wall_s).fmt(1)} s",
            },
        ]
        rows += [
            {
                "quantity": f"candidate: {c.label}",
                "value": f"{c.width}×{c.height} ({c.megapixels:.1f} MP), {c.path.stat().st_size / 1024:.0f} KiB",
            }
            for c in self.candidates
        ]
        rows.append({"quantity": "candidate: ordinary JPEG photo", "value": "1000×1000"})
        if self.refusals:
            rows.append(
                {
                    "quantity": "processing refusals (last repeat, all products)",
                    "value": ", ".join(f"{code} {n}" for code, n in sorted(self.refusals.items())),
                }
            )
        return rows

    def notes(self) -> str:
        from ml_images.processing import decode

        peak = summarize([p * _MIB_TO_MB for p in self.peaks_mib]).median
        return (
            f"Peak {peak:.0f} MB against the {MEMORY_GOAL_MB:.0f} MB goal (issue 10 measured 1.79 GB for 12 products "
            "of 6000×6000 lossless WebP before the decode bounds). What bounds it: "
            f"{decode.MEMORY_BOUNDS_SUMMARY} Reproduce: `python -m benchmarks.decode_memory`."
        )


def _refusal_counts(database_url: str) -> dict[str, int]:
    import sqlalchemy as sa

    from ml_images.catalog.models import ImageFetchAttempt

    counts: dict[str, int] = {}
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            for (refusals,) in conn.execute(sa.select(ImageFetchAttempt.refusals)):
                for refusal in refusals or []:
                    if isinstance(refusal, dict) and refusal.get("stage") == "process":
                        code = str(refusal.get("reason"))
                        counts[code] = counts.get(code, 0) + 1
    finally:
        engine.dispose()
    return counts


@dataclass(frozen=True)
class _Sample:
    peak_mib: float
    wall_s: float
    products_stored: int
    images_stored: int
    refusals: dict[str, int]


def _run_once(
    catalog: Sequence[BenchProduct], *, batch_size: int, prefer_postgres: bool, endpoint: str, s3: MotoS3Server
) -> _Sample:
    """One ``ml-images fetch`` over a freshly seeded catalog, bucket and Dagster instance (as the end-to-end
    benchmark's real path), keeping the attempts' refusals before the scratch database is dropped."""
    from benchmarks.end_to_end import pipeline_environment, scratch_dir
    from benchmarks.harness import catalog_database, run_monitored, seed_catalog, stored_image_counts, venv_script

    with scratch_dir("decmem_") as work, catalog_database(work, prefer_postgres=prefer_postgres) as database:
        seed_catalog(database.url, catalog)
        dagster_home = work / "dagster_home"
        dagster_home.mkdir()
        (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        env = pipeline_environment(
            home=work / "home",
            dagster_home=dagster_home,
            database_url=database.url,
            search_endpoint=endpoint,
            s3_env=s3.env(s3.create_bucket()),
        )
        process = run_monitored(
            [venv_script("ml-images"), "fetch", "--batch-size", str(batch_size)], env=env, cwd=work, timeout_s=1800
        ).check()
        counts = stored_image_counts(database.url)
        return _Sample(
            peak_mib=process.max_rss_mib,
            wall_s=process.wall_s,
            products_stored=sum(1 for n in counts.values() if n > 0),
            images_stored=sum(counts.values()),
            refusals=_refusal_counts(database.url),
        )


def run(
    *, products: int = 12, repeats: int = 1, batch_size: int = 25, prefer_postgres: bool = True
) -> DecodeMemoryResult:
    from benchmarks import end_to_end

    candidates = large_candidates()
    photos = product_photos(products, 1, size=1000)
    files = [[*(c.path for c in candidates), photos[i][0]] for i in range(products)]
    catalog: list[BenchProduct] = make_products(products, files)
    config = end_to_end.EndToEndConfig(
        products=products, candidates=len(files[0]), search_latency_s=0.05, image_latency_s=0.02
    )
    result = DecodeMemoryResult(products=products, batch_size=batch_size, candidates=candidates)
    refusals: dict[str, int] = {}
    with MotoS3Server() as s3, end_to_end.fixture_search(catalog, config) as endpoint:
        for repeat in range(1, repeats + 1):
            sample = _run_once(
                catalog, batch_size=batch_size, prefer_postgres=prefer_postgres, endpoint=endpoint, s3=s3
            )
            result.peaks_mib.append(sample.peak_mib)
            result.products_stored.append(sample.products_stored)
            result.images_stored.append(sample.images_stored)
            result.wall_s.append(sample.wall_s)
            refusals = sample.refusals
            print(
                f"  repeat {repeat}/{repeats}: peak RSS {sample.peak_mib * _MIB_TO_MB:.0f} MB, "
                f"{sample.products_stored}/{products} products stored, {sample.wall_s:.1f} s",
                flush=True,
            )
    result.refusals = dict(refusals)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.decode_memory", description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, default=12, help="products in the catalog (default 12)")
    parser.add_argument("--repeats", type=int, default=1, help="repeats; medians reported (default 1)")
    parser.add_argument("--batch-size", type=int, default=25, help="products per Dagster run (default 25)")
    parser.add_argument("--sqlite", action="store_true", help="catalog on SQLite even when PostgreSQL answers")
    parser.add_argument("--no-append", action="store_true", help="print only; do not append to RESULTS.md")
    args = parser.parse_args(argv)
    if min(args.products, args.repeats, args.batch_size) < 1:
        parser.error("sizes and repeats must be >= 1")
    result = run(
        products=args.products, repeats=args.repeats, batch_size=args.batch_size, prefer_postgres=not args.sqlite
    )
    from benchmarks.__main__ import emit

    emit(result.title(), result.rows(), append=not args.no_append, notes=result.notes())
    return 0


if __name__ == "__main__":
    sys.exit(main())
