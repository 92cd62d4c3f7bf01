"""``ml-images``: the project's command line.

Each concern registers its own sub-commands from a module of this package:
``db`` (schema), ``catalog`` (loading products), ``models`` (rembg model provisioning),
``fetch`` (the pipeline through Dagster, parity with the original ``fetch_ml_images`` command).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from ml_images.errors import ConfigurationError, MlImagesError
from ml_images.redaction import configure_logging

_SUBCOMMAND_MODULES = ("db", "catalog", "models", "fetch", "worker", "partitions")


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(prog="ml-images", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _SUBCOMMAND_MODULES:
        module = importlib.import_module(f"ml_images.cli.{name}_command")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # Credentials are redacted from every log record, with -v or without.
    configure_logging(level=logging.DEBUG if args.verbose else logging.INFO)
    try:
        return int(args.handler(args) or 0)
    except ConfigurationError as exc:
        print(f"ml-images: configuration error: {exc}", file=sys.stderr)
        return 2
    except MlImagesError as exc:
        print(f"ml-images: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("ml-images: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
