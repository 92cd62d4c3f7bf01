"""How a product or a batch fails: the errors that stop a batch, the abort signal the workers share, the code
recorded for each failure, and the evidence of an outage (every product that reached the downloads found all its
candidates unreachable). The failure policy itself is in ``ml_images.pipeline.product_pipeline``."""

from __future__ import annotations

import threading

from ml_images.errors import (
    CatalogUnavailableError,
    ClaimLostError,
    ConfigurationError,
    SearchQuotaError,
    SearchUnavailableError,
    StorageUnavailableError,
    TransientError,
)
from ml_images.outcomes import ReasonCode

#: Errors that stop a whole batch: the next product would meet the same fault.
BATCH_STOPPING_ERRORS: tuple[type[Exception], ...] = (TransientError, SearchQuotaError, ConfigurationError)


class CandidatesUnreachableError(TransientError):
    """Every product of a batch that reached the downloads found all its candidates unreachable: an outage."""


class RunInterrupted(Exception):
    """The process was told to stop (SIGINT/SIGTERM); the cause of the batch stopping."""


class BatchAborted(Exception):
    """Raised at a stage boundary of a product once another product has stopped the batch."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(f"batch stopped after {type(cause).__name__}: {cause}")
        self.cause = cause


class AbortSignal:
    """The first batch-stopping error, shared by the worker threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._error: BaseException | None = None

    def trip(self, error: BaseException) -> None:
        with self._lock:
            if self._error is None:
                self._error = error

    @property
    def error(self) -> BaseException | None:
        with self._lock:
            return self._error

    def checkpoint(self) -> None:
        error = self.error
        if error is not None:
            raise BatchAborted(error)


def failure_reason_code(error: BaseException) -> ReasonCode:
    """A stable code for an error that made a product fail (recorded on the attempt, shown in metadata)."""
    if isinstance(error, RunInterrupted) or not isinstance(error, Exception):
        return ReasonCode.INTERRUPTED  # KeyboardInterrupt, Dagster's interruption error, SystemExit
    if isinstance(error, BatchAborted):
        return ReasonCode.INTERRUPTED if isinstance(error.cause, RunInterrupted) else ReasonCode.BATCH_ABORTED
    if isinstance(error, CandidatesUnreachableError):
        return ReasonCode.CANDIDATES_UNREACHABLE
    if isinstance(error, SearchQuotaError):
        return ReasonCode.SEARCH_QUOTA
    if isinstance(error, SearchUnavailableError):
        return ReasonCode.SEARCH_UNAVAILABLE
    if isinstance(error, StorageUnavailableError):
        return ReasonCode.STORAGE_UNAVAILABLE
    if isinstance(error, ClaimLostError):
        return ReasonCode.CLAIM_LOST
    if isinstance(error, CatalogUnavailableError):
        return ReasonCode.CATALOG_UNAVAILABLE
    if isinstance(error, ConfigurationError):
        return ReasonCode.CONFIGURATION
    if isinstance(error, TransientError):
        return ReasonCode.TRANSIENT
    return ReasonCode.INTERNAL_ERROR


class Reachability:
    """Whether a batch saw anything reachable: products that reached the downloads, and those that found every
    candidate unreachable (left pending)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reached = 0
        self.deferred = 0

    def record(self, *, deferred: bool) -> None:
        with self._lock:
            self.reached += 1
            self.deferred += int(deferred)

    def outage(self) -> CandidatesUnreachableError | None:
        with self._lock:
            if self.reached == 0 or self.deferred < self.reached:
                return None
            return CandidatesUnreachableError(
                f"every product of the batch that reached the downloads ({self.reached}) found all its candidate "
                "images unreachable (DNS, connect, TLS, timeouts): a network outage? They stay pending"
            )
