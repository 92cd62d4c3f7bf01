"""Issue 16.3 — the throughput figures in one table, with their goals: end-to-end products/min on the real Dagster
path, the compute floor, their ratio (goal ≥ 0.8 of the better floor layout), the overhead share, the peak RSS of
the run process (goal < 900 MB), the machine, the date and how busy the machine was.

Every figure ``make bench`` prints about these runs is in it, including each repeat's sample (the medians alone
would hide a noisy repeat). Built from the end-to-end runs; the overhead and memory benchmarks read the same runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from benchmarks.end_to_end import FLOOR_GOAL, FLOOR_LAYOUTS, IMAGE_STEP, EndToEndResult
from benchmarks.harness import machine_description, summarize
from benchmarks.memory import MEMORY_GOAL_MB
from benchmarks.orchestration_overhead import OVERHEAD_GOAL_SHARE, breakdown

CHECK_STEP = f"{IMAGE_STEP}_stored_images_are_valid"
_MIB_TO_MB = 1.048576


@dataclass(frozen=True)
class MachineLoad:
    """``uptime``'s load averages (1, 5, 15 min) when the benchmark started and ended."""

    start: tuple[float, float, float]
    end: tuple[float, float, float]

    def text(self) -> str:
        def fmt(values: tuple[float, float, float]) -> str:
            return ", ".join(f"{v:.2f}" for v in values)

        return f"load average {fmt(self.start)} at the start, {fmt(self.end)} at the end"


def _verdict(met: bool, text: str, short_by: str) -> str:
    return f"met ({text})" if met else f"MISSED by {short_by} ({text})"


def summary_rows(result: EndToEndResult, load: MachineLoad, *, per_event_write_s: float) -> list[dict[str, str]]:
    """``per_event_write_s``: the event-write cost the overhead benchmark measured, so both tables give one share."""
    real = result.real
    if not real:
        raise ValueError("no end-to-end runs to summarise")
    rate = summarize([r.products_per_minute for r in real])
    breakdowns = [breakdown(r.process, r.timings, per_event_write_s) for r in real]
    share = summarize([100 * b.share for b in breakdowns])
    check = summarize([b.step_s_by_key.get(CHECK_STEP, 0.0) for b in breakdowns])
    rss = summarize([r.process.max_rss_mib * _MIB_TO_MB for r in real])
    rows = [
        {"figure": "machine", "value": machine_description(), "goal": ""},
        {"figure": "machine load while measuring (`uptime`)", "value": load.text(), "goal": ""},
        {
            "figure": f"real Dagster path (`ml-images fetch`), products/min, median of {len(real)}",
            "value": rate.fmt(1),
            "goal": "",
        },
    ]
    layout = result.floor_layout()
    if layout is not None:
        floor = result.floor_rate()
        ratio = rate.median / floor
        for key, floors in sorted(result.floors_by_layout().items(), reverse=True):
            rows.append(
                {
                    "figure": f"compute floor, {FLOOR_LAYOUTS[key]}, products/min, median of {len(floors)}",
                    "value": summarize([f.products_per_minute for f in floors]).fmt(1),
                    "goal": "the yardstick (the better layout)" if key == layout else "",
                }
            )
        rows.append(
            {
                "figure": "ratio real / better compute floor",
                "value": f"{ratio:.2f}",
                "goal": _verdict(ratio >= FLOOR_GOAL, f"≥ {FLOOR_GOAL:g}", f"{FLOOR_GOAL - ratio:.2f}"),
            }
        )
    rows += [
        {
            "figure": "orchestration overhead share of the end-to-end time (launch, run set-up/teardown, gaps, exit)",
            "value": f"{share.fmt(1)} %",
            "goal": _verdict(
                share.median < 100 * OVERHEAD_GOAL_SHARE,
                f"< {100 * OVERHEAD_GOAL_SHARE:.0f} %",
                f"{share.median - 100 * OVERHEAD_GOAL_SHARE:.1f} points",
            ),
        },
        {
            "figure": "step `stored_images_are_valid`, all runs of a command",
            "value": f"{check.fmt(2)} s",
            "goal": "",
        },
        {
            "figure": "peak RSS of the run process (wait4 ru_maxrss)",
            "value": f"{rss.fmt(0)} MB",
            "goal": _verdict(
                rss.median < MEMORY_GOAL_MB, f"< {MEMORY_GOAL_MB:.0f} MB", f"{rss.median - MEMORY_GOAL_MB:.0f} MB"
            ),
        },
        {
            "figure": "each repeat: products/min, wall s, peak RSS MB, other processes' CPU (cores)",
            "value": "; ".join(
                f"{r.products_per_minute:.1f}/min, {r.process.wall_s:.1f} s, "
                f"{r.process.max_rss_mib * _MIB_TO_MB:.0f} MB, {r.foreign_cores:.2f}"
                for r in real
            ),
            "goal": "",
        },
    ]
    for key, floors in sorted(result.floors_by_layout().items(), reverse=True):
        rows.append(
            {
                "figure": f"each repeat: compute floor, {FLOOR_LAYOUTS[key].split(' (')[0]}",
                "value": "; ".join(f"{f.products_per_minute:.1f}/min ({f.foreign_cores:.2f})" for f in floors),
                "goal": "",
            }
        )
    if result.sequential:
        rows.append(
            {
                "figure": "each repeat: sequential original flow",
                "value": "; ".join(
                    f"{seq.products_per_minute:.1f}/min ({seq.foreign_cores:.2f})" for seq in result.sequential
                ),
                "goal": "",
            }
        )
    return rows


def busy_note(result: EndToEndResult, load: MachineLoad) -> str:
    """A sentence saying whether the figures are the machine's or a shared machine's."""
    foreign = summarize([r.foreign_cores for r in result.real]).median
    if foreign <= 0.25 and max(load.start[0], load.end[0]) < 1.0:
        return "The machine was quiet while measuring: these are its figures."
    return (
        f"The machine was shared while measuring (other processes used {foreign:.2f} cores in the median real-path "
        f"repeat; {load.text()} on 2 cores): the throughput figures are lower than this machine gives alone, and "
        "the ratio is taken between samples that ran under similar load."
    )
