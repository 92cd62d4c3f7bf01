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
from dataclasses import dataclass, field
from typing import Any

from ml_images.catalog.models import ProductMaster
from ml_images.catalog.product_reader import CatalogProducts
from ml_images.catalog.recorder import (
    MAX_STORED_CANDIDATES,
    Claim,
    ImageDetailRecord,
    ImageRecord,
    ImageRecorder,
    PastAttempt,
)
from ml_images.catalog.selection import ImageCandidateSelector
from ml_images.download.results import DownloadedImage
from ml_images.download.safe_downloader import SafeDownloader
from ml_images.errors import (
    CatalogUnavailableError,
    ClaimLostError,
    ConfigurationError,
    SearchQuotaError,
    SearchUnavailableError,
    StorageUnavailableError,
    TransientError,
)
from ml_images.outcomes import TRANSPORT_REASONS, AttemptStats, ProductStatus, ReasonCode, Refusal
from ml_images.pipeline.candidate_sources import CandidateSources, Provenance
from ml_images.pipeline.heartbeat import DEFAULT_HEARTBEAT_SECONDS, ClaimHeartbeat
from ml_images.pipeline.refusal_tally import RefusalTally
from ml_images.pipeline.reports import BatchReport, ProductReport, StoredImage, describe_counts
from ml_images.processing.processor import ImageProcessorService
from ml_images.processing.product_match import ProductIdentity
from ml_images.processing.results import ProcessingOutcome
from ml_images.search.candidates import SearchOutcome
from ml_images.search.distributor import (
    DistributorPhoto,
    SearchMode,
    SourcedCandidate,
    SourceKind,
    distributor_candidate,
    distributor_photo_state,
    plan_search,
    search_candidates,
)
from ml_images.search.query import QueryConstructor
from ml_images.search.ranking import ProductProfile, RankedCandidate, product_identity
from ml_images.search.service import ImageSearchService, search_calls_by_provider_of, search_calls_of
from ml_images.storage.base import ImageStore
from ml_images.storage.keys import image_key

logger = logging.getLogger(__name__)

#: Errors that stop a whole batch: the next product would meet the same fault.
BATCH_STOPPING_ERRORS: tuple[type[Exception], ...] = (TransientError, SearchQuotaError, ConfigurationError)
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


def failure_reason_code(error: BaseException) -> ReasonCode:
    """A stable code for an error that made a product fail (recorded on the attempt, shown in metadata)."""
    if isinstance(error, RunInterrupted) or not isinstance(error, Exception):
        return ReasonCode.INTERRUPTED  # KeyboardInterrupt, Dagster's interruption error, SystemExit
    if isinstance(error, BatchAborted):
        return ReasonCode.INTERRUPTED if isinstance(error.cause, RunInterrupted) else ReasonCode.BATCH_ABORTED
    if isinstance(error, CandidatesUnreachableError):
        return ReasonCode.CANDIDATES_UNREACHABLE
    if isinstance(error, SearchQuotaError):
        return ReasonCode.SEARCH_QUOTA
    if isinstance(error, SearchUnavailableError):
        return ReasonCode.SEARCH_UNAVAILABLE
    if isinstance(error, StorageUnavailableError):
        return ReasonCode.STORAGE_UNAVAILABLE
    if isinstance(error, ClaimLostError):
        return ReasonCode.CLAIM_LOST
    if isinstance(error, CatalogUnavailableError):
        return ReasonCode.CATALOG_UNAVAILABLE
    if isinstance(error, ConfigurationError):
        return ReasonCode.CONFIGURATION
    if isinstance(error, TransientError):
        return ReasonCode.TRANSIENT
    return ReasonCode.INTERNAL_ERROR


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
        self.provider: str | None = None  # the search provider that answered
        self.calls_by_provider: dict[str, int] = {}
        self.search_plan: str | None = None  # why a search was (not) made: a SearchPlan reason code
        self.ranked: list[RankedCandidate] = []  # every candidate considered, in the order tried
        self._by_url: dict[str, RankedCandidate] = {}
        self.cover_report: dict[str, Any] | None = None  # set once processing has judged a cover

    def add_ranked(self, ranked: Sequence[RankedCandidate]) -> list[RankedCandidate]:
        """Keep ``ranked`` (positions continue after the candidates already tried) and index it by image URL."""
        offset = len(self.ranked)
        placed = [RankedCandidate(r.sourced, r.score, r.position + offset) for r in ranked]
        self.ranked.extend(placed)
        for item in placed:
            self._by_url.setdefault(item.sourced.image_url, item)
        self.candidates_found = len(self.ranked)
        return placed

    def downloaded(self, image: DownloadedImage) -> None:
        """A download's final URL (after redirects, what processing reports) leads back to its candidate."""
        found = self._by_url.get(image.candidate.image_url)
        if found is not None:
            self._by_url.setdefault(image.final_url, found)

    def provenance(self, source_url: str | None) -> Provenance:
        return Provenance.of(self._by_url.get(source_url or ""))

    def candidates(self) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self.ranked[:MAX_STORED_CANDIDATES]]

    def stats(self) -> AttemptStats:
        """What this attempt cost and saw so far, as the recorder stores it."""
        return AttemptStats(
            search_calls=self.search_calls,
            candidates_found=self.candidates_found,
            refusals=self.refusals.sample,
            refusal_counts=self.refusals.counts(),
            provider=self.provider,
            search_calls_by_provider=dict(self.calls_by_provider),
            search_cache_hits=1 if self.search_cached else 0,
            downloads=self.downloads,
            candidates=self.candidates(),
            cover_report=self.cover_report,
        )

    def report(
        self,
        status: ProductStatus,
        *,
        reason_code: str | None = None,
        reason: str | None = None,
        images: Sequence[StoredImage] = (),
        replaced_objects: int = 0,
        cover_flagged: bool = False,
    ) -> ProductReport:
        return ProductReport(
            product_id=self.product_id,
            status=status,
            query=self.query,
            images=tuple(images),
            stats=self.stats(),
            reason_code=reason_code,
            reason=reason,
            replaced_objects=replaced_objects,
            cover_status=self.cover_report["status"] if self.cover_report else None,
            cover_flagged=cover_flagged,
            seconds=round(time.monotonic() - self.started, 3),
            search_plan=self.search_plan,
        )


class _History:
    """What a product's earlier attempts say about this one (read once, right after the claim)."""

    def __init__(self, past: Sequence[PastAttempt], run_id: str | None, attempt_id: int) -> None:
        unreachable_runs: set[str] = set()
        searched_since_verdict = False
        self.last_verdict_fruitless = False
        for attempt in past:  # newest first
            if attempt.outcome == ProductStatus.FAILED.value:
                # A failed attempt gives no verdict on the candidates and does not break a streak of unreachable
                # ones (an interrupted or aborted attempt in between proves nothing either way).
                if attempt.reason_code == ReasonCode.CANDIDATES_UNREACHABLE:
                    unreachable_runs.add(attempt.run_id or f"attempt-{attempt.attempt_id}")
                searched_since_verdict = searched_since_verdict or attempt.search_calls > 0
                continue
            self.last_verdict_fruitless = (
                attempt.outcome == ProductStatus.NO_IMAGES.value and attempt.reason_code != ReasonCode.NO_SEARCH_QUERY
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
        sources: CandidateSources | None = None,
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
        self._sources = sources or CandidateSources()

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
            return self._process_claimed(product, claim, state, force, work)
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
                code = why or ReasonCode.NOT_NEEDED
                reason = _SKIP_REASONS.get(code, code)
                self._recorder.record_skipped(claim, code, reason)
                return state.report(ProductStatus.SKIPPED, reason_code=code, reason=reason)
        abort.checkpoint()
        history = _History(self._recorder.previous_attempts(pid, claim.attempt_id), claim.run_id, claim.attempt_id)

        state.query = self._queries.build(product).strip() or None
        gathered = self._gather(product, claim, state, history, work)
        if isinstance(gathered, ProductReport):
            return gathered
        downloads = gathered

        processed = self._run_cpu(work.cpu_pool, downloads, product_identity(product))
        state.refusals.extend(processed.refusals)
        if downloads:
            state.cover_report = cover_report(processed, self._processor.cover_policy)
        if (
            not processed.images
            and processed.cover_status == ReasonCode.NO_COMPLIANT_COVER
            and self._processor.cover_policy == "strict"
        ):
            # Strict policy: a listing whose cover breaks Mercado Libre's rules is moderated; "no picture" is the
            # clearer error for the seller (README, "The cover"). Under the lenient policy the cover rules keep
            # nothing out, so a product left with nothing is no_usable_image.
            return self._no_images(claim, state, ReasonCode.NO_COMPLIANT_COVER, no_compliant_cover_reason(processed))
        if not processed.images:
            return self._no_images(
                claim,
                state,
                self._nothing_usable_code(),
                f"all {state.candidates_found} candidates refused: "
                f"{describe_counts(state.refusals.counts()) or 'none'}",
            )
        abort.checkpoint()  # last cheap exit: nothing uploaded yet
        return self._store_and_commit(product, claim, state, processed)

    # ------------------------------------------------------------------ candidates (issue 13)

    def _gather(
        self, product: ProductMaster, claim: Claim, state: _ProductState, history: _History, work: _Work
    ) -> ProductReport | list[DownloadedImage]:
        """The distributor photo and the search results the mode allows, ranked, downloaded in that order.

        Returns the downloads (in ranked order: the processor tries candidates as the cover in the order given),
        or the product's report when it ends here (nothing to try, nothing reachable, or — in ``fallback`` mode —
        a usable distributor photo stored without any search).
        """
        sources, abort = self._sources, work.abort
        distributor = distributor_candidate(product.image_url, sources.rewrites)
        if state.query is None and distributor is None:
            return self._no_images(claim, state, ReasonCode.NO_SEARCH_QUERY, "the product has nothing to search for")
        profile = ProductProfile.of(product)
        plan = plan_search(sources.mode, self._max_images, distributor_photo_state(distributor))
        pool: list[SourcedCandidate] = [distributor] if distributor is not None else []
        fetched = _Fetched()
        if plan.judge_first:
            # ``fallback``: a search is paid for only when the distributor photo is refused, so judge it first.
            self._download(state, state.add_ranked(sources.ranker.rank(pool, profile)), fetched)
            abort.checkpoint()
            verdict = self._run_cpu(work.cpu_pool, fetched.downloads, product_identity(product))
            if fetched.downloads:
                state.cover_report = cover_report(verdict, self._processor.cover_policy)
            if verdict.images:
                state.search_plan = plan_search(sources.mode, self._max_images, DistributorPhoto.USABLE).reason
                work.reach.record(deferred=False)
                abort.checkpoint()
                return self._store_and_commit(product, claim, state, verdict)
            state.refusals.extend(verdict.refusals)
            # Not reached at all (a transport fault): if the search has nothing either, the product is deferred
            # like any unreachable one, not put in ERROR.
            distributor_unreachable = not fetched.downloads and fetched.transport_only
            pool, fetched.downloads = [], []
            plan = plan_search(sources.mode, self._max_images, DistributorPhoto.REFUSED)
        else:
            distributor_unreachable = False
        state.search_plan = plan.reason
        if plan.search and state.query is not None:
            outcome = self._search_for(state, history)
            pool.extend(search_candidates(outcome.candidates, outcome.provider or self._search.provider_name))
        if not pool and distributor_unreachable:
            return self._unreachable(claim, state, history, work.reach)
        if not pool:
            return self._nothing_to_try(claim, state, plan.search)
        ranked = state.add_ranked(sources.ranker.rank(pool, profile))
        abort.checkpoint()
        self._download(state, ranked, fetched)
        abort.checkpoint()
        if not fetched.downloads and fetched.transport_only:
            return self._unreachable(claim, state, history, work.reach)
        work.reach.record(deferred=False)
        return fetched.downloads

    def _search_for(self, state: _ProductState, history: _History) -> SearchOutcome:
        assert state.query is not None
        try:
            outcome = self._search.search(state.query, refresh_cache=history.search_afresh)
        except Exception as exc:
            # A failed search's calls are recorded too.
            state.search_calls = search_calls_of(exc)
            state.calls_by_provider = search_calls_by_provider_of(exc)
            raise
        state.search_calls = outcome.calls
        state.calls_by_provider = dict(outcome.calls_by_provider)
        state.provider = outcome.provider
        state.search_cached = outcome.cached
        state.refusals.extend(outcome.dropped)
        return outcome

    def _nothing_to_try(self, claim: Claim, state: _ProductState, searched: bool) -> ProductReport:
        if not searched:  # ``never`` mode and no distributor photo
            return self._no_images(
                claim,
                state,
                ReasonCode.NO_DISTRIBUTOR_PHOTO_SEARCH_DISABLED,
                "the product has no distributor photo (image_url) and ML_IMAGES_SEARCH_MODE=never",
            )
        if state.query is None:  # ``fallback`` mode, the distributor photo refused, nothing to search for
            return self._no_images(
                claim,
                state,
                ReasonCode.NO_SEARCH_QUERY,
                f"the distributor photo was refused ({describe_counts(state.refusals.counts())}) and the product "
                "has nothing to search for",
            )
        counts = state.refusals.counts()
        dropped = f" ({sum(counts.values())} filtered out: {describe_counts(counts)})" if counts else ""
        return self._no_images(
            claim, state, ReasonCode.NO_SEARCH_RESULTS, f"the search for {state.query!r} found no candidates{dropped}"
        )

    def _nothing_usable_code(self) -> str:
        """``no_usable_image``; under ``never`` the refused distributor photo was the only candidate."""
        if self._sources.mode is SearchMode.NEVER:
            return ReasonCode.DISTRIBUTOR_PHOTO_REFUSED_SEARCH_DISABLED
        return ReasonCode.NO_USABLE_IMAGE

    def _download(self, state: _ProductState, ranked: Sequence[RankedCandidate], fetched: _Fetched) -> None:
        results = self._downloader.download_all([r.sourced.candidate for r in ranked])
        for candidate, item in zip(ranked, results, strict=True):
            state.downloads += 1
            if isinstance(item, DownloadedImage):
                state.downloaded(item)
                fetched.downloads.append(item)
                fetched.transport_only = False
            else:
                refusal = item
                if candidate.sourced.source_kind is SourceKind.DISTRIBUTOR:
                    detail = f"distributor photo: {refusal.detail}"
                    refusal = Refusal(refusal.stage, refusal.reason, refusal.url, detail)
                state.refusals.add(refusal)
                fetched.transport_only = fetched.transport_only and item.reason in TRANSPORT_REASONS

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
                f"(attempt {streak} of {limit} before it counts as {ReasonCode.NO_USABLE_IMAGE})"
            )
            self._recorder.record_failed(
                claim,
                ReasonCode.CANDIDATES_UNREACHABLE,
                reason,
                stats=state.stats(),
            )
            return state.report(ProductStatus.DEFERRED, reason_code=ReasonCode.CANDIDATES_UNREACHABLE, reason=reason)
        reach.record(deferred=False)
        return self._no_images(
            claim,
            state,
            ReasonCode.NO_USABLE_IMAGE,
            f"all {state.candidates_found} candidates unreachable in {streak} consecutive attempts ({refused})",
        )

    def _run_cpu(
        self, cpu_pool: ThreadPoolExecutor | None, downloads: list[DownloadedImage], identity: ProductIdentity
    ) -> ProcessingOutcome:
        if not downloads:
            return ProcessingOutcome(images=[])
        if cpu_pool is None:
            return self._processor.process_product(downloads, max_images=self._max_images, product=identity)
        return cpu_pool.submit(
            self._processor.process_product, downloads, max_images=self._max_images, product=identity
        ).result()

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
                provenance = state.provenance(image.source_url).fields()
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
                            **provenance,
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
                        **provenance,
                        background_method=image.background_method,
                        quality_score=round(image.quality_score, 4),
                        cover_compliant=image.cover_compliant,
                        checks=image.checks_dict(),
                    )
                )
            # Lenient policy without a compliant cover: stored, the attempt flagged with the checks that failed.
            flagged = processed.cover_flagged
            flag_code = ReasonCode.NO_COMPLIANT_COVER if flagged else None
            flag_reason = no_compliant_cover_reason(processed, stored=True) if flagged else None
            unreferenced = self._recorder.commit_images(
                claim, records, stats=state.stats(), reason_code=flag_code, reason=flag_reason
            )
        except BaseException as exc:
            self._clean_up_after_failure(uploaded, protected, pid, claim_lost=isinstance(exc, ClaimLostError))
            raise
        now_used = set(uploaded)
        stale = [k for k in unreferenced if k not in now_used]
        deleted = self._delete_quietly(stale, pid, "no longer referenced")
        return state.report(
            ProductStatus.STORED,
            images=stored,
            replaced_objects=deleted,
            reason_code=flag_code,
            reason=flag_reason,
            cover_flagged=flagged,
        )

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


@dataclass
class _Fetched:
    """The downloads of a product so far, and whether every failure was a transport one."""

    downloads: list[DownloadedImage] = field(default_factory=list)
    transport_only: bool = True


@dataclass(frozen=True)
class _Work:
    """What the products of one batch share: the abort signal, reachability, the heartbeat, the CPU pool."""

    abort: _AbortSignal
    reach: _Reachability
    heartbeat: ClaimHeartbeat
    cpu_pool: ThreadPoolExecutor | None


_SKIP_REASONS: dict[str, str] = {
    ReasonCode.HAS_IMAGES: "the product already has images",
    ReasonCode.NOT_ELIGIBLE: "the product is no longer eligible for Mercado Libre",
    ReasonCode.NOT_FOUND: "no such product",
}


#: Cover attempts kept in an attempt's ``cover_report`` (each carries its full checks).
MAX_REPORTED_COVER_ATTEMPTS = 10


def cover_report(processed: ProcessingOutcome, policy: str) -> dict[str, Any]:
    """How the cover was chosen, as the attempt row keeps it: the policy, the outcome, whether the stored pictures
    are flagged (lenient, no compliant cover), the model runs spent and each candidate tried with its checks."""
    return {
        "policy": policy,
        "status": processed.cover_status,
        "flagged": processed.cover_flagged,
        "model_runs": processed.model_runs,
        "failed_checks": processed.failed_checks,
        "attempts": [a.to_dict() for a in processed.cover_attempts[:MAX_REPORTED_COVER_ATTEMPTS]],
    }


def no_compliant_cover_reason(processed: ProcessingOutcome, *, stored: bool = False) -> str:
    """``no candidate passes Mercado Libre's cover rules (2 tried, 2 model runs): cover_text×2 — 1.jpg:
    cover_text: text covers 8 % ...`` — the checks that failed, with their measured values, per tried candidate."""
    attempts = processed.cover_attempts
    counts: dict[str, int] = {}
    for attempt in attempts:
        for code in attempt.failed_codes:
            counts[code] = counts.get(code, 0) + 1
    head = (
        f"no candidate passes Mercado Libre's cover rules ({len(attempts)} tried, {processed.model_runs} model runs): "
        f"{describe_counts(counts) or 'none judged'}"
    )
    if stored:
        head += "; pictures kept under the lenient policy, the cover flagged"
    parts = []
    for attempt in attempts:
        name = attempt.url.rsplit("/", 1)[-1] or attempt.url
        if attempt.refused is not None:
            parts.append(f"{name}: {attempt.refused}")
        elif attempt.checks is not None:
            parts.append(f"{name}: " + "; ".join(f"{f.code}: {f.detail}" for f in attempt.checks.failures))
    return (head + (" — " + " | ".join(parts) if parts else ""))[:1500]
