"""``ml-images catalog load FILE``: loads products (JSON Lines or CSV) into the catalog database."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ml_images.catalog.db import create_catalog_engine, ensure_schema_current, make_session_factory, safe_url
from ml_images.catalog.loader import FORMATS, CatalogLoader, CatalogLoadError, LoadReport
from ml_images.settings import current_settings


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("catalog", help="load products into the catalog database")
    commands = parser.add_subparsers(dest="catalog_command", required=True, metavar="ACTION")

    load = commands.add_parser(
        "load",
        help="upsert products by code from a JSON Lines or CSV file",
        description="Every row is checked first. By default one bad row rejects the whole file (nothing is "
        "written); --partial loads the good rows and lists the rejected ones.",
    )
    load.add_argument("file", type=Path, help="a .jsonl/.ndjson or .csv file")
    load.add_argument("--format", choices=FORMATS, default=None, help="file format (default: from the suffix)")
    load.add_argument("--partial", action="store_true", help="load the good rows, report the bad ones")
    load.set_defaults(handler=load_command)


def _print_report(report: LoadReport) -> None:
    print(f"inserted {report.inserted}, updated {report.updated}, rejected {len(report.rejected)}")
    for error in report.rejected:
        print(f"  rejected {error}")


def load_command(args: argparse.Namespace) -> int:
    url = current_settings().database_url
    engine = create_catalog_engine(url)
    try:
        ensure_schema_current(engine)
        loader = CatalogLoader(make_session_factory(engine))
        try:
            report = loader.load(args.file, fmt=args.format, partial=args.partial)
        except CatalogLoadError as exc:
            print(f"{args.file}: rejected, nothing was written ({len(exc.errors)} bad row(s))")
            for error in exc.errors:
                print(f"  {error}")
            return 1
    finally:
        engine.dispose()
    print(f"catalog database: {safe_url(url)}")
    _print_report(report)
    return 0
