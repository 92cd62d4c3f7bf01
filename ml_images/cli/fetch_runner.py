"""The runs of ``ml-images fetch``: the selection job, batches of ``product_images_job`` and the coverage report,
against the Dagster instance at ``DAGSTER_HOME``. One batch at a time runs in this process; ``--parallel N`` runs
N at once in child processes; with ``ML_IMAGES_EXECUTOR=celery`` the image steps run on the Celery workers
(``batch_launch``).

The clients (catalog, search, model) are the code location's own resources, initialised through Dagster's
``build_resources`` exactly as a run initialises them. Each batch's outcome is read from the catalog's
``image_fetch_attempt`` rows and the run's tags (``fetch_outcomes``), not from Dagster's event metadata.

Longer than most modules: it is the one driver of ``fetch`` (selection, sequential and concurrent batches, the
stop rules, the coverage report); its outcome reading and its command line already live apart.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from dagster import (
    DagsterInstance,
    DagsterResourceFunctionError,
    Definitions,
    ExecuteInProcessResult,
    build_resources,
)

from ml_images.catalog.product_reader import CatalogProducts
from ml_images.cli.batch_launch import RUN_FAILED, ChildBatches, ChildRun, executed_batch, failure_text
from ml_images.cli.fetch_outcomes import BatchOutcome, FetchSummary
from ml_images.cli.progress import ProductProgress
from ml_images.definitions import defs as code_location
from ml_images.defs.executor import ExecutionSettings
from ml_images.defs.jobs import FETCH_ML_IMAGES_JOB, PRODUCT_IMAGES_JOB
from ml_images.defs.resources import CatalogDatabaseResource, default_resources
from ml_images.defs.sensors.coverage import IMAGE_COVERAGE_JOB
from ml_images.errors import MlImagesError
from ml_images.orchestration.partitions import PRODUCTS_PARTITIONS_NAME, PartitionBatch, plan_batches, register_products
from ml_images.orchestration.progress import listening
from ml_images.orchestration.run_holders import fail_dead_runs, holder_tags
from ml_images.orchestration.selection_services import SelectionServices
from ml_images.orchestration.stops import was_interrupted
from ml_images.pipeline.reports import ProductStatus
from ml_images.settings import Settings, current_settings

PREVIEW_LINES = 50


class FetchCommand:
    """Drives the Dagster jobs of the code location ``defs`` in this process against ``instance``."""

    def __init__(
        self,
        defs: Definitions,
        instance: DagsterInstance,
        settings: Settings,
        catalog: CatalogDatabaseResource,
        *,
        batch_size: int,
        parallel: int = 1,
        verbose: bool,
        out: Callable[[str], None] = print,
        progress_bar: bool = False,
    ) -> None:
        self.instance = instance
        self.settings = settings
        self.batch_size = batch_size
        self.parallel = parallel
        self.out = out
        self.progress_bar = progress_bar
        # Without -v, Dagster's console logger stays quiet: this command prints each run's outcome and failure
        # itself (a run that marks its products without pictures as failed would otherwise print a stack trace).
        self.log_level = "DEBUG" if verbose else "CRITICAL"
        self.selection_job = defs.resolve_job_def(FETCH_ML_IMAGES_JOB)
        self.images_job = defs.resolve_job_def(PRODUCT_IMAGES_JOB)
        # With the Celery executor the image steps go to the workers (the selection and coverage steps are a few
        # queries each and stay in this process); `batch_launch` explains why execute_in_process cannot do that.
        self.distributed = ExecutionSettings.from_settings(settings).distributed
        self.coverage_job = defs.resolve_job_def(IMAGE_COVERAGE_JOB)
        self.resources = default_resources(settings)
        self.catalog = catalog  # initialised (its EnvVar fields resolved, its schema checked)
        self.process_tags = holder_tags()  # this process: a run it leaves behind when killed is recognised as dead

    def clients(self, *keys: str) -> AbstractContextManager[Any]:
        """The named resources of the code location, initialised as a run initialises them."""
        return initialised({key: self.resources[key] for key in keys})

    # ----------------------------------------------------------------------------------------------- runs

    def _run_config(self, ops: dict[str, Any]) -> dict[str, Any]:
        return {"ops": ops, "loggers": {"console": {"config": {"log_level": self.log_level}}}}

    def run_selection(self, *, dry_run: bool, limit: int | None) -> bool:
        config = {"dry_run": dry_run, "limit": limit, "product_ids": None}
        result = self.selection_job.execute_in_process(
            run_config=self._run_config({"pending_image_products": {"config": config}}),
            instance=self.instance,
            tags=self.process_tags,
            raise_on_error=False,
        )
        if not result.success:
            self._raise_if_interrupted(result)
            self.out(f"selection run {result.run_id} failed: {failure_text(result)}")
            return False
        self.out(f"selection (run {result.run_id}) done")
        return True

    def _raise_if_interrupted(self, result: ExecuteInProcessResult) -> None:
        """A run that failed because it was told to stop: the stop request goes on to the command (exit 130).
        Dagster turns SIGINT/SIGTERM during a step into the step's failure; only the asset's tag tells them apart."""
        run = self.instance.get_run_by_id(result.run_id)
        if run is not None and was_interrupted(run.tags):
            self.out(f"run {result.run_id} interrupted")
            raise KeyboardInterrupt

    def _batch_config(self, force: bool) -> dict[str, Any]:
        return self._run_config({"product_images": {"config": {"force": force}}})

    def _run_batch(self, batch: PartitionBatch, *, force: bool) -> BatchOutcome:
        """One batch run, from this (the main) thread."""
        with executed_batch(
            self.images_job,
            self.instance,
            run_config=self._batch_config(force),
            tags={**batch.run_tags(), **self.process_tags},
            distributed=self.distributed,
        ) as result:
            run = ChildRun.of(result)
        return self._outcome(batch, run)

    def _outcome(self, batch: PartitionBatch, child: ChildRun) -> BatchOutcome:
        """The batch's outcome from the products' attempt rows and the run's tags."""
        run = self.instance.get_run_by_id(child.run_id)
        outcome = BatchOutcome.read(
            child.run_id,
            batch.keys,
            succeeded=child.success,
            attempts=self.catalog.recorder().last_attempts(int(k) for k in batch.keys),
            run_tags=run.tags if run is not None else {},
        )
        if not outcome.did_its_work:
            self._failures[child.run_id] = child.failure or RUN_FAILED
        return outcome

    def run_batches(self, keys: Sequence[str], *, force: bool) -> FetchSummary:
        """Runs ``keys`` in batches, ``self.parallel`` at a time; starts no new batch after a fault every later
        run would meet, or after an interruption."""
        summary = FetchSummary(total=len(keys))
        batches = plan_batches(keys, self.instance.get_dynamic_partitions(PRODUCTS_PARTITIONS_NAME), self.batch_size)
        progress = ProductProgress(len(keys), enabled=self.progress_bar, out=self.out)
        self._failures: dict[str, str] = {}
        with progress:
            if self.parallel == 1:
                # In this (the main) thread: Dagster turns SIGINT/SIGTERM into an interruption of the step.
                with listening(progress):
                    for number, batch in enumerate(batches, start=1):
                        outcome = self._run_batch(batch, force=force)
                        summary.add(outcome)
                        if self._report(outcome, number, len(batches), summary, progress.say):
                            break
            else:
                self._run_concurrently(batches, force=force, summary=summary, progress=progress)
        return summary

    def _run_concurrently(
        self, batches: Sequence[PartitionBatch], *, force: bool, summary: FetchSummary, progress: ProductProgress
    ) -> None:
        """``self.parallel`` runs at a time, each in a child process (``batch_launch`` says why not threads). A
        stop request stops new batches from starting and lets the runs in flight finish theirs (their products end
        with their own outcomes; none is left claimed): the children ignore SIGINT, this process decides."""
        say = progress.say
        pending = list(enumerate(batches, start=1))
        running: dict[Future[ChildRun], tuple[int, PartitionBatch]] = {}
        stopping = False
        interrupted = False
        children = ChildBatches(min(self.parallel, len(batches)), distributed=self.distributed, on_product=progress)
        try:
            while pending or running:
                while pending and len(running) < self.parallel and not stopping:
                    number, batch = pending.pop(0)
                    running[children.submit(self._batch_config(force), batch.run_tags())] = (number, batch)
                if not running:
                    break
                try:
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                except KeyboardInterrupt:
                    if not interrupted:
                        say(f"  stop requested: waiting for the {len(running)} run(s) in flight to finish their batch")
                    stopping = interrupted = True
                    continue
                for future in done:
                    number, batch = running.pop(future)
                    outcome = self._outcome(batch, future.result())
                    summary.add(outcome)
                    try:
                        stopping = self._report(outcome, number, len(batches), summary, say) or stopping
                    except KeyboardInterrupt:
                        stopping = interrupted = True
        finally:
            children.close()
        if interrupted:
            raise KeyboardInterrupt

    def _report(
        self, outcome: BatchOutcome, number: int, total: int, summary: FetchSummary, say: Callable[[str], None]
    ) -> bool:
        """Prints one batch's outcome; True when no further batch should start."""
        state = "succeeded" if outcome.succeeded else ("done" if outcome.did_its_work else "FAILED")
        say(
            f"products done {summary.done}/{summary.total} "
            f"(run {number}/{total} {outcome.run_id} {state}: {outcome.counts_text()})"
        )
        if outcome.interrupted:
            say(
                f"  run {outcome.run_id} interrupted: the products in flight released their claims (recorded as "
                f"interrupted); the rest stays pending. Done: {summary.line()}"
            )
            raise KeyboardInterrupt
        if outcome.succeeded:
            return False
        if outcome.did_its_work:
            # Every product finished with its own outcome; the step failed on purpose so that the products without
            # pictures show as failed partitions in the UI. Not a fault: no non-zero exit for it.
            without = outcome.without_pictures
            summary.runs_without_pictures.append(outcome.run_id)
            say(
                f"  run {outcome.run_id}: {len(without)} products got no pictures ({', '.join(without[:10])}"
                f"{' …' if len(without) > 10 else ''}): their outcome, recorded; their partitions show as failed in "
                "the Dagster UI"
            )
            return False
        summary.failed_runs.append(outcome.run_id)
        say(f"  run {outcome.run_id}: {self._failures.get(outcome.run_id, 'failed')}")
        if outcome.stopped_by is not None:
            say("  stopping: the next runs would meet the same fault; the rest stays pending")
            return True
        return False

    # -------------------------------------------------------------------------------------------- commands

    def preflight(self, *, dry_run: bool) -> None:
        """Configuration errors (schema, search credentials, model) before any run is recorded: the runs would
        all fail on them. Raises ``ConfigurationError`` (the dispatcher prints it and exits 2)."""
        if not dry_run:
            # Initialising them runs their start-up checks (the model); the catalog's schema was checked when it
            # was initialised.
            with self.clients("image_search", "background_remover") as resources:
                resources.image_search.search_service()  # a missing key of the chosen provider
        self.fail_dead_runs()

    def fail_dead_runs(self) -> None:
        """Runs of ``ml-images fetch`` processes that died are marked failed (they would count as active)."""
        dead = fail_dead_runs(self.instance)
        if dead:
            self.out(f"marked {len(dead)} run(s) of a dead ml-images process as failed: {', '.join(dead)}")

    def fetch(self, *, limit: int | None, dry_run: bool) -> int:
        self.preflight(dry_run=dry_run)
        if not self.run_selection(dry_run=dry_run, limit=limit):
            return 1
        # The selection's ids from the service the asset used (docs/decisions.md §9 says why not through Dagster).
        services = self.catalog.selection()
        selected = services.select_ids(limit=limit)
        if dry_run:
            self._print_would_process(services.preview(selected), services, forced=False, total=len(selected))
            return 0
        if not selected:
            self.out("nothing to do: no product needs images")
            self.report_coverage()
            return 0
        self.out(
            f"processing {len(selected)} products in runs of at most {self.batch_size}"
            + (f", {self.parallel} runs at once" if self.parallel > 1 else "")
        )
        keys = [str(pid) for pid in selected]
        register_products(self.instance, keys)  # a product that became pending since the selection run: its key
        return self._finish(self.run_batches(keys, force=False))

    def fetch_ids(self, ids: Sequence[int], *, dry_run: bool) -> int:
        self.preflight(dry_run=dry_run)
        found = CatalogProducts(self.catalog.session_factory()).load(ids)
        missing = [pid for pid in ids if pid not in found]
        for pid in missing:
            self.out(f"product {pid} does not exist")
        existing = [found[pid] for pid in dict.fromkeys(ids) if pid in found]
        if dry_run:
            self._print_would_process(existing, self.catalog.selection(), forced=True, total=len(existing))
            return 1 if missing else 0
        if not existing:
            return 1
        keys = [str(p.id) for p in existing]
        register_products(self.instance, keys)
        self.out(f"processing {len(keys)} products (forced: current images are replaced)")
        code = self._finish(self.run_batches(keys, force=True))
        return code or (1 if missing else 0)

    def _finish(self, summary: FetchSummary) -> int:
        self.out(f"done: {summary.line()}")
        without = summary.statuses[ProductStatus.NO_IMAGES] + summary.statuses[ProductStatus.DEFERRED]
        if without:
            self.out(
                f"{without} products got no pictures: that is their outcome (listing ERROR, or pending until their "
                "candidates are reachable), not a failure of this command; see the image_coverage report"
            )
        self.report_coverage()
        if summary.failed_runs:
            self.out(f"{len(summary.failed_runs)} run(s) failed: {', '.join(summary.failed_runs)}")
            return 1
        return 0

    def report_coverage(self) -> None:
        """Materialises ``image_coverage`` (as the sensor does after daemon-launched runs) and prints its headline."""
        result = self.coverage_job.execute_in_process(
            run_config={"loggers": {"console": {"config": {"log_level": self.log_level}}}},
            instance=self.instance,
            tags=self.process_tags,
            raise_on_error=False,
        )
        if not result.success:
            self._raise_if_interrupted(result)
            self.out(f"coverage report run {result.run_id} failed: {failure_text(result)}")
            return
        [event] = result.asset_materializations_for_node("image_coverage")
        m = {key: value.value for key, value in event.metadata.items()}
        self.out(
            f"coverage: {m['with_pictures']} of {m['eligible']} eligible products have pictures, "
            f"{m['pending']} pending, {m['in_cooldown']} in cooldown, "
            f"{m['listings_in_error']} listings in ERROR (asset image_coverage, run {result.run_id})"
        )

    def _print_would_process(
        self, products: Sequence[Any], services: SelectionServices, *, forced: bool, total: int
    ) -> None:
        what = "would process (forced, replacing current images)" if forced else "would process"
        self.out(f"dry run: {what} {total} products; nothing was registered, searched or written")
        for product in products[:PREVIEW_LINES]:
            self.out(f"  {product.id}\t{product.code or '-'}\tquery: {services.queries.build(product)!r}")
        if total > len(products[:PREVIEW_LINES]):
            self.out(f"  … and {total - len(products[:PREVIEW_LINES])} more")


@contextmanager
def initialised(resources: Mapping[str, Any]) -> Iterator[Any]:
    """``resources`` initialised through Dagster's ``build_resources`` (``EnvVar`` fields resolved, start-up checks
    run: the schema, the model). A project error raised by a check is re-raised as itself, so the dispatcher
    reports a configuration error in one line instead of Dagster's wrapper."""
    try:
        with build_resources(resources) as built:
            yield built
    except DagsterResourceFunctionError as exc:
        if isinstance(exc.user_exception, MlImagesError):
            raise exc.user_exception from None
        raise


def run_fetch(args: Any, *, verbose: bool, progress_bar: bool) -> int:
    """``ml-images fetch`` once ``DAGSTER_HOME`` is ready: the code location's jobs against its instance."""
    settings = current_settings()
    catalog_resource = default_resources(settings)["catalog"]
    with DagsterInstance.get() as instance, initialised({"catalog": catalog_resource}) as resources:
        command = FetchCommand(
            code_location,
            instance,
            settings,
            resources.catalog,
            batch_size=args.batch_size,
            parallel=args.parallel,
            verbose=verbose,
            progress_bar=progress_bar,
        )
        if args.ids:
            return command.fetch_ids(args.ids, dry_run=args.dry_run)
        return command.fetch(limit=args.limit, dry_run=args.dry_run)
