"""Per-product progress of the image step, for whoever runs it in this process (``ml-images fetch``).

``ml-images fetch`` executes the jobs in its own process (``execute_in_process``), so the step can tell it about
each finished product directly: the CLI registers a listener for the duration of its runs and draws a progress
bar from it. Runs launched elsewhere (daemon, UI) have no listener; nothing is sent anywhere.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ml_images.pipeline.reports import ProductReport

ProductListener = Callable[[ProductReport], None]

_lock = threading.Lock()
_listeners: list[ProductListener] = []


@contextmanager
def listening(listener: ProductListener) -> Iterator[None]:
    with _lock:
        _listeners.append(listener)
    try:
        yield
    finally:
        with _lock:
            _listeners.remove(listener)


def product_done(report: ProductReport) -> None:
    """Called by the step for each finished product (from its worker threads)."""
    with _lock:
        listeners = list(_listeners)
    for listener in listeners:
        listener(report)
