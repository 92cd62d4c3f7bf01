"""ml-images: finds, prepares and stores product photos for Mercado Libre listings.

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
from ml_images.malloc_tuning import limit_heap_fragmentation
from ml_images.redaction import configure_logging
from ml_images.settings import current_settings

_SUBCOMMAND_MODULES = ("db", "catalog", "models", "fetch", "worker", "partitions")


class CommandParser(argparse.ArgumentParser):
    """Reports an unknown option with the usage of the (sub)command it was given to, not the top-level usage.

    argparse hands a sub-command's arguments to its parser with ``parse_known_args`` and leaves what that parser
    did not recognise to the top-level parser; erroring here, in the sub-command's own parser, prints its usage.
    Sub-parsers inherit this class (``add_subparsers`` uses the parent's class).
    """

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ml_images")
    except PackageNotFoundError:  # a source tree that was never installed
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = CommandParser(prog="ml-images", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _SUBCOMMAND_MODULES:
        module = importlib.import_module(f"ml_images.cli.{name}_command")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    limit_heap_fragmentation()  # before any thread starts (ml_images.malloc_tuning says why)
    parser = build_parser()
    args = parser.parse_args(argv)
    # Credentials are redacted from every log record, with -v or without.
    configure_logging(level=logging.DEBUG if args.verbose else logging.INFO)
    try:
        current_settings()  # every variable validated once, before any command does anything
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
