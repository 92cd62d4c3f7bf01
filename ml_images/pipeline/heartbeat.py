"""Keeps the claims of a running batch alive: one thread refreshes their ``heartbeat_at`` every few seconds.

While the process lives its claims stay in flight, however long a product takes; once it dies (SIGKILL, OOM, a
lost machine) the heartbeats stop and the next run takes its products over when the lease ends (sooner on the
same machine, where the dead process is recognised at once: see ``ImageRecorder.claim``).
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType

from ml_images.catalog.recorder import ImageRecorder

logger = logging.getLogger(__name__)

DEFAULT_HEARTBEAT_SECONDS = 15.0


class ClaimHeartbeat:
    """``with ClaimHeartbeat(recorder, 15.0) as beat: beat.add(claim.attempt_id) … beat.discard(...)``."""

    def __init__(self, recorder: ImageRecorder, interval_seconds: float = DEFAULT_HEARTBEAT_SECONDS) -> None:
        if interval_seconds <= 0:
            raise ValueError(f"interval_seconds must be > 0, got {interval_seconds}")
        self._recorder = recorder
        self.interval_seconds = interval_seconds
        self._lock = threading.Lock()
        self._held: set[int] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, attempt_id: int) -> None:
        with self._lock:
            self._held.add(attempt_id)

    def discard(self, attempt_id: int) -> None:
        with self._lock:
            self._held.discard(attempt_id)

    def held(self) -> list[int]:
        with self._lock:
            return sorted(self._held)

    def beat(self) -> None:
        held = self.held()
        if not held:
            return
        try:
            self._recorder.heartbeat(held)
        except Exception:
            # The database may be away for a moment; the next beat tries again. Should the lease end meanwhile,
            # another run may take a product over and this run's write then fails with ClaimLostError.
            logger.warning("could not refresh the heartbeat of %d claims", len(held), exc_info=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_seconds):
            self.beat()

    def __enter__(self) -> ClaimHeartbeat:
        self._stop.clear()
        # A daemon thread: it must never keep a dying process alive, and it holds nothing that needs closing.
        self._thread = threading.Thread(target=self._run, name="ml-images-claim-heartbeat", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval_seconds + 5.0)
            self._thread = None
