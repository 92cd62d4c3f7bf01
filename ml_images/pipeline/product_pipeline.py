"""One product end to end, and batches of products whose network and CPU work overlap.

Per product: claim → still needs images? → query → search → download → process → upload → commit → delete the
objects the commit made unreferenced. The claim (a database row, see ``ImageRecorder``) is what stops two
overlapping runs from both writing a product, whatever the orchestrator does.

Failure policy:

* a product whose candidates are all refused is that product's outcome (``NO_IMAGES``, listing → ERROR);
* infrastructure faults (``TransientError``), an exhausted quota (``SearchQuotaError``) and configuration errors
  stop the batch: products in flight finish their current stage or are released (their claim recorded as failed,
  so they stay pending), products not started are left untouched, and ``BatchReport.abort_error`` says why;
* anything unexpected fails that product only (recorded, stays pending); the others go on.

Nothing is ever half-written: new objects are uploaded before the rows switch in one transaction; if anything
fails in between, the new objects not referenced by the old rows are deleted (best effort) and the old rows and
objects are untouched.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass

from ml_images.catalog.models import ProductMaster
from ml_images.catalog.recorder import Claim, ClaimLostError, ImageRecord, ImageRecorder
from ml_images.catalog.selection import ImageCandidateSelector
from ml_images.download.results import DownloadedImage, DownloadRefused
from ml_images.download.safe_downloader import SafeDownloader
from ml_images.errors import (
    CatalogUnavailableError,
    ConfigurationError,
    SearchQuotaError,
    SearchUnavailableError,
    StorageUnavailableError,
    TransientError,
)
from ml_images.pipeline.catalog_products import CatalogProducts
from ml_images.pipeline.reports import BatchReport, ProductReport, ProductStatus, StoredImage, describe_refusals
from ml_images.processing.processor import ImageProcessorService
from ml_images.processing.results import ProcessingOutcome
from ml_images.refusals import Refusal
from ml_images.search.query import QueryConstructor
from ml_images.search.service import ImageSearchService, search_calls_of
from ml_images.storage.base import ImageStore
from ml_images.storage.keys import image_key

logger = logging.getLogger(__name__)

#: Errors that stop a whole batch: the next product would meet the same fault.
BATCH_STOPPING_ERRORS: tuple[type[Exception], ...] = (TransientError, SearchQuotaError, ConfigurationError)


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


class BatchAborted(Exception):
    """Raised at a stage boundary of a product once another product has stopped the batch."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(f"batch stopped after {type(cause).__name__}: {cause}")
        self.cause = cause


class _AbortSignal:
    """The first batch-stopping error, shared by the worker threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._error: BaseException | None = None

    def trip(self, error: BaseException) -> None:
        with self._lock:
            if self._error is None:
                self._error = error

    @property
    def error(self) -> BaseException | None:
        with self._lock:
            return self._error

    def checkpoint(self) -> None:
        error = self.error
        if error is not None:
            raise BatchAborted(error)


def failure_reason_code(error: BaseException) -> str:
    """A stable code for an error that made a product fail (recorded on the attempt, shown in metadata)."""
    if isinstance(error, BatchAborted):
        return "batch_aborted"
    if isinstance(error, SearchQuotaError):
        return "search_quota"
    if isinstance(error, SearchUnavailableError):
        return "search_unavailable"
    if isinstance(error, StorageUnavailableError):
        return "storage_unavailable"
    if isinstance(error, ClaimLostError):
        return "claim_lost"
    if isinstance(error, CatalogUnavailableError):
        return "catalog_unavailable"
    if isinstance(error, ConfigurationError):
        return "configuration"
    if isinstance(error, TransientError):
        return "transient"
    return "internal_error"


class _ProductState:
    """What is known about a product so far; turned into its report whichever way it ends."""

    def __init__(self, product_id: int, started: float) -> None:
        self.product_id = product_id
        self.started = started
        self.query: str | None = None
        self.search_calls = 0
        self.candidates_found = 0
        self.search_cached = False
        self.refusals: list[Refusal] = []

    def report(
        self,
        status: ProductStatus,
        *,
        reason_code: str | None = None,
        reason: str | None = None,
        images: Sequence[StoredImage] = (),
        replaced_objects: int = 0,
    ) -> ProductReport:
        return ProductReport(
            product_id=self.product_id,
            status=status,
            query=self.query,
            images=tuple(images),
            search_calls=self.search_calls,
            candidates_found=self.candidates_found,
            search_cached=self.search_cached,
            refusals=tuple(self.refusals),
            reason_code=reason_code,
            reason=reason,
            replaced_objects=replaced_objects,
            seconds=round(time.monotonic() - self.started, 3),
        )


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
    ) -> None:
        if max_images < 1:
            raise ValueError("max_images must be >= 1")
        self._products = products
        self._selector = selector
        self._recorder = recorder
        self._queries = queries
        self._search = search
        self._downloader = downloader
        self._processor = processor
        self._store = store
        self._max_images = max_images
        self._concurrency = concurrency or BatchConcurrency()

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
        report what was done before failing the step.
        """
        ids = list(dict.fromkeys(product_ids))
        batch = BatchReport()
        if not ids:
            return batch
        products = self._products.load(ids)  # a fault here stops the batch before anything is claimed
        abort = _AbortSignal()
        limits = self._concurrency
        with (
            ThreadPoolExecutor(limits.products_in_flight, thread_name_prefix="ml-images-io") as io_pool,
            ThreadPoolExecutor(limits.cpu_workers, thread_name_prefix="ml-images-cpu") as cpu_pool,
        ):
            futures: list[Future[ProductReport]] = [
                io_pool.submit(self._guarded, pid, products.get(pid), run_id, force, abort, cpu_pool) for pid in ids
            ]
            for future in as_completed(futures):
                report = future.result()  # _guarded turns every exception into a report
                batch.add(report)
                if on_product_done is not None:
                    on_product_done(report)
        batch.reports = batch.ordered(ids)
        batch.abort_error = abort.error
        return batch

    def process_product(self, product_id: int, run_id: str, *, force: bool = False) -> ProductReport:
        """One product, sequentially. Raises the batch-stopping errors (transient, quota, configuration)."""
        product = self._products.load([product_id]).get(product_id)
        abort = _AbortSignal()
        report = self._guarded(product_id, product, run_id, force, abort, None)
        if abort.error is not None:
            raise abort.error
        return report

    # ------------------------------------------------------------------ one product

    def _guarded(
        self,
        product_id: int,
        product: ProductMaster | None,
        run_id: str,
        force: bool,
        abort: _AbortSignal,
        cpu_pool: ThreadPoolExecutor | None,
    ) -> ProductReport:
        state = _ProductState(product_id, time.monotonic())
        if abort.error is not None:
            # Not started: nothing claimed, nothing recorded; it simply stays pending for a later run.
            return state.report(ProductStatus.FAILED, reason_code="not_started", reason=str(BatchAborted(abort.error)))
        if product is None:
            return state.report(ProductStatus.SKIPPED, reason_code="not_found", reason="no such product")
        claim: Claim | None = None
        try:
            claim = self._recorder.claim(product_id, run_id)
            if claim is None:
                return state.report(
                    ProductStatus.SKIPPED, reason_code="in_flight", reason="another run is processing this product"
                )
            return self._process_claimed(product, claim, state, force, abort, cpu_pool)
        except Exception as exc:
            stops_batch = isinstance(exc, BATCH_STOPPING_ERRORS) and not isinstance(exc, ClaimLostError)
            if stops_batch:
                abort.trip(exc)
            code = failure_reason_code(exc)
            reason = f"{type(exc).__name__}: {exc}"
            if code == "internal_error":
                logger.exception("product %s failed unexpectedly", product_id)
            if claim is not None:
                self._release(claim, state, code, reason)
            return state.report(ProductStatus.FAILED, reason_code=code, reason=reason)

    def _release(self, claim: Claim, state: _ProductState, code: str, reason: str) -> None:
        """Record the failed attempt (ends the claim; the product stays pending). Best effort: the database
        may be the thing that failed, in which case the claim expires on its own (``claim_ttl_hours``)."""
        try:
            self._recorder.record_failed(
                claim,
                code,
                reason[:2000],
                search_calls=state.search_calls,
                candidates_found=state.candidates_found,
                refusals=state.refusals,
            )
        except Exception:
            logger.warning("could not record the failed attempt of product %s", state.product_id, exc_info=True)

    def _process_claimed(
        self,
        product: ProductMaster,
        claim: Claim,
        state: _ProductState,
        force: bool,
        abort: _AbortSignal,
        cpu_pool: ThreadPoolExecutor | None,
    ) -> ProductReport:
        pid = product.id
        if not force:
            needed, why = self._selector.needs_images(pid)
            if not needed:
                code = why or "not_needed"
                reason = _SKIP_REASONS.get(code, code)
                self._recorder.record_skipped(claim, code, reason)
                return state.report(ProductStatus.SKIPPED, reason_code=code, reason=reason)
        abort.checkpoint()

        state.query = self._queries.build(product).strip() or None
        if state.query is None:
            return self._no_images(claim, state, "no_search_query", "the product has nothing to search for")
        try:
            outcome = self._search.search(state.query)
        except Exception as exc:
            state.search_calls = search_calls_of(exc)  # a failed search's calls are recorded too
            raise
        state.search_calls = outcome.calls
        state.search_cached = outcome.cached
        state.candidates_found = len(outcome.candidates)
        state.refusals.extend(outcome.dropped)
        if not outcome.candidates:
            dropped = (
                f" ({len(outcome.dropped)} filtered out: {describe_refusals(outcome.dropped)})"
                if outcome.dropped
                else ""
            )
            return self._no_images(
                claim, state, "no_search_results", f"the search for {state.query!r} found no candidates{dropped}"
            )

        downloads: list[DownloadedImage] = []
        for item in self._downloader.download_all(outcome.candidates):
            if isinstance(item, DownloadedImage):
                downloads.append(item)
            else:
                state.refusals.append(_download_refusal(item))
        abort.checkpoint()

        processed = self._run_cpu(cpu_pool, downloads)
        state.refusals.extend(processed.refusals)
        if not processed.images:
            return self._no_images(
                claim,
                state,
                "no_usable_image",
                f"all {state.candidates_found} candidates refused: {describe_refusals(state.refusals) or 'none'}",
            )
        abort.checkpoint()  # last cheap exit: nothing uploaded yet
        return self._store_and_commit(product, claim, state, processed)

    def _run_cpu(self, cpu_pool: ThreadPoolExecutor | None, downloads: list[DownloadedImage]) -> ProcessingOutcome:
        if not downloads:
            return ProcessingOutcome(images=[])
        if cpu_pool is None:
            return self._processor.process_product(downloads, max_images=self._max_images)
        return cpu_pool.submit(self._processor.process_product, downloads, max_images=self._max_images).result()

    def _no_images(self, claim: Claim, state: _ProductState, code: str, reason: str) -> ProductReport:
        self._recorder.record_no_images(
            claim,
            code,
            reason,
            search_calls=state.search_calls,
            candidates_found=state.candidates_found,
            refusals=state.refusals,
        )
        return state.report(ProductStatus.NO_IMAGES, reason_code=code, reason=reason)

    def _store_and_commit(
        self, product: ProductMaster, claim: Claim, state: _ProductState, processed: ProcessingOutcome
    ) -> ProductReport:
        pid = product.id
        # Keys are content-addressed, so a re-processed product may produce a key its current rows already use:
        # such objects must survive a failed commit.
        referenced = set(self._recorder.existing_storage_keys(pid))
        product_ref = product.code or str(pid)
        uploaded: list[str] = []
        records: list[ImageRecord] = []
        stored: list[StoredImage] = []
        try:
            for order, image in enumerate(processed.images):
                key = image_key(product_ref, order, image.content_hash)
                url = self._store.put(key, image.jpeg)
                uploaded.append(key)
                records.append(
                    ImageRecord(
                        order=order,
                        url=url,
                        storage_key=key,
                        source_url=image.source_url,
                        width=image.width,
                        height=image.height,
                        content_hash=image.content_hash,
                        background_removed=image.background_removed,
                    )
                )
                stored.append(
                    StoredImage(
                        order=order,
                        url=url,
                        storage_key=key,
                        source_url=image.source_url,
                        width=image.width,
                        height=image.height,
                        background_removed=image.background_removed,
                    )
                )
            unreferenced = self._recorder.commit_images(
                claim,
                records,
                search_calls=state.search_calls,
                candidates_found=state.candidates_found,
                refusals=state.refusals,
            )
        except BaseException:
            self._delete_quietly([k for k in uploaded if k not in referenced], pid, "uploaded before the failure")
            raise
        now_used = set(uploaded)
        stale = [k for k in unreferenced if k not in now_used]
        deleted = self._delete_quietly(stale, pid, "no longer referenced")
        return state.report(ProductStatus.STORED, images=stored, replaced_objects=deleted)

    def _delete_quietly(self, keys: list[str], product_id: int, why: str) -> int:
        if not keys:
            return 0
        try:
            self._store.delete(keys)
        except Exception:
            # The rows are consistent either way; a leftover object is an orphan, not a wrong picture.
            logger.warning("could not delete %d objects of product %s (%s)", len(keys), product_id, why, exc_info=True)
            return 0
        return len(keys)


_SKIP_REASONS = {
    "has_images": "the product already has images",
    "not_eligible": "the product is no longer eligible for Mercado Libre",
    "not_found": "no such product",
}


def _download_refusal(refused: DownloadRefused) -> Refusal:
    return Refusal(stage="download", reason=refused.reason, url=refused.url, detail=refused.detail)
