"""``make bench`` = ``python -m benchmarks``: every benchmark of issue 7, in order, each printing its table and
appending it (dated, with the machine) to ``benchmarks/RESULTS.md``.

1. end to end (real Dagster path vs the compute floor and the sequential original flow);
2. orchestration overhead (from the Dagster event log of the same end-to-end runs);
3. selection at scale (1,000,000 products in PostgreSQL: pending query, EXPLAIN, one sensor tick);
4. memory (peak RSS of the run process of the same end-to-end runs);
5. memory near the pixel cap (issue 10: peak RSS of the run process when every candidate is a lossless WebP,
   an RGBA PNG or a JPEG just under its format's decode cap; ``decode_memory.py``).
6. picture quality (issue 14: cut-outs against ground truth, the cover gate's precision and recall, its cost).

After 1, 2 and 4: the throughput summary (issue 16, ``throughput_summary.py``): products/min, the compute floor,
their ratio, the overhead share and the peak RSS with their goals, every repeat's sample, the machine, the date and
its load. Every table and note printed is appended as printed (``--results-file`` elsewhere, ``--no-append`` not).

Quick check: ``python -m benchmarks --products 20 --repeats 1 --selection-products 20000 --no-append``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.harness import load_average, machine_description, postgres_admin_url, wait_until_idle
from benchmarks.results import RESULTS_PATH

BENCHMARKS = ("end_to_end", "overhead", "selection", "memory", "decode_memory", "picture_quality")


def format_table(rows: Sequence[dict[str, str]]) -> str:
    if not rows:
        return "(no rows)"
    columns = list(rows[0])
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    lines = [
        "| " + " | ".join(c.ljust(widths[c]) for c in columns) + " |",
        "|" + "|".join("-" * (widths[c] + 2) for c in columns) + "|",
    ]
    lines += ["| " + " | ".join(str(r.get(c, "")).ljust(widths[c]) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def emit(title: str, rows: list[dict[str, str]], *, append: bool | Path | None, notes: str | None = None) -> None:
    """Prints a table and appends the same table and notes to ``append`` (True: RESULTS.md; False or None: not
    kept), so that what is printed is what is kept."""
    print(f"\n## {title}\n\n{format_table(rows)}\n", flush=True)
    if notes:
        print(notes + "\n", flush=True)
    if append is not None and append is not False:
        from benchmarks.results import append_results

        append_results(title, rows, notes=notes, path=RESULTS_PATH if append is True else append)


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--only",
        action="append",
        choices=BENCHMARKS,
        help="run only this benchmark (repeatable); overhead and memory reuse the end-to-end runs",
    )
    parser.add_argument("--products", type=int, default=100, help="end-to-end catalog size (default 100)")
    parser.add_argument("--candidates", type=int, default=5, help="candidates per product (default 5)")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of each end-to-end path; medians reported")
    parser.add_argument("--search-latency", type=float, default=0.3, help="fixture latency per search call, s")
    parser.add_argument("--image-latency", type=float, default=0.15, help="fixture latency per image, s")
    parser.add_argument("--batch-size", type=int, default=25, help="products per Dagster run (the default: 25)")
    parser.add_argument(
        "--sequential-products",
        type=int,
        default=30,
        help="products the sequential original flow processes per repeat (its rate is linear; default 30)",
    )
    parser.add_argument("--no-floor", action="store_true", help="skip the compute floor")
    parser.add_argument("--no-sequential", action="store_true", help="skip the sequential original flow")
    parser.add_argument("--sqlite", action="store_true", help="catalog on SQLite even when PostgreSQL answers")
    parser.add_argument(
        "--selection-products", type=int, default=1_000_000, help="catalog size of the selection benchmark"
    )
    parser.add_argument("--sensor-ticks", type=int, default=4, help="sensor ticks timed (first is cold)")
    parser.add_argument(
        "--decode-products", type=int, default=12, help="products of the memory-near-the-pixel-cap benchmark (12)"
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="first wait up to this long for other processes to go quiet (shared machines)",
    )
    parser.add_argument(
        "--max-foreign-load",
        type=float,
        default=0.25,
        metavar="CORES",
        help="an end-to-end sample taken while other processes used more CPU is measured again (default 0.25)",
    )
    parser.add_argument("--no-append", action="store_true", help="print only; do not append to RESULTS.md")
    parser.add_argument(
        "--results-file",
        type=Path,
        default=RESULTS_PATH,
        metavar="PATH",
        help="append to this file instead of benchmarks/RESULTS.md (picture quality always writes RESULTS.md)",
    )
    args = parser.parse_args(argv)
    if (
        min(
            args.products,
            args.candidates,
            args.repeats,
            args.batch_size,
            args.sequential_products,
            args.decode_products,
        )
        < 1
    ):
        parser.error("sizes and repeats must be >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    selected = set(args.only or BENCHMARKS)
    append = None if args.no_append else args.results_file
    if args.wait_quiet > 0:
        print(f"waiting up to {args.wait_quiet:.0f} s for a quiet machine…", flush=True)
        wait_until_idle(timeout_s=args.wait_quiet)
    print(f"machine: {machine_description()}; load average {load_average():.2f}", flush=True)
    started = time.perf_counter()
    load_at_start = os.getloadavg()
    per_event = 0.0

    e2e = None
    if selected & {"end_to_end", "overhead", "memory"}:
        from benchmarks import end_to_end

        config = end_to_end.EndToEndConfig(
            products=args.products,
            candidates=args.candidates,
            repeats=args.repeats,
            search_latency_s=args.search_latency,
            image_latency_s=args.image_latency,
            batch_size=args.batch_size,
            sequential_products=min(args.sequential_products, args.products),
            prefer_postgres=not args.sqlite,
            run_floor="end_to_end" in selected and not args.no_floor,
            run_sequential="end_to_end" in selected and not args.no_sequential,
            max_foreign_cores=args.max_foreign_load,
        )
        print(f"\n[1] end to end: {config}", flush=True)
        e2e = end_to_end.run(config)
        if "end_to_end" in selected:
            emit(e2e.title(), e2e.rows(), append=append, notes=e2e.notes())

    if "overhead" in selected and e2e is not None:
        from benchmarks.orchestration_overhead import OverheadReport, breakdown, measure_event_write_cost

        print("\n[2] orchestration overhead (event log of the end-to-end runs)", flush=True)
        per_event = measure_event_write_cost()
        report = OverheadReport(
            batch_size=args.batch_size,
            per_event_write_s=per_event,
            breakdowns=[breakdown(run.process, run.timings, per_event) for run in e2e.real],
        )
        emit(
            f"Orchestration overhead — {args.products} products, batch size {args.batch_size}, "
            f"{len(e2e.real)} repeat(s), median (min–max)",
            report.rows(),
            append=append,
            notes=report.notes(),
        )

    if "selection" in selected:
        from benchmarks.sensor_tick import run_selection_benchmark

        print(f"\n[3] selection at scale: {args.selection_products:,} products", flush=True)
        if postgres_admin_url() is None:
            print("PostgreSQL is not reachable (set ML_IMAGES_BENCH_POSTGRES_URL); selection benchmark not run")
        else:
            for title, rows, notes in run_selection_benchmark(args.selection_products, sensor_ticks=args.sensor_ticks):
                emit(title, rows, append=append, notes=notes)

    if "memory" in selected and e2e is not None:
        from benchmarks.memory import measure_parts, report_from_runs

        print("\n[4] memory (the end-to-end runs' process, then its parts in fresh processes)", flush=True)
        memory = report_from_runs(
            [run.process for run in e2e.real],
            model="u2netp",
            batch_size=args.batch_size,
            image_size=e2e.config.image_size,
            parts=measure_parts(products=min(10, args.products), candidates=args.candidates),
        )
        emit(
            f"Memory — peak RSS of the run process, {len(e2e.real)} repeat(s), median (min–max)",
            memory.rows(),
            append=append,
            notes=memory.notes(),
        )

    if e2e is not None and e2e.real:
        from benchmarks.throughput_summary import MachineLoad, busy_note, summary_rows

        load = MachineLoad(start=load_at_start, end=os.getloadavg())
        emit(
            f"Throughput on one machine — {args.products} products × {args.candidates} candidates, batch "
            f"{args.batch_size}, {len(e2e.real)} repeat(s), medians (min–max)",
            summary_rows(e2e, load, per_event_write_s=per_event),
            append=append,
            notes=busy_note(e2e, load),
        )

    if "decode_memory" in selected:
        from benchmarks import decode_memory

        print(f"\n[5] memory near the pixel cap: {args.decode_products} products of large candidates", flush=True)
        large = decode_memory.run(
            products=args.decode_products,
            repeats=args.repeats,
            batch_size=args.batch_size,
            prefer_postgres=not args.sqlite,
        )
        emit(large.title(), large.rows(), append=append, notes=large.notes())

    if "picture_quality" in selected:
        from benchmarks.picture_quality import run as run_picture_quality

        print("\n[6] picture quality: labelled covers, today's cut-outs vs the new ones, the cover gate", flush=True)
        run_picture_quality(append=append is not None)

    print(f"\nbenchmarks finished in {time.perf_counter() - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
