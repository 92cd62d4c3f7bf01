"""The ``ml_images/stopped_by`` run tag: an asset marks its run as stopped (a stop request, or a fault every
later run would meet), and ``ml-images fetch`` reads it to stop launching runs and to exit 130 on a stop request.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from dagster import AssetExecutionContext, DagsterExecutionInterruptedError

from ml_images.orchestration.config import STOPPED_BY_TAG
from ml_images.outcomes import ReasonCode


def mark_stopped(context: AssetExecutionContext, reason_code: str) -> None:
    """Tags the run with ``reason_code`` under ``STOPPED_BY_TAG``."""
    # A plain str: Dagster serialises run tags and refuses an enum member (ReasonCode).
    context.instance.add_run_tags(context.run.run_id, {STOPPED_BY_TAG: str(reason_code)})


def stopped_by(run_tags: Mapping[str, str]) -> str | None:
    """The reason code a run was stopped by, if it was."""
    return run_tags.get(STOPPED_BY_TAG)


def was_interrupted(run_tags: Mapping[str, str]) -> bool:
    """The run was told to stop (SIGINT/SIGTERM) while an asset was computing."""
    return stopped_by(run_tags) == ReasonCode.INTERRUPTED


@contextmanager
def marking_interrupts(context: AssetExecutionContext) -> Iterator[None]:
    """Tags the run as interrupted when a stop request (SIGINT/SIGTERM) arrives in the block, and re-raises it:
    the run fails either way, and only the tag tells ``ml-images fetch`` a stop request from a fault."""
    try:
        yield
    except (KeyboardInterrupt, DagsterExecutionInterruptedError):
        mark_stopped(context, ReasonCode.INTERRUPTED)
        raise
