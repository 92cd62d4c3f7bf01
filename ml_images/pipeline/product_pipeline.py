"""One product end to end, and batches of products whose network and CPU work overlap.

Per product: claim → still needs images? → query → search → download → process → upload → commit → delete the
objects the commit made unreferenced. The claim (a database row, see ``ImageRecorder``) is what stops two
overlapping runs from both writing a product, whatever the orchestrator does.

Failure policy:

* a product whose candidates are all refused is that product's outcome (``NO_IMAGES``, listing → ERROR);
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

A product whose last verdict was "nothing usable" searches afresh (bypassing and refreshing the search cache)
instead of replaying the results that led nowhere.

Nothing is ever half-written: new objects are uploaded before the rows switch in one transaction; if anything
fails in between, the new objects that no row references are deleted (best effort) and the old rows and objects
are untouched. An object is only ever deleted when no ``product_image`` row of any product references it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass

from ml_images.catalog.models import AttemptOutcome, ProductMaster
from ml_images.catalog.recorder import (
    AttemptStats,
    Claim,
    ClaimLostError,
    ImageDetailRecord,
    ImageRecord,
    ImageRecorder,
    PastAttempt,
)
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
from ml_images.pipeline.heartbeat import DEFAULT_HEARTBEAT_SECONDS, ClaimHeartbeat
from ml_images.pipeline.refusal_tally import RefusalTally
from ml_images.pipeline.reports import BatchReport, ProductReport, ProductStatus, StoredImage, describe_counts
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
#: Download refusals that say "could not reach it", not "it is not a usable image".
TRANSPORT_REFUSALS = frozenset({"dns_failure", "connect_error", "timeout", "deadline", "tls_error"})
CANDIDATES_UNREACHABLE = "candidates_unreachable"
INTERRUPTED = "interrupted"
NO_USABLE_IMAGE = "no_usable_image"
DEFAULT_UNREACHABLE_ATTEMPTS = 3


class CandidatesUnreachableError(TransientError):
    """Every product of a batch that reached the downloads found all its candidates unreachable: an outage."""


class RunInterrupted(Exception):
    """The process was told to stop (SIGINT/SIGTERM); the cause of the batch stopping."""


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
    if isinstance(error, RunInterrupted) or not isinstance(error, Exception):
        return INTERRUPTED  # KeyboardInterrupt, Dagster's interruption error, SystemExit
    if isinstance(error, BatchAborted):
        return INTERRUPTED if isinstance(error.cause, RunInterrupted) else "batch_aborted"
    if isinstance(error, CandidatesUnreachableError):
        return CANDIDATES_UNREACHABLE
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
        self.downloads = 0  # download requests made (each candidate tried once)
        self.refusals = RefusalTally()

    def stats(self) -> AttemptStats:
        """What this attempt cost and saw so far, as the recorder stores it."""
        return AttemptStats(
            search_calls=self.search_calls,
            candidates_found=self.candidates_found,
            refusals=self.refusals.sample,
            refusal_counts=self.refusals.counts(),
            search_cache_hits=1 if self.search_cached else 0,
            downloads=self.downloads,
        )

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
            refusals=self.refusals.sample,
            refusals_by_reason=self.refusals.counts(),
            reason_code=reason_code,
            reason=reason,
            replaced_objects=replaced_objects,
            seconds=round(time.monotonic() - self.started, 3),
        )


class _History:
    """What a product's earlier attempts say about this one (read once, right after the claim)."""

    def __init__(self, past: Sequence[PastAttempt], run_id: str | None, attempt_id: int) -> None:
        unreachable_runs: set[str] = set()
        searched_since_verdict = False
        self.last_verdict_fruitless = False
        for attempt in past:  # newest first
            if attempt.outcome == AttemptOutcome.FAILED.value:
                # A failed attempt gives no verdict on the candidates and does not break a streak of unreachable
                # ones (an interrupted or aborted attempt in between proves nothing either way).
                if attempt.reason_code == CANDIDATES_UNREACHABLE:
                    unreachable_runs.add(attempt.run_id or f"attempt-{attempt.attempt_id}")
                searched_since_verdict = searched_since_verdict or attempt.search_calls > 0
                continue
            self.last_verdict_fruitless = (
                attempt.outcome == AttemptOutcome.NO_IMAGES.value and attempt.reason_code != "no_search_query"
            )
            break
        # The same run again (a step retried by Dagster) is one attempt, however many tries it takes.
        unreachable_runs.add(run_id or f"attempt-{attempt_id}")
        self.unreachable_streak = len(unreachable_runs)
        # Results that led nowhere are not replayed: search afresh (and refresh the cache), unless an attempt since
        # the verdict already asked the provider.
        self.search_afresh = self.last_verdict_fruitless and not searched_since_verdict


class _Reachability:
    """Whether a batch saw anything reachable: products that reached the downloads, and those that found every
    candidate unreachable (left pending)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reached = 0
        self.deferred = 0

    def record(self, *, deferred: bool) -> None:
        with self._lock:
            self.reached += 1
            self.deferred += int(deferred)

    def outage(self) -> CandidatesUnreachableError | None:
        with self._lock:
            if self.reached == 0 or self.deferred < self.reached:
                return None
            return CandidatesUnreachableError(
                f"every product of the batch that reached the downloads ({self.reached}) found all its candidate "
                "images unreachable (DNS, connect, TLS, timeouts): a network outage? They stay pending"
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
        unreachable_attempts: int = DEFAULT_UNREACHABLE_ATTEMPTS,
        heartbeat_seconds: float = DEFAULT_HEARTBEAT_SECONDS,
    ) -> None:
        if max_images < 1:
            raise ValueError("max_images must be >= 1")
        if unreachable_attempts < 1:
            raise ValueError("unreachable_attempts must be >= 1")
        if heartbeat_seconds <= 0:
            raise ValueError("heartbeat_seconds must be > 0")
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
        self._unreachable_attempts = unreachable_attempts
        self._heartbeat_seconds = heartbeat_seconds

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
        abort = _AbortSignal()
        reach = _Reachability()
        limits = self._concurrency
        io_pool = ThreadPoolExecutor(limits.products_in_flight, thread_name_prefix="ml-images-io")
        cpu_pool = ThreadPoolExecutor(limits.cpu_workers, thread_name_prefix="ml-images-cpu")
        futures: list[Future[ProductReport]] = []
        with ClaimHeartbeat(self._recorder, self._heartbeat_seconds) as heartbeat:
            work = _Work(abort, reach, heartbeat, cpu_pool)
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
        abort = _AbortSignal()
        with ClaimHeartbeat(self._recorder, self._heartbeat_seconds) as heartbeat:
            report = self._guarded(product_id, product, run_id, force, _Work(abort, _Reachability(), heartbeat, None))
        if abort.error is not None:
            raise abort.error
        return report

    # ------------------------------------------------------------------ one product

    def _guarded(
        self, product_id: int, product: ProductMaster | None, run_id: str, force: bool, work: _Work
    ) -> ProductReport:
        state = _ProductState(product_id, time.monotonic())
        abort = work.abort
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
            work.heartbeat.add(claim.attempt_id)
            return self._process_claimed(product, claim, state, force, work)
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
        except BaseException as exc:
            # An interrupt raised in this very thread (the sequential path): release the claim, then let it go on.
            abort.trip(RunInterrupted(f"interrupted ({type(exc).__name__})"))
            if claim is not None:
                self._release(claim, state, INTERRUPTED, f"interrupted ({type(exc).__name__})")
            raise
        finally:
            if claim is not None:
                work.heartbeat.discard(claim.attempt_id)

    def _release(self, claim: Claim, state: _ProductState, code: str, reason: str) -> None:
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

    def _process_claimed(
        self, product: ProductMaster, claim: Claim, state: _ProductState, force: bool, work: _Work
    ) -> ProductReport:
        pid = product.id
        abort = work.abort
        if not force:
            needed, why = self._selector.needs_images(pid)
            if not needed:
                code = why or "not_needed"
                reason = _SKIP_REASONS.get(code, code)
                self._recorder.record_skipped(claim, code, reason)
                return state.report(ProductStatus.SKIPPED, reason_code=code, reason=reason)
        abort.checkpoint()
        history = _History(self._recorder.previous_attempts(pid, claim.attempt_id), claim.run_id, claim.attempt_id)

        state.query = self._queries.build(product).strip() or None
        if state.query is None:
            return self._no_images(claim, state, "no_search_query", "the product has nothing to search for")
        try:
            outcome = self._search.search(state.query, refresh_cache=history.search_afresh)
        except Exception as exc:
            state.search_calls = search_calls_of(exc)  # a failed search's calls are recorded too
            raise
        state.search_calls = outcome.calls
        state.search_cached = outcome.cached
        state.candidates_found = len(outcome.candidates)
        state.refusals.extend(outcome.dropped)
        if not outcome.candidates:
            dropped = (
                f" ({len(outcome.dropped)} filtered out: {describe_counts(state.refusals.counts())})"
                if outcome.dropped
                else ""
            )
            return self._no_images(
                claim, state, "no_search_results", f"the search for {state.query!r} found no candidates{dropped}"
            )
        abort.checkpoint()

        downloads: list[DownloadedImage] = []
        transport_only = True
        for item in self._downloader.download_all(outcome.candidates):
            state.downloads += 1
            if isinstance(item, DownloadedImage):
                downloads.append(item)
            else:
                state.refusals.add(_download_refusal(item))
                transport_only = transport_only and item.reason in TRANSPORT_REFUSALS
        abort.checkpoint()
        if not downloads and transport_only:
            return self._unreachable(claim, state, history, work.reach)
        work.reach.record(deferred=False)

        processed = self._run_cpu(work.cpu_pool, downloads)
        state.refusals.extend(processed.refusals)
        if not processed.images:
            return self._no_images(
                claim,
                state,
                NO_USABLE_IMAGE,
                f"all {state.candidates_found} candidates refused: "
                f"{describe_counts(state.refusals.counts()) or 'none'}",
            )
        abort.checkpoint()  # last cheap exit: nothing uploaded yet
        return self._store_and_commit(product, claim, state, processed)

    def _unreachable(
        self, claim: Claim, state: _ProductState, history: _History, reach: _Reachability
    ) -> ProductReport:
        """Every candidate failed to connect: transient until it happened in ``unreachable_attempts`` runs."""
        streak, limit = history.unreachable_streak, self._unreachable_attempts
        refused = describe_counts(state.refusals.counts())
        if streak < limit:
            reach.record(deferred=True)
            reason = (
                f"all {state.candidates_found} candidates unreachable ({refused}); left pending "
                f"(attempt {streak} of {limit} before it counts as {NO_USABLE_IMAGE})"
            )
            self._recorder.record_failed(
                claim,
                CANDIDATES_UNREACHABLE,
                reason,
                stats=state.stats(),
            )
            return state.report(ProductStatus.DEFERRED, reason_code=CANDIDATES_UNREACHABLE, reason=reason)
        reach.record(deferred=False)
        return self._no_images(
            claim,
            state,
            NO_USABLE_IMAGE,
            f"all {state.candidates_found} candidates unreachable in {streak} consecutive attempts ({refused})",
        )

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
            stats=state.stats(),
        )
        return state.report(ProductStatus.NO_IMAGES, reason_code=code, reason=reason)

    def _store_and_commit(
        self, product: ProductMaster, claim: Claim, state: _ProductState, processed: ProcessingOutcome
    ) -> ProductReport:
        pid = product.id
        keys = [image_key(pid, product.code, order, image.content_hash) for order, image in enumerate(processed.images)]
        # Keys are content-addressed, so a re-processed product may produce a key that rows already use (its own
        # current rows, or, under the earlier key layout, another product's): such objects must survive a failure.
        protected = self._recorder.referenced_keys(keys)
        uploaded: list[str] = []
        records: list[ImageRecord] = []
        stored: list[StoredImage] = []
        try:
            for order, (key, image) in enumerate(zip(keys, processed.images, strict=True)):
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
                        detail=ImageDetailRecord(
                            background_method=image.background_method,
                            quality_score=round(image.quality_score, 4),
                            cover_compliant=image.cover_compliant,
                            checks=image.checks_dict(),
                        ),
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
                stats=state.stats(),
            )
        except BaseException as exc:
            self._clean_up_after_failure(uploaded, protected, pid, claim_lost=isinstance(exc, ClaimLostError))
            raise
        now_used = set(uploaded)
        stale = [k for k in unreferenced if k not in now_used]
        deleted = self._delete_quietly(stale, pid, "no longer referenced")
        return state.report(ProductStatus.STORED, images=stored, replaced_objects=deleted)

    def _clean_up_after_failure(
        self, uploaded: list[str], protected: set[str], product_id: int, *, claim_lost: bool
    ) -> None:
        if not uploaded:
            return
        if claim_lost:
            # Another run took the product over and may be writing these very keys (same photos, same names):
            # an orphan object is harmless, a row pointing at a deleted one is not.
            logger.warning(
                "product %s was taken over by another run; leaving its %d uploaded objects", product_id, len(uploaded)
            )
            return
        try:
            protected = protected | self._recorder.referenced_keys(uploaded)
        except Exception:
            logger.warning("could not re-check the references of product %s's objects", product_id, exc_info=True)
        self._delete_quietly([k for k in uploaded if k not in protected], product_id, "uploaded before the failure")

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


@dataclass(frozen=True)
class _Work:
    """What the products of one batch share: the abort signal, reachability, the heartbeat, the CPU pool."""

    abort: _AbortSignal
    reach: _Reachability
    heartbeat: ClaimHeartbeat
    cpu_pool: ThreadPoolExecutor | None


_SKIP_REASONS = {
    "has_images": "the product already has images",
    "not_eligible": "the product is no longer eligible for Mercado Libre",
    "not_found": "no such product",
}


def _download_refusal(refused: DownloadRefused) -> Refusal:
    return Refusal(stage="download", reason=refused.reason, url=refused.url, detail=refused.detail)
