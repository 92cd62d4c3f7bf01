"""Appending benchmark tables to ``benchmarks/RESULTS.md`` (dated, with the machine they ran on)."""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS_PATH = Path(__file__).resolve().parent / "RESULTS.md"
_HEADER = (
    "# Benchmark results\n\n"
    "Appended by the benchmark scripts (`make bench`, `python -m benchmarks.<name>`); newest last. Each section says "
    "when and on what it ran.\n"
)


def machine_line() -> str:
    cpu = platform.processor() or platform.machine()
    return f"{platform.system()} {platform.release()}, {os.cpu_count()} CPU ({cpu}), Python {platform.python_version()}"


def format_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """A Markdown table; columns are the keys of the first row, in order."""
    if not rows:
        return "(no rows)"
    columns = list(rows[0])
    widths = {c: max(len(str(c)), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    lines = [
        "| " + " | ".join(str(c).ljust(widths[c]) for c in columns) + " |",
        "|" + "|".join("-" * (widths[c] + 2) for c in columns) + "|",
    ]
    lines += ["| " + " | ".join(str(r.get(c, "")).ljust(widths[c]) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def append_results(
    title: str,
    rows: Sequence[Mapping[str, Any]],
    *,
    notes: str | None = None,
    path: Path = RESULTS_PATH,
) -> str:
    """Appends one dated section (title, machine, table, optional notes) and returns the text appended."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = f"\n## {title}\n\n_{stamp} · {machine_line()}_\n\n{format_table(rows)}\n"
    if notes:
        section += f"\n{notes.strip()}\n"
    new_file = not path.exists() or path.stat().st_size == 0
    with path.open("a", encoding="utf-8") as handle:
        if new_file:
            handle.write(_HEADER)
        handle.write(section)
    return section
