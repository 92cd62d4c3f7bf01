"""The per-product progress bar of ``ml-images fetch`` (rich), shown only when the output is a terminal."""

from __future__ import annotations

import os
import sys
import threading
from collections import Counter
from collections.abc import Callable
from types import TracebackType
from typing import IO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ml_images.pipeline.reports import ProductReport


def is_terminal(stream: IO[str] | None = None) -> bool:
    stream = sys.stdout if stream is None else stream
    return bool(getattr(stream, "isatty", lambda: False)())


def _terminal() -> IO[str]:
    """The terminal behind stdout, on a file descriptor of its own: while a step runs, Dagster captures the
    process's stdout and stderr (fds 1 and 2) into its compute logs, which would swallow the bar."""
    return os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1, encoding=sys.stdout.encoding or "utf-8")


class ProductProgress:
    """Counts finished products (called from the image step's threads) and draws them as a bar with ETA.

    Disabled, it draws nothing and ``say`` is the plain output; enabled, ``say`` prints above the bar.
    """

    def __init__(self, total: int, *, enabled: bool, out: Callable[[str], None] = print) -> None:
        self.enabled = enabled
        self._out = out
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self._terminal = _terminal() if enabled else None
        self._progress = Progress(
            TextColumn("[bold]products"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[counts]}"),
            TextColumn("elapsed"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=Console(file=self._terminal) if self._terminal is not None else None,
            disable=not enabled,
            # Dagster redirects the process's output during a step; the bar writes to its own terminal handle.
            redirect_stdout=False,
            redirect_stderr=False,
            # Many products finish at once at the end of a batch; the ETA settles over a longer window.
            speed_estimate_period=600,
        )
        self._task = self._progress.add_task("products", total=total, counts="")

    def __enter__(self) -> ProductProgress:
        self._progress.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._progress.stop()
        if self._terminal is not None:
            self._terminal.close()

    def __call__(self, report: ProductReport) -> None:
        with self._lock:
            self.counts[report.status.value] += 1
            counts = ", ".join(f"{status} {n}" for status, n in sorted(self.counts.items()))
        self._progress.update(self._task, advance=1, counts=counts)

    def say(self, text: str) -> None:
        if self.enabled:
            self._progress.console.print(text, markup=False, highlight=False)
        else:
            self._out(text)
