"""How the cover was chosen, in the words the attempt row and the listing's error keep."""

from __future__ import annotations

from typing import Any

from ml_images.pipeline.reports import describe_counts
from ml_images.processing.results import ProcessingOutcome

#: Cover attempts kept in an attempt's ``cover_report`` (each carries its full checks).
MAX_REPORTED_COVER_ATTEMPTS = 10


def cover_report(processed: ProcessingOutcome, policy: str) -> dict[str, Any]:
    """How the cover was chosen, as the attempt row keeps it: the policy, the outcome, whether the stored pictures
    are flagged (lenient, no compliant cover), the model runs spent and each candidate tried with its checks."""
    return {
        "policy": policy,
        "status": processed.cover_status,
        "flagged": processed.cover_flagged,
        "model_runs": processed.model_runs,
        "failed_checks": processed.failed_checks,
        "attempts": [a.to_dict() for a in processed.cover_attempts[:MAX_REPORTED_COVER_ATTEMPTS]],
    }


def no_compliant_cover_reason(processed: ProcessingOutcome, *, stored: bool = False) -> str:
    """``no candidate passes Mercado Libre's cover rules (2 tried, 2 model runs): cover_text×2 — 1.jpg:
    cover_text: text covers 8 % ...`` — the checks that failed, with their measured values, per tried candidate."""
    attempts = processed.cover_attempts
    counts: dict[str, int] = {}
    for attempt in attempts:
        for code in attempt.failed_codes:
            counts[code] = counts.get(code, 0) + 1
    head = (
        f"no candidate passes Mercado Libre's cover rules ({len(attempts)} tried, {processed.model_runs} model runs): "
        f"{describe_counts(counts) or 'none judged'}"
    )
    if stored:
        head += "; pictures kept under the lenient policy, the cover flagged"
    parts = []
    for attempt in attempts:
        name = attempt.url.rsplit("/", 1)[-1] or attempt.url
        if attempt.refused is not None:
            parts.append(f"{name}: {attempt.refused}")
        elif attempt.checks is not None:
            parts.append(f"{name}: " + "; ".join(f"{f.code}: {f.detail}" for f in attempt.checks.failures))
    return (head + (" — " + " | ".join(parts) if parts else ""))[:1500]
