"""``ml-images fetch [--limit N] [--dry-run] [--id ID]``: the original ``fetch_ml_images`` command, through Dagster.

It runs the selection job (``fetch_ml_images``) and then the pending products in batched runs of
``product_images_job``, in this process (no daemon needed), recording every run in the Dagster instance at
``DAGSTER_HOME`` so they show in the UI. ``DAGSTER_HOME`` defaults to ``$ML_IMAGES_HOME/dagster_home``.

* ``--limit N``: at most N products (oldest first).
* ``--dry-run``: the selection in dry-run mode, then the list of what would be processed; writes nothing.
* ``--id ID`` (repeatable): those products whether or not they are pending (their images are replaced).

Shows a per-product progress bar on a terminal (one line per run otherwise), a summary and the coverage report
(it materialises ``image_coverage``). Exits 1 when a run failed on a fault, 130 when interrupted (SIGINT/SIGTERM:
the products in flight release their claims, recorded as ``interrupted``; the rest stays pending). A run whose
step failed only because some products got no pictures (so their partitions stand out in the UI) is not a fault:
the outcomes recorded in ``image_fetch_attempt`` decide.

Each run is tagged with this process (host, pid, start time). A run whose process died (SIGKILL, OOM) would stay
STARTED for ever: the next ``ml-images fetch`` (and the sensor) marks such runs failed, and the products they held
are taken over by the next run at once (their holder is provably dead) or when their lease ends.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import textwrap
from collections import Counter
from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ml_images.settings import Settings, default_database_url, ensure_writable_folder

DEFAULT_BATCH_SIZE = 25
PREVIEW_LINES = 50
#: A product's own outcome (recorded in image_fetch_attempt): a run that ends with these alone did its work, even
#: when its step failed to make the products without pictures stand out in the UI.
PRODUCT_OUTCOMES = frozenset({"stored", "no_images", "skipped", "deferred"})
WITHOUT_PICTURES = frozenset({"no_images", "deferred"})


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from exc
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


DESCRIPTION = (
    "Find, prepare and store images for the products that need them: the selection job, then the pending "
    "products in batched runs of product_images_job, in this process, recorded in the Dagster instance at "
    "DAGSTER_HOME (default $ML_IMAGES_HOME/dagster_home) so they show in the UI."
)
EPILOG = """\
progress:
  a per-product progress bar (counts, elapsed time, ETA) when the output is a terminal;
  one line per run otherwise.

exit status:
  0    every run did its work; products that got no pictures (listing ERROR, or left
       pending because their candidates were unreachable) are an outcome, not a failure
  1    a run failed on a fault (search, storage, catalog, quota): the rest stays pending
  2    configuration error
  130  interrupted (the products in flight release their claims)

The sensor's ML_IMAGES_SENSOR_* variables do not apply here: --batch-size sets the run size.
"""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "fetch",
        help="find, prepare and store images for products that need them (runs through Dagster)",
        description=textwrap.fill(DESCRIPTION, 88),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--limit", type=_positive_int, metavar="N", help="process at most N products")
    parser.add_argument("--dry-run", action="store_true", help="show what would be processed; write nothing")
    parser.add_argument(
        "--id",
        dest="ids",
        type=_positive_int,
        action="append",
        metavar="ID",
        help="process this product whether or not it is pending, replacing its images (repeatable)",
    )
    parser.add_argument(
        "--batch-size",
        type=_positive_int,
        default=DEFAULT_BATCH_SIZE,
        metavar="N",
        help=f"products per Dagster run (default {DEFAULT_BATCH_SIZE}); smaller runs show up sooner in the UI",
    )
    parser.set_defaults(handler=fetch_command)


def prepare_dagster_home(env: MutableMapping[str, str] | None = None, say: Callable[[str], None] | None = None) -> Path:
    """Makes ``DAGSTER_HOME`` an existing absolute folder (default ``$ML_IMAGES_HOME/dagster_home``), and checks
    that ``ML_IMAGES_HOME`` is a writable folder when anything lives there (the default catalog, the local image
    store or the default ``DAGSTER_HOME``). Either problem is a ``ConfigurationError`` naming the variable, raised
    before Dagster starts (a file or a read-only path would otherwise surface as a traceback mid-run)."""
    env = os.environ if env is None else env
    settings = Settings.from_env(env)
    raw = settings.dagster_home
    uses_home = not raw or settings.bucket is None or settings.database_url == default_database_url(settings.home)
    if uses_home:
        ensure_writable_folder(settings.home, "ML_IMAGES_HOME")
    if raw:
        home = ensure_writable_folder(raw, "DAGSTER_HOME")
    else:
        home = ensure_writable_folder(settings.home / "dagster_home", "ML_IMAGES_HOME")
        if say is not None:
            say(f"DAGSTER_HOME is not set; using {home}")
    config = home / "dagster.yaml"
    if not raw and not config.exists():
        # Without the file Dagster warns on every start; empty means the embedded default (SQLite here).
        config.write_text(
            "# Dagster instance of `ml-images fetch` (created by it): SQLite storage in this folder.\n"
            "# For PostgreSQL, use the dagster.yaml at the root of the ml_images repository.\n"
        )
    env["DAGSTER_HOME"] = str(home)
    return home


@dataclass
class FetchSummary:
    total: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    images: int = 0
    failed_runs: list[str] = field(default_factory=list)
    runs_without_pictures: list[str] = field(default_factory=list)

    @property
    def done(self) -> int:
        return sum(self.statuses.values())

    def line(self) -> str:
        return (
            f"stored: {self.statuses['stored']} ({self.images} images), "
            f"no images (listing ERROR): {self.statuses['no_images']}, "
            f"skipped: {self.statuses['skipped']}, "
            + (
                f"left pending (candidates unreachable): {self.statuses['deferred']}, "
                if self.statuses["deferred"]
                else ""
            )
            + f"failed: {self.statuses['failed']}"
            + (f", not processed: {self.total - self.done}" if self.total > self.done else "")
        )


class FetchCommand:
    """Drives the Dagster jobs of the code location in this process against ``instance``."""

    def __init__(
        self,
        instance: Any,
        *,
        batch_size: int,
        verbose: bool,
        out: Callable[[str], None] = print,
        progress_bar: bool = False,
    ) -> None:
        from ml_images.definitions import defs
        from ml_images.defs.resources import CatalogDatabaseResource
        from ml_images.orchestration.run_holders import holder_tags

        self.instance = instance
        self.batch_size = batch_size
        self.out = out
        self.progress_bar = progress_bar
        # Without -v, Dagster's console logger stays quiet: this command prints each run's outcome and failure
        # itself (a run that marks its products without pictures as failed would otherwise print a stack trace).
        self.log_level = "DEBUG" if verbose else "CRITICAL"
        self.selection_job = defs.resolve_job_def("fetch_ml_images")
        self.images_job = defs.resolve_job_def("product_images_job")
        self.coverage_job = defs.resolve_job_def("image_coverage_job")
        self.catalog = CatalogDatabaseResource()
        self.process_tags = holder_tags()  # this process: a run it leaves behind when killed is recognised as dead

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
        _raise_if_interrupted(result)
        if not result.success:
            self.out(f"selection run {result.run_id} failed: {_failure_text(result)}")
            return False
        # A dry run records an observation, a real selection a materialisation (see assets/selection.py).
        events = result.asset_materializations_for_node("pending_image_products") or (
            result.asset_observations_for_node("pending_image_products")
        )
        metadata = events[0].metadata if events else {}
        pending = _meta(metadata, "pending_count")
        selected = _meta(metadata, "selected_count")
        registered = _meta(metadata, "would_register" if dry_run else "newly_registered")
        verb = "would register" if dry_run else "registered"
        self.out(
            f"selection (run {result.run_id}): {pending} products need images, {selected} selected, "
            f"{registered} {verb} as new partitions"
        )
        return True

    def run_batches(self, keys: Sequence[str], *, force: bool) -> FetchSummary:
        from ml_images.cli.progress import ProductProgress
        from ml_images.orchestration.partitions import PRODUCTS_PARTITIONS_NAME, plan_batches
        from ml_images.orchestration.progress import listening

        summary = FetchSummary(total=len(keys))
        batches = plan_batches(keys, self.instance.get_dynamic_partitions(PRODUCTS_PARTITIONS_NAME), self.batch_size)
        progress = ProductProgress(len(keys), enabled=self.progress_bar, out=self.out)
        say = progress.say
        with progress, listening(progress):
            for number, batch in enumerate(batches, start=1):
                result = self.images_job.execute_in_process(
                    run_config=self._run_config({"product_images": {"config": {"force": force}}}),
                    instance=self.instance,
                    tags={**batch.run_tags(), **self.process_tags},
                    raise_on_error=False,
                )
                statuses, images = self._outcomes(result, batch.keys)
                summary.statuses.update(statuses.values())
                summary.images += images
                own_outcomes = not result.success and _failed_on_outcomes(result, statuses)
                state = "succeeded" if result.success else ("done" if own_outcomes else "FAILED")
                say(
                    f"products done {summary.done}/{summary.total} "
                    f"(run {number}/{len(batches)} {result.run_id} {state}: {_counts_text(statuses)})"
                )
                if _interrupted(result):
                    say(
                        f"  run {result.run_id} interrupted: the products in flight released their claims (recorded "
                        f"as interrupted); the rest stays pending. Done: {summary.line()}"
                    )
                    raise KeyboardInterrupt
                if result.success:
                    continue
                if own_outcomes:
                    # Every product finished with its own outcome; the step failed on purpose so that the products
                    # without pictures show as failed partitions in the UI. Not a fault: no non-zero exit for it.
                    without = [key for key, status in statuses.items() if status in WITHOUT_PICTURES]
                    summary.runs_without_pictures.append(result.run_id)
                    say(
                        f"  run {result.run_id}: {len(without)} products got no pictures ({', '.join(without[:10])}"
                        f"{' …' if len(without) > 10 else ''}): their outcome, recorded; their partitions show as "
                        "failed in the Dagster UI"
                    )
                    continue
                summary.failed_runs.append(result.run_id)
                say(f"  run {result.run_id}: {_failure_text(result)}")
                if _stopped_by(result):
                    say("  stopping: the next runs would meet the same fault; the rest stays pending")
                    break
        return summary

    def _outcomes(self, result: Any, keys: Sequence[str]) -> tuple[dict[str, str], int]:
        """Status per product of one run: from its materialisations, else from the attempts it recorded in
        ``image_fetch_attempt`` (a product the run skipped without an attempt, e.g. one another run held, from the
        run's own report)."""
        statuses: dict[str, str] = {}
        images = 0
        for event in result.asset_materializations_for_node("product_images"):
            if event.partition is not None:
                statuses[event.partition] = str(_meta(event.metadata, "status") or "stored")
                images += int(_meta(event.metadata, "images_stored") or 0)
        missing = [k for k in keys if k not in statuses]
        if missing:
            from ml_images.catalog.recorder import ImageRecorder

            attempts = ImageRecorder(self.catalog.session_factory()).last_attempts(int(k) for k in missing)
            reported = _reported_outcomes(result)
            for key in missing:
                attempt = attempts.get(int(key))
                if attempt is not None and attempt.run_id == result.run_id and attempt.outcome != "running":
                    deferred = attempt.reason_code == "candidates_unreachable"
                    statuses[key] = "deferred" if deferred else attempt.outcome
                    images += attempt.images_stored if attempt.outcome == "stored" else 0
                elif reported.get(key) == "skipped":
                    statuses[key] = "skipped"
                else:
                    statuses[key] = "failed"
        return statuses, images

    # -------------------------------------------------------------------------------------------- commands

    def preflight(self, *, dry_run: bool) -> None:
        """Configuration errors (schema, search credentials, model) before any run is recorded: the runs would
        all fail on them. Raises ``ConfigurationError`` (the dispatcher prints it and exits 2)."""
        from ml_images.defs.resources import BackgroundRemoverResource
        from ml_images.search.factory import build_search_service

        self.catalog.check_schema()
        if not dry_run:
            build_search_service(self.catalog.settings())
            BackgroundRemoverResource().remover().ensure_available()
        self.fail_dead_runs()

    def fail_dead_runs(self) -> None:
        """Runs of ``ml-images fetch`` processes that died are marked failed (they would count as active)."""
        from ml_images.orchestration.run_holders import fail_dead_runs

        dead = fail_dead_runs(self.instance)
        if dead:
            self.out(f"marked {len(dead)} run(s) of a dead ml-images process as failed: {', '.join(dead)}")

    def fetch(self, *, limit: int | None, dry_run: bool) -> int:
        self.preflight(dry_run=dry_run)
        if not self.run_selection(dry_run=dry_run, limit=limit):
            return 1
        services = self.catalog.selection()
        selected = services.select_ids(limit=limit)
        if dry_run:
            self._print_would_process(services.preview(selected), services.queries, forced=False, total=len(selected))
            return 0
        if not selected:
            self.out("nothing to do: no product needs images")
            self.report_coverage()
            return 0
        self.out(f"processing {len(selected)} products in runs of at most {self.batch_size}")
        return self._finish(self.run_batches([str(pid) for pid in selected], force=False))

    def fetch_ids(self, ids: Sequence[int], *, dry_run: bool) -> int:
        from ml_images.catalog.product_reader import CatalogProducts
        from ml_images.orchestration.partitions import register_products
        self.preflight(dry_run=dry_run)
        found = CatalogProducts(self.catalog.session_factory()).load(ids)
        missing = [pid for pid in ids if pid not in found]
        for pid in missing:
            self.out(f"product {pid} does not exist")
        existing = [found[pid] for pid in dict.fromkeys(ids) if pid in found]
        if dry_run:
            queries = self.catalog.selection().queries
            self._print_would_process(existing, queries, forced=True, total=len(existing))
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
        without = summary.statuses["no_images"] + summary.statuses["deferred"]
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
        _raise_if_interrupted(result)
        if not result.success:
            self.out(f"coverage report run {result.run_id} failed: {_failure_text(result)}")
            return
        [event] = result.asset_materializations_for_node("image_coverage")
        m = event.metadata
        self.out(
            f"coverage: {_meta(m, 'with_pictures')} of {_meta(m, 'eligible')} eligible products have pictures, "
            f"{_meta(m, 'pending')} pending, {_meta(m, 'in_cooldown')} in cooldown, "
            f"{_meta(m, 'listings_in_error')} listings in ERROR (asset image_coverage, run {result.run_id})"
        )

    def _print_would_process(self, products: Sequence[Any], queries: Any, *, forced: bool, total: int) -> None:
        what = "would process (forced, replacing current images)" if forced else "would process"
        self.out(f"dry run: {what} {total} products; nothing was registered, searched or written")
        for product in products[:PREVIEW_LINES]:
            self.out(f"  {product.id}\t{product.code or '-'}\tquery: {queries.build(product)!r}")
        if total > len(products[:PREVIEW_LINES]):
            self.out(f"  … and {total - len(products[:PREVIEW_LINES])} more")


def _meta(metadata: Any, key: str) -> Any:
    value = metadata.get(key) if metadata else None
    return getattr(value, "value", value)


def _counts_text(statuses: dict[str, str]) -> str:
    counts = Counter(statuses.values())
    return ", ".join(f"{status} {count}" for status, count in sorted(counts.items())) or "no products"


def _failed_on_outcomes(result: Any, statuses: dict[str, str]) -> bool:
    """Whether a failed run failed only to mark its products without pictures: its step raised the "no pictures"
    failure (nothing stopped the batch) and every product's recorded outcome is its own."""
    from ml_images.orchestration.config import NO_PICTURES_KEY

    failures = _step_failures(result)
    marked = bool(failures) and all(
        event.step_failure_data.user_failure_data is not None
        and NO_PICTURES_KEY in event.step_failure_data.user_failure_data.metadata
        and "stopped_by" not in event.step_failure_data.user_failure_data.metadata
        for event in failures
    )
    return marked and all(status in PRODUCT_OUTCOMES for status in statuses.values())


def _reported_outcomes(result: Any) -> dict[str, str]:
    """Outcome per product from the ``run_products`` table of the step's failure, when it has one."""
    outcomes: dict[str, str] = {}
    for event in _step_failures(result):
        user = event.step_failure_data.user_failure_data
        table = user.metadata.get("run_products") if user is not None else None
        for record in getattr(table, "records", None) or []:
            outcomes[str(record.data.get("product_id"))] = str(record.data.get("outcome"))
    return outcomes


def _step_failures(result: Any) -> list[Any]:
    return [event for event in result.all_events if event.is_step_failure]


def _failure_text(result: Any) -> str:
    """The first thing that went wrong in the run, in one line (the Failure's description when there is one)."""
    for event in _step_failures(result):
        data = event.step_failure_data
        if data.user_failure_data is not None and data.user_failure_data.description:
            return str(data.user_failure_data.description)
    for event in result.all_events:  # resource start-up and run failures carry the error themselves
        error = getattr(event.event_specific_data, "error", None)
        if error is not None:
            cause = error
            while cause.cause is not None and cause.cls_name in (
                "DagsterResourceFunctionError",
                "DagsterUserCodeExecutionError",
            ):
                cause = cause.cause
            return (
                f"{cause.cls_name}: {cause.message.strip().splitlines()[0]}" if cause.message else str(cause.cls_name)
            )
    return "the run failed (see the Dagster UI for its logs)"


def _interrupted(result: Any) -> bool:
    """Whether the run stopped because this process was told to (SIGINT/SIGTERM during a step)."""
    for event in _step_failures(result):
        data = event.step_failure_data
        source = getattr(data, "error_source", None)
        if getattr(source, "value", source) == "INTERRUPT":
            return True
        user = data.user_failure_data
        if user is not None and _meta(user.metadata, "stopped_by") == "interrupted":
            return True  # product_images turns the interrupt into a Failure that Dagster does not retry
        if data.error is not None and data.error.cls_name in ("DagsterExecutionInterruptedError", "KeyboardInterrupt"):
            return True
    return False


def _raise_if_interrupted(result: Any) -> None:
    if _interrupted(result):
        raise KeyboardInterrupt


def _stopped_by(result: Any) -> bool:
    """Whether the run stopped on a fault every later run would meet (quota, configuration, infrastructure)."""
    failures = _step_failures(result)
    if not failures:
        return True  # failed before any step ran (resource start-up: model, schema, database): same for every run
    for event in failures:
        data = event.step_failure_data
        if data.user_failure_data is None or "stopped_by" in data.user_failure_data.metadata:
            return True
    return False


def fetch_command(args: argparse.Namespace) -> int:
    verbose = bool(getattr(args, "verbose", False))
    if not verbose:
        # Dagster's own storage migrations (Alembic) and per-product service logs would drown the progress lines.
        for name in ("alembic", "ml_images"):
            logging.getLogger(name).setLevel(logging.WARNING)
    prepare_dagster_home(say=lambda text: print(text, file=sys.stderr))
    from dagster import DagsterInstance

    from ml_images.cli.progress import is_terminal

    with DagsterInstance.get() as instance:
        command = FetchCommand(instance, batch_size=args.batch_size, verbose=verbose, progress_bar=is_terminal())
        if args.ids:
            return command.fetch_ids(args.ids, dry_run=args.dry_run)
        return command.fetch(limit=args.limit, dry_run=args.dry_run)
