"""``ml-images partitions prune``: deletes the Dagster partitions of done products (pictures and rows stay)."""

from __future__ import annotations

import argparse
from datetime import timedelta
from typing import Any

from ml_images.catalog.db import create_catalog_engine, ensure_schema_current, make_session_factory
from ml_images.catalog.done_products import DoneProductFinder
from ml_images.catalog.models import utcnow
from ml_images.cli.fetch_command import prepare_dagster_home
from ml_images.orchestration.partition_pruning import PartitionPruner
from ml_images.settings import current_settings

DEFAULT_AGE_DAYS = 30.0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("partitions", help="keep the products partitions bounded")
    commands = parser.add_subparsers(dest="partitions_command", required=True, metavar="ACTION")
    prune = commands.add_parser(
        "prune",
        help="delete the partitions of done products (their pictures, rows and history stay)",
        description=(
            "A product is done when its pictures were stored more than --older-than-days ago, or when it is no "
            "longer in the catalog. Its partition is deleted from the products partitions; its pictures, its "
            "product_image rows and its attempts stay, and Dagster keeps its past materialisations. A product "
            "that needs pictures again is registered again by the next selection."
        ),
    )
    prune.add_argument(
        "--older-than-days",
        type=float,
        default=DEFAULT_AGE_DAYS,
        help=f"age of the last stored pictures (default {DEFAULT_AGE_DAYS:g})",
    )
    prune.add_argument("--dry-run", action="store_true", help="say what would be deleted; delete nothing")
    prune.set_defaults(handler=prune_command)


def prune_command(args: argparse.Namespace) -> int:
    if args.older_than_days < 0:
        print("ml-images: --older-than-days must be >= 0")
        return 2
    from dagster import DagsterInstance

    settings = current_settings()
    prepare_dagster_home()
    engine = create_catalog_engine(settings.database_url)
    try:
        ensure_schema_current(engine)
        with DagsterInstance.get() as instance:
            pruner = PartitionPruner(instance, DoneProductFinder(make_session_factory(engine)))
            report = pruner.plan(utcnow() - timedelta(days=args.older_than_days))
            print(
                f"{report.registered} partitions registered; done: {len(report.stored)} with pictures stored more "
                f"than {args.older_than_days:g} days ago, {len(report.gone)} no longer in the catalog"
                + (f"; kept {len(report.kept_for_runs)} named by unfinished runs" if report.kept_for_runs else "")
                + (
                    f"; left {len(report.not_product_ids)} keys that are not product ids"
                    if report.not_product_ids
                    else ""
                )
            )
            if args.dry_run:
                print(f"dry run: would delete {len(report.prunable)} partitions")
                return 0
            pruner.prune(report, progress=lambda n, total: print(f"  deleted {n}/{total}"))
            print(f"deleted {report.deleted} partitions (pictures, rows and materialisation history kept)")
    finally:
        engine.dispose()
    return 0
