"""``ml-images fetch [--limit N] [--dry-run] [--id ID] [--parallel N]``: the original ``fetch_ml_images`` command,
through Dagster.

It runs the selection job (``fetch_ml_images``) and then the pending products in batched runs of
``product_images_job``, in this process (no daemon needed), recording every run in the Dagster instance at
``DAGSTER_HOME`` so they show in the UI. ``DAGSTER_HOME`` defaults to ``$ML_IMAGES_HOME/dagster_home``. The runs
themselves are driven by ``fetch_runner``; this module is the command line.

* ``--limit N``: at most N products (oldest first).
* ``--dry-run``: the selection in dry-run mode, then the list of what would be processed; writes nothing.
* ``--id ID`` (repeatable): those products whether or not they are pending (their images are replaced).
* ``--parallel N``: N batch runs at once (default 1), each in a thread of this process.

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
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import Any

from ml_images.cli.progress import is_terminal
from ml_images.settings import Settings, current_settings, default_database_url, ensure_writable_folder

DEFAULT_BATCH_SIZE = 25


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
    parser.add_argument(
        "--parallel",
        type=_positive_int,
        default=1,
        metavar="N",
        help="batch runs at once (default 1); a stop request lets the runs in flight finish their batch",
    )
    parser.set_defaults(handler=fetch_command)


def prepare_dagster_home(env: MutableMapping[str, str] | None = None, say: Callable[[str], None] | None = None) -> Path:
    """Makes ``DAGSTER_HOME`` an existing absolute folder (default ``$ML_IMAGES_HOME/dagster_home``), and checks
    that ``ML_IMAGES_HOME`` is a writable folder when anything lives there (the default catalog, the local image
    store or the default ``DAGSTER_HOME``). Either problem is a ``ConfigurationError`` naming the variable, raised
    before Dagster starts (a file or a read-only path would otherwise surface as a traceback mid-run)."""
    env = os.environ if env is None else env
    settings = current_settings() if env is os.environ else Settings.from_env(env)
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


def fetch_command(args: argparse.Namespace) -> int:
    verbose = bool(getattr(args, "verbose", False))
    if not verbose:
        # Dagster's own storage migrations (Alembic) and per-product service logs would drown the progress lines.
        for name in ("alembic", "ml_images"):
            logging.getLogger(name).setLevel(logging.WARNING)
    prepare_dagster_home(say=lambda text: print(text, file=sys.stderr))
    # Deliberately lazy: the runner loads Dagster and the code location (seconds); `ml-images db`, `catalog` and
    # `models` do not pay for it. DAGSTER_HOME must be set (above) before Dagster reads it.
    from ml_images.cli.fetch_runner import run_fetch

    return run_fetch(args, verbose=verbose, progress_bar=is_terminal())
