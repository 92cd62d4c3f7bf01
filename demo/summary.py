"""The demo's closing report: what this run did, what went to ERROR and why, what was not eligible, where to look."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from demo.status import ProductStatus, StoredImage

RULE = "─" * 100


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def refusal_counts(status: ProductStatus) -> str:
    counts = Counter(r.reason for r in status.refusals)
    return ", ".join(f"{reason} ×{n}" if n > 1 else reason for reason, n in sorted(counts.items()))


def image_sources(status: ProductStatus) -> str:
    """``#0 distributor, #1 search brave #0``: where each stored picture came from."""
    return ", ".join(f"#{i.order} {i.source_label or 'unknown'}" for i in status.stored)


def main_picture_note(main: StoredImage | None) -> str:
    """`` (main picture: …)``: how its background was separated (the studio flood fill needs no model)."""
    if main is None:
        return ""
    if main.background_method == "studio":
        return " (main picture: studio shot, background separated without the model)"
    if main.background_method:
        return f" (main picture: background removed by {main.background_method})"
    return " (main picture: background removed)" if main.background_removed else ""


def processed_in_run(status: ProductStatus, run_started: datetime) -> bool:
    return status.attempt_started_at is not None and status.attempt_started_at >= run_started


def images_in_run(status: ProductStatus, run_started: datetime) -> int:
    return sum(1 for s in status.stored if not s.pre_existing and s.created_at and s.created_at >= run_started)


def format_summary(
    statuses: Sequence[ProductStatus],
    *,
    run_started: datetime,
    images_dir: Path | None,
    contact_sheet: Path | None,
    dagster_home: Path,
    fetch_exit_code: int,
) -> str:
    lines = ["", RULE, "ml_images demo — summary", RULE]
    eligible = [s for s in statuses if s.eligible]
    lines.append(f"Sample catalog: {len(statuses)} products, {len(eligible)} eligible for Mercado Libre.")
    this_run = [s for s in statuses if processed_in_run(s, run_started)]
    stored_now = sum(images_in_run(s, run_started) for s in statuses)
    if this_run:
        outcomes = Counter(s.attempt_outcome or "?" for s in this_run)
        detail = ", ".join(f"{n} {outcome}" for outcome, n in sorted(outcomes.items()))
        lines.append(
            f"This run processed {_plural(len(this_run), 'product')} ({detail}) "
            f"and stored {_plural(stored_now, 'image')}."
        )
        for s in this_run:
            if s.attempt_outcome == "stored":
                main = next((i for i in s.stored if i.order == 0), None)
                bg = main_picture_note(main)
                refused = refusal_counts(s)
                lines.append(
                    f"  {s.product.code:<24} {_plural(len(s.stored), 'image')} stored{bg}"
                    + (f"; refused: {refused}" if refused else "")
                )
                lines.append(f"  {'':<24} sources: {image_sources(s)}")
            else:
                reason = s.attempt_reason or s.attempt_reason_code or ""
                lines.append(f"  {s.product.code:<24} {s.attempt_outcome}: {reason}")
    else:
        total = sum(len(s.stored) for s in statuses)
        with_images = sum(1 for s in statuses if s.stored)
        lines.append("Nothing was pending: this run processed 0 products. Every eligible product already has")
        lines.append("images, or its last search found none and it is waiting out the cooldown.")
        lines.append(f"In the catalog: {_plural(total, 'image')} on {_plural(with_images, 'product')}.")
    errors = [s for s in statuses if s.listing_status == "ERROR"]
    if errors:
        lines.append("Listings set to ERROR:")
        for s in errors:
            refused = refusal_counts(s)
            lines.append(
                f"  {s.product.code:<24} {s.sync_error or ''}" + (f" (refusals: {refused})" if refused else "")
            )
    had = [s for s in statuses if s.eligible and s.stored and all(i.pre_existing for i in s.stored)]
    if had:
        lines.append("Already had images, left untouched:")
        lines.extend(f"  {s.product.code:<24} {_plural(len(s.stored), 'image')}" for s in had)
    ineligible = [s for s in statuses if not s.eligible]
    if ineligible:
        lines.append("Not eligible (never searched):")
        lines.extend(f"  {s.product.code:<24} {s.ineligible_reason}" for s in ineligible)
    lines.append("Where to look:")
    if images_dir is not None:
        lines.append(f"  stored images   {images_dir}")
    if contact_sheet is not None:
        lines.append(f"  contact sheet   {contact_sheet}  (and {contact_sheet.with_suffix('.png').name})")
    lines.append(f"  Dagster UI      make dev  → http://127.0.0.1:3000  (runs recorded in DAGSTER_HOME={dagster_home})")
    if fetch_exit_code != 0:
        lines.append(f"ml-images fetch exited with {fetch_exit_code}: a run failed (see its output above).")
    lines.append(RULE)
    return "\n".join(lines)
