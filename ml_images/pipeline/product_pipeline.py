"""One product end to end, and batches of products whose network and CPU work overlap.

Per product: claim → still needs images? → query → candidates (the distributor photo, a search as
``ML_IMAGES_SEARCH_MODE`` says) → rank → download → process → upload → commit → delete the objects the commit made
unreferenced. The candidates are handed to processing in ranked order (``ml_images.search.ranking``), and each
stored picture records where it came from (``Provenance``). The claim (a database row, see ``ImageRecorder``) is
what stops two overlapping runs from both writing a product, whatever the orchestrator does.

Failure policy:

* a product whose candidates are all refused is that product's outcome (``NO_IMAGES``, listing → ERROR);
  so is one whose candidates all fail the cover gate under the strict cover policy (``no_compliant_cover``, the
  failed checks in the reason); under the lenient policy its pictures are stored and the attempt is flagged
  (``reason_code`` ``no_compliant_cover`` on a stored attempt). Every attempt that processed candidates keeps a
  ``cover_report`` (policy, status, model runs, each candidate tried as the cover with its checks);
* a product whose every candidate failed at the transport level (DNS, connect, TLS, timeout, deadline) is left
  pending (``DEFERRED``, ``candidates_unreachable``: no ERROR, no cooldown) until that happened in
  ``unreachable_attempts`` consecutive runs; then it is ``no_usable_image``. When every product of a batch that
  reached the downloads ended that way, the batch reports ``CandidatesUnreachableError`` (a transient fault);
* infrastructure faults (``TransientError``), an exhausted quota (``SearchQuotaError``) and configuration errors
  stop the batch: products in flight finish their current stage or are released (their claim recorded as failed,
  so they stay pending), products not started are left untouched, and ``BatchReport.abort_error`` says why;
* an interrupt (SIGINT/SIGTERM: ``KeyboardInterrupt`` or Dagster's interruption error) stops the batch the same
  way, the released products recorded as ``interrupted``, and is raised again once they are;
* anything unexpected fails that product only (recorded, stays pending); the others go on.

Claims are leases: a heartbeat thread keeps the batch's claims alive while the process lives.

Where each part lives: a claimed product's journey in ``journey``, storing and committing its pictures in
``storing`` (nothing is ever half-written), what an attempt knows in ``attempt_state``, the failure codes and the
batch's abort signal in ``failures``, the cover report in ``cover_report``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass

from ml_images.catalog.models import ProductMaster
from ml_images.catalog.product_reader import CatalogProducts
from ml_images.catalog.recorder import Claim, ImageRecorder
from ml_images.catalog.selection import ImageCandidateSelector
from ml_images.download.safe_downloader import SafeDownloader
from ml_images.errors import ClaimLostError
from ml_images.outcomes import ProductStatus, ReasonCode
from ml_images.pipeline.attempt_state import BatchWork, ProductState
from ml_images.pipeline.candidate_sources import CandidateSources
from ml_images.pipeline.failures import (
    BATCH_STOPPING_ERRORS,
    AbortSignal,
    BatchAborted,
    Reachability,
    RunInterrupted,
    failure_reason_code,
)
from ml_images.pipeline.heartbeat import DEFAULT_HEARTBEAT_SECONDS, ClaimHeartbeat
from ml_images.pipeline.journey import ProductJourney
from ml_images.pipeline.reports import BatchReport, ProductReport
from ml_images.processing.processor import ImageProcessorService
from ml_images.search.query import QueryConstructor
from ml_images.search.service import ImageSearchService
from ml_images.storage.base import ImageStore

logger = logging.getLogger(__name__)

DEFAULT_UNREACHABLE_ATTEMPTS = 3


@dataclass(frozen=True)
class BatchConcurrency:
    """Bounds of the overlap inside one run.

    ``products_in_flight`` products have their network work (search, downloads, uploads) going at once, each
    download fanning out inside the downloader; ``cpu_workers`` threads run image processing, sharing one rembg
    session (two threads with one ONNX thread each is the best throughput measured on 2 cores).
    """

    products_in_flight: int = 6
    cpu_workers: int = 2

    def __post_init__(self) -> None:
        if self.products_in_flight < 1 or self.cpu_workers < 1:
            raise ValueError("products_in_flight and cpu_workers must be >= 1")


class ProductImagePipeline:
    """Finds, prepares, stores and records the images of products. Thread-safe; one instance serves a run."""

    def __init__(
        self,
        *,
        products: CatalogProducts,
        selector: ImageCandidateSelector,
        recorder: ImageRecorder,
        queries: QueryConstructor,
        search: ImageSearchService,
        downloader: SafeDownloader,
        processor: ImageProcessorService,
        store: ImageStore,
        max_images: int = 5,
        concurrency: BatchConcurrency | None = None,
        unreachable_attempts: int = DEFAULT_UNREACHABLE_ATTEMPTS,
        heartbeat_seconds: float = DEFAULT_HEARTBEAT_SECONDS,
        sources: CandidateSources | None = None,
    ) -> None:
        if max_images < 1:
            raise ValueError("max_images must be >= 1")
        if unreachable_attempts < 1:
            raise ValueError("unreachable_attempts must be >= 1")
        if heartbeat_seconds <= 0:
            raise ValueError("heartbeat_seconds must be > 0")
        self._products = products
        self._recorder = recorder
        self._concurrency = concurrency or BatchConcurrency()
        self._heartbeat_seconds = heartbeat_seconds
        self._journey = ProductJourney(
            selector=selector,
            recorder=recorder,
            queries=queries,
            search=search,
            downloader=downloader,
            processor=processor,
            store=store,
            max_images=max_images,
            unreachable_attempts=unreachable_attempts,
            sources=sources or CandidateSources(),
        )

    # ------------------------------------------------------------------ batches

    def process_batch(
        self,
        product_ids: Sequence[int],
        run_id: str,
        *,
        force: bool = False,
        on_product_done: Callable[[ProductReport], None] | None = None,
    ) -> BatchReport:
        """Process ``product_ids`` with overlapping network and CPU work; never raises for a product's fault.

        ``on_product_done`` is called from the calling thread as each product finishes (progress, logging).
        A batch-stopping error is returned in ``BatchReport.abort_error``, not raised, so the caller can
        report what was done before failing the step. An interrupt is raised again once the products in flight
        have released their claims (recorded as ``interrupted``); the products not started stay untouched.
        """
        ids = list(dict.fromkeys(product_ids))
        batch = BatchReport()
        if not ids:
            return batch
        products = self._products.load(ids)  # a fault here stops the batch before anything is claimed
        abort = AbortSignal()
        reach = Reachability()
        limits = self._concurrency
        io_pool = ThreadPoolExecutor(limits.products_in_flight, thread_name_prefix="ml-images-io")
        cpu_pool = ThreadPoolExecutor(limits.cpu_workers, thread_name_prefix="ml-images-cpu")
        futures: list[Future[ProductReport]] = []
        with ClaimHeartbeat(self._recorder, self._heartbeat_seconds) as heartbeat:
            work = BatchWork(abort, reach, heartbeat, cpu_pool)
            try:
                futures.extend(
                    io_pool.submit(self._guarded, pid, products.get(pid), run_id, force, work) for pid in ids
                )
                for future in as_completed(futures):
                    report = future.result()  # _guarded turns every exception into a report
                    batch.add(report)
                    if on_product_done is not None:
                        on_product_done(report)
            except BaseException as exc:
                # SIGINT/SIGTERM reach this (the main) thread only: tell the workers, let the products in flight
                # release their claims at their next stage boundary, and leave the others unclaimed.
                abort.trip(exc if isinstance(exc, Exception) else RunInterrupted(f"interrupted ({type(exc).__name__})"))
                for future in futures:
                    future.cancel()
                raise
            finally:
                io_pool.shutdown(wait=True)
                cpu_pool.shutdown(wait=True)
        batch.reports = batch.ordered(ids)
        batch.abort_error = abort.error or reach.outage()
        return batch

    def process_product(self, product_id: int, run_id: str, *, force: bool = False) -> ProductReport:
        """One product, sequentially. Raises the batch-stopping errors (transient, quota, configuration).

        A product whose candidates were all unreachable is returned as ``DEFERRED``, not raised: one product is
        not evidence of an outage.
        """
        product = self._products.load([product_id]).get(product_id)
        abort = AbortSignal()
        with ClaimHeartbeat(self._recorder, self._heartbeat_seconds) as heartbeat:
            report = self._guarded(
                product_id, product, run_id, force, BatchWork(abort, Reachability(), heartbeat, None)
            )
        if abort.error is not None:
            raise abort.error
        return report

    # ------------------------------------------------------------------ one product

    def _guarded(
        self, product_id: int, product: ProductMaster | None, run_id: str, force: bool, work: BatchWork
    ) -> ProductReport:
        state = ProductState(product_id, time.monotonic())
        abort = work.abort
        if abort.error is not None:
            # Not started: nothing claimed, nothing recorded; it simply stays pending for a later run.
            return state.report(
                ProductStatus.FAILED, reason_code=ReasonCode.NOT_STARTED, reason=str(BatchAborted(abort.error))
            )
        if product is None:
            return state.report(ProductStatus.SKIPPED, reason_code=ReasonCode.NOT_FOUND, reason="no such product")
        claim: Claim | None = None
        try:
            claim = self._recorder.claim(product_id, run_id)
            if claim is None:
                return state.report(
                    ProductStatus.SKIPPED,
                    reason_code=ReasonCode.IN_FLIGHT,
                    reason="another run is processing this product",
                )
            work.heartbeat.add(claim.attempt_id)
            return self._journey.run(product, claim, state, force, work)
        except Exception as exc:
            stops_batch = isinstance(exc, BATCH_STOPPING_ERRORS) and not isinstance(exc, ClaimLostError)
            if stops_batch:
                abort.trip(exc)
            code = failure_reason_code(exc)
            reason = f"{type(exc).__name__}: {exc}"
            if code == ReasonCode.INTERNAL_ERROR:
                logger.exception("product %s failed unexpectedly", product_id)
            if claim is not None:
                self._release(claim, state, code, reason)
            return state.report(ProductStatus.FAILED, reason_code=code, reason=reason)
        except BaseException as exc:
            # An interrupt raised in this very thread (the sequential path): release the claim, then let it go on.
            abort.trip(RunInterrupted(f"interrupted ({type(exc).__name__})"))
            if claim is not None:
                self._release(claim, state, ReasonCode.INTERRUPTED, f"interrupted ({type(exc).__name__})")
            raise
        finally:
            if claim is not None:
                work.heartbeat.discard(claim.attempt_id)

    def _release(self, claim: Claim, state: ProductState, code: str, reason: str) -> None:
        """Record the failed attempt (ends the claim; the product stays pending). Best effort: the database
        may be the thing that failed, in which case the claim's lease ends on its own (no more heartbeats once
        the batch is over) or its dead holder is recognised."""
        try:
            self._recorder.record_failed(
                claim,
                code,
                reason[:2000],
                stats=state.stats(),
            )
        except Exception:
            logger.warning("could not record the failed attempt of product %s", state.product_id, exc_info=True)
