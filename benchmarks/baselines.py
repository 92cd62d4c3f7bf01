"""The two yardsticks issue 7.1 compares the real Dagster path with.

* **Compute floor** — the candidates' decode, background removal (main picture only), canvas and encode, with one
  warm rembg session shared by two threads, bytes already in memory: no network, no storage, no database, no
  orchestration. Two layouts of the session: two inferences at once with one ONNX thread each (the best throughput
  measured on 2 cores, docs/decisions.md §3) and one at a time on both cores (the pipeline's default, for memory).
  It runs the project's own ``ImageProcessorService.process_product`` (which adds the de-duplication hashes, ≈ 5 ms
  an image), so it is exactly the CPU work the pipeline cannot avoid.
* **Sequential original flow** — what the original Celery task did per product, one product after another: a fresh
  processor and rembg session, one search call, the candidates downloaded one after another, processed one after
  another, uploaded one after another, then the rows recorded. It uses the project's own services (query, search,
  safe downloader with one worker, processor, S3 store, recorder) so the comparison isolates the *flow*: the
  image-processing code is the same optimised code in both.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from benchmarks.harness import CpuMeter

COMPUTE_LIMITS_FIRST_IMAGE_S = 0.285  # docs/decisions.md §10: machine time of a first image (removal), 2 workers
COMPUTE_LIMITS_LATER_IMAGE_S = 0.029  # … and of each later image


def reference_floor_products_per_minute(images_per_product: int) -> float:
    """The reference floor (docs/decisions.md §10, 800² canvas) in products/minute:
    285 ms + 29 ms per later image of machine time."""
    seconds = COMPUTE_LIMITS_FIRST_IMAGE_S + COMPUTE_LIMITS_LATER_IMAGE_S * max(0, images_per_product - 1)
    return 60.0 / seconds


@dataclass(frozen=True)
class FloorResult:
    concurrent_inferences: int  # u2netp runs allowed at once on the shared session (ONNX threads = cores / this)
    products: int
    images_in: int
    images_out: int
    wall_s: float
    cpu_s: float
    foreign_cores: float  # CPU other processes used during the measurement, in cores

    @property
    def products_per_minute(self) -> float:
        return 60.0 * self.products / self.wall_s


def _downloads(photos: Sequence[Path]) -> list:  # list[DownloadedImage]
    from ml_images.download.results import DownloadedImage
    from ml_images.search.candidates import ImageCandidate

    out = []
    for rank, path in enumerate(photos):
        url = f"http://fixture.invalid/{path.name}"
        out.append(DownloadedImage(ImageCandidate(image_url=url, rank=rank), url, path.read_bytes(), "jpeg"))
    return out


def compute_floor(
    photos: Sequence[Sequence[Path]],
    *,
    model: str = "u2netp",
    canvas_size: int = 1200,
    workers: int = 2,
    concurrent_inferences: int = 2,
    max_images: int = 5,
) -> FloorResult:
    """Process every product's candidates with one warm session on ``workers`` threads; time the whole set.

    ``concurrent_inferences=2``: two u2netp runs at once with one ONNX thread each (the best throughput measured
    on 2 cores); ``1``: one run at a time on all cores (the pipeline's default ``BackgroundRemover``, less memory).
    """
    from ml_images.processing.background import BackgroundRemover
    from ml_images.processing.processor import ImageProcessorService

    products = [_downloads(row) for row in photos]
    remover = BackgroundRemover(model, max_concurrent_runs=concurrent_inferences)
    processor = ImageProcessorService(remover, canvas_size=canvas_size)
    # Warm: session built and one full product through it (the first inference is ~40 ms slower than later ones).
    warm = processor.process_product(products[0], max_images=max_images)
    if not warm.images:
        raise RuntimeError(f"the floor's warm-up product produced no image: {warm.refusals}")
    with CpuMeter() as meter, ThreadPoolExecutor(workers) as pool:
        outcomes = list(pool.map(lambda d: processor.process_product(d, max_images=max_images), products))
    return FloorResult(
        concurrent_inferences=concurrent_inferences,
        products=len(products),
        images_in=sum(len(p) for p in products),
        images_out=sum(len(o.images) for o in outcomes),
        wall_s=meter.wall_s,
        cpu_s=meter.own_cpu_s,
        foreign_cores=meter.foreign_cores,
    )


def _s3_client(env: dict[str, str]) -> object:
    # boto3's credential chain reads os.environ; the flow's environment is passed explicitly instead.
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=env.get("AWS_ENDPOINT_URL"),
        region_name=env.get("AWS_S3_REGION_NAME") or "us-east-1",
        aws_access_key_id=env.get("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY"),
    )


@dataclass(frozen=True)
class SequentialResult:
    products: int
    products_with_images: int
    images_stored: int
    wall_s: float
    foreign_cores: float = 0.0  # CPU other processes used meanwhile (set by the caller that measured it)

    @property
    def products_per_minute(self) -> float:
        return 60.0 * self.products / self.wall_s


def sequential_original_flow(product_ids: Sequence[int], *, settings_env: dict[str, str]) -> SequentialResult:
    """One product after another, each with a fresh processor and rembg session (see the module docstring).

    ``settings_env`` is the same environment the real path gets (catalog URL, fixture search endpoint, S3).
    """
    from ml_images.catalog.db import create_catalog_engine, make_session_factory
    from ml_images.catalog.product_reader import CatalogProducts
    from ml_images.catalog.recorder import ImageRecorder
    from ml_images.catalog.rules import parse_publication_rules
    from ml_images.catalog.selection import ImageCandidateSelector, MercadoLibreFilter
    from ml_images.download.safe_downloader import SafeDownloader
    from ml_images.pipeline.product_pipeline import ProductImagePipeline
    from ml_images.pipeline.reports import ProductStatus
    from ml_images.processing.background import BackgroundRemover, available_cpus
    from ml_images.processing.processor import ImageProcessorService
    from ml_images.search.factory import build_search_service
    from ml_images.search.query import QueryConstructor
    from ml_images.settings import Settings
    from ml_images.storage.factory import build_image_store

    settings = Settings.from_env(settings_env)
    engine = create_catalog_engine(settings.database_url)
    sessions = make_session_factory(engine)
    selector = ImageCandidateSelector(
        MercadoLibreFilter(
            sessions, parse_publication_rules(settings.publication_rules_json), freshness_hours=settings.freshness_hours
        ),
        cooldown_hours=settings.no_images_cooldown_hours,
    )
    # Shared like a Celery worker's module-level clients; the original kept no search cache.
    store = build_image_store(settings, s3_client=_s3_client(settings_env) if settings.bucket else None)
    search = build_search_service(settings)
    downloader = SafeDownloader(allowed_private_hosts=tuple(settings.allowed_private_hosts), max_workers=1)
    run_id = f"sequential-{uuid.uuid4().hex[:8]}"
    with_images = images = 0
    try:
        # The session is what a fresh process pays for; `import rembg` (≈1.4 s) is paid once, like a warm worker.
        import rembg  # noqa: F401

        t0 = time.perf_counter()
        for pid in product_ids:
            # A fresh processor and session per product, rembg's default threading (all cores for one image).
            remover = BackgroundRemover(settings.rembg_model, intra_op_threads=available_cpus())
            pipeline = ProductImagePipeline(
                products=CatalogProducts(sessions),
                selector=selector,
                recorder=ImageRecorder(sessions),
                queries=QueryConstructor(),
                search=search,
                downloader=downloader,
                processor=ImageProcessorService(
                    remover,
                    canvas_size=settings.canvas_size,
                    cover_policy=settings.cover_policy,
                    cover_attempts=settings.cover_attempts,
                ),
                store=store,
                max_images=settings.image_search_count,
            )
            report = pipeline.process_product(pid, run_id)  # no CPU pool: processed one image after another
            if report.status == ProductStatus.STORED:
                with_images += 1
                images += len(report.images)
        wall = time.perf_counter() - t0
    finally:
        engine.dispose()
    return SequentialResult(len(product_ids), with_images, images, wall)
