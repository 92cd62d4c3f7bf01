"""The per-product progress bar of ``ml-images fetch`` (rich), shown only when the output is a terminal."""

from __future__ import annotations

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


class ProductProgress:
    """Counts finished products (called from the image step's threads) and draws them as a bar with ETA.

    Disabled, it draws nothing and ``say`` is the plain output; enabled, ``say`` prints above the bar.
    """

    def __init__(self, total: int, *, enabled: bool, out: Callable[[str], None] = print) -> None:
        self.enabled = enabled
        self._out = out
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self._progress = Progress(
            TextColumn("[bold]products"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[counts]}"),
            TextColumn("elapsed"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=Console(file=sys.stdout),
            disable=not enabled,
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
