"""``make bench`` keeps what it prints: at tiny sizes, ``python -m benchmarks`` runs the end-to-end and overhead
benchmarks for real (``ml-images fetch`` against a fixture search server, moto S3, SQLite) and every table row,
note and per-repeat figure it prints is in the results file, with the throughput summary's goals beside them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from benchmarks.__main__ import main

pytestmark = pytest.mark.slow


@pytest.mark.timeout(900)  # five real benchmark samples, on a machine other work may share
def test_every_printed_figure_is_written_with_its_goal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / "RESULTS.md"
    code = main(
        [
            *("--only", "end_to_end", "--only", "overhead"),
            *("--products", "2", "--candidates", "2", "--repeats", "1", "--sequential-products", "1"),
            *("--search-latency", "0", "--image-latency", "0", "--sqlite"),
            # a shared CI machine must not make the test wait for quiet
            *("--max-foreign-load", "100", "--results-file", str(results)),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    written = results.read_text(encoding="utf-8")

    titles = re.findall(r"^## (.+)$", printed, flags=re.MULTILINE)
    assert len(titles) == 3
    assert titles[-1].startswith("Throughput on one machine")
    for title in titles:
        assert f"## {title}\n" in written
    table_rows = [line for line in printed.splitlines() if line.startswith("| ")]
    assert len(table_rows) > 20
    for line in table_rows:
        assert line in written
    # What run() printed per repeat (not in a table) is in the summary's per-repeat rows.
    [real] = re.findall(r"real path ([\d.]+) products/min", printed)
    floors = re.findall(r"compute floor \(.+?\) ([\d.]+) products/min", printed)
    [sequential] = re.findall(r"sequential flow ([\d.]+) products/min", printed)
    assert len(floors) == 2
    for figure in (real, *floors, sequential):
        assert f"{figure}/min" in written

    summary = written[written.index("## Throughput on one machine") :]
    assert re.search(r"\| ratio real / better compute floor +\| [\d.]+ +\| (met|MISSED by [\d.]+) \(≥ 0\.8\)", summary)
    assert re.search(r"\| peak RSS of the run process .+ +\| \d+ MB +\| (met|MISSED by \d+ MB) \(< 900 MB\)", summary)
    assert re.search(r"overhead share .+\| [\d.]+ % +\| (met|MISSED by [\d.]+ points) \(< 10 %\)", summary)
    assert re.search(r"load average [\d.]+, [\d.]+, [\d.]+ at the start, [\d.]+, [\d.]+, [\d.]+ at the end", summary)
    assert re.search(r"_\d{4}-\d\d-\d\d \d\d:\d\d UTC · Linux", summary)  # the date and the machine
