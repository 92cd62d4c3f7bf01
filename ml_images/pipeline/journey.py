"""What happens to a claimed product: still needed? → query → candidates (the distributor photo, a search as
``ML_IMAGES_SEARCH_MODE`` says) → rank → download → process → store and record. Each way it can end is recorded
on the claim's attempt; the failure policy is in ``ml_images.pipeline.product_pipeline``.

A product whose last verdict was "nothing usable" searches afresh (bypassing and refreshing the search cache)
instead of replaying the results that led nowhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from ml_images.catalog.models import ProductMaster
from ml_images.catalog.recorder import Claim, ImageRecorder
from ml_images.catalog.selection import ImageCandidateSelector
from ml_images.download.results import DownloadedImage
from ml_images.download.safe_downloader import SafeDownloader
from ml_images.outcomes import TRANSPORT_REASONS, ProductStatus, ReasonCode, Refusal
from ml_images.pipeline.attempt_state import AttemptHistory, BatchWork, Fetched, ProductState
from ml_images.pipeline.candidate_sources import CandidateSources
from ml_images.pipeline.cover_report import cover_report, no_compliant_cover_reason
from ml_images.pipeline.failures import Reachability
from ml_images.pipeline.reports import ProductReport, describe_counts
from ml_images.pipeline.storing import ImageCommitter
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
from ml_images.search.product_profile import ProductProfile, product_identity
from ml_images.search.query import QueryConstructor
from ml_images.search.ranking import RankedCandidate
from ml_images.search.service import ImageSearchService, search_calls_by_provider_of, search_calls_of
from ml_images.storage.base import ImageStore

_SKIP_REASONS: dict[str, str] = {
    ReasonCode.HAS_IMAGES: "the product already has images",
    ReasonCode.NOT_ELIGIBLE: "the product is no longer eligible for Mercado Libre",
    ReasonCode.NOT_FOUND: "no such product",
}


class ProductJourney:
    """Runs a claimed product from "does it still need images?" to its recorded outcome. Thread-safe."""

    def __init__(
        self,
        *,
        selector: ImageCandidateSelector,
        recorder: ImageRecorder,
        queries: QueryConstructor,
        search: ImageSearchService,
        downloader: SafeDownloader,
        processor: ImageProcessorService,
        store: ImageStore,
        max_images: int,
        unreachable_attempts: int,
        sources: CandidateSources,
    ) -> None:
        self._selector = selector
        self._recorder = recorder
        self._queries = queries
        self._search = search
        self._downloader = downloader
        self._processor = processor
        self._committer = ImageCommitter(recorder, store)
        self._max_images = max_images
        self._unreachable_attempts = unreachable_attempts
        self._sources = sources

    def run(
        self, product: ProductMaster, claim: Claim, state: ProductState, force: bool, work: BatchWork
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
        history = AttemptHistory(
            self._recorder.previous_attempts(pid, claim.attempt_id), claim.run_id, claim.attempt_id
        )

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
        return self._committer.store_and_commit(product, claim, state, processed)

    # ------------------------------------------------------------------ candidates (issue 13)

    def _gather(
        self, product: ProductMaster, claim: Claim, state: ProductState, history: AttemptHistory, work: BatchWork
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
        fetched = Fetched()
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
                return self._committer.store_and_commit(product, claim, state, verdict)
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

    def _search_for(self, state: ProductState, history: AttemptHistory) -> SearchOutcome:
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

    def _nothing_to_try(self, claim: Claim, state: ProductState, searched: bool) -> ProductReport:
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

    def _download(self, state: ProductState, ranked: Sequence[RankedCandidate], fetched: Fetched) -> None:
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
        self, claim: Claim, state: ProductState, history: AttemptHistory, reach: Reachability
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

    def _no_images(self, claim: Claim, state: ProductState, code: str, reason: str) -> ProductReport:
        self._recorder.record_no_images(
            claim,
            code,
            reason,
            stats=state.stats(),
        )
        return state.report(ProductStatus.NO_IMAGES, reason_code=code, reason=reason)
