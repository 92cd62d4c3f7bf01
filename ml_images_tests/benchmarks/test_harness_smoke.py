"""Smoke tests of the benchmark harness at tiny sizes: every piece produces real figures (not just "it ran").

The end-to-end test runs the real path (``ml-images fetch`` in a subprocess against a fixture search server, a
moto S3 server process and a SQLite catalog), the compute floor and the sequential flow on 2 products × 2
candidates without latency, then checks the numbers each table is built from.
"""

from __future__ import annotations

import hashlib
import socket
import sys
import time
from pathlib import Path

import pytest

from benchmarks.__main__ import format_table
from benchmarks.end_to_end import EndToEndConfig, run
from benchmarks.harness import (
    MotoS3Server,
    catalog_database,
    make_products,
    product_photos,
    run_monitored,
    seed_catalog,
    stored_image_counts,
    summarize,
    wait_until_idle,
)
from benchmarks.memory import report_from_runs
from benchmarks.orchestration_overhead import OverheadReport, breakdown, measure_event_write_cost
from benchmarks.sensor_tick import time_sensor_ticks


def test_summary_and_table_format() -> None:
    summary = summarize([3.0, 1.0, 2.0])
    assert summary.median == 2.0
    assert (summary.low, summary.high) == (1.0, 3.0)
    assert summary.fmt(1) == "2.0 (1.0–3.0)"
    assert summarize([4.25]).fmt(2) == "4.25"
    table = format_table([{"a": "1", "bb": "long value"}, {"a": "22", "bb": "x"}]).splitlines()
    assert table[0] == "| a  | bb         |"
    assert table[2] == "| 1  | long value |"
    assert len({len(line) for line in table}) == 1


def test_product_photos_are_distinct_deterministic_and_cached(tmp_path: Path) -> None:
    photos = product_photos(2, 2, size=600, cache_root=tmp_path)
    files = [p for row in photos for p in row]
    assert len(files) == 4
    digests = {hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
    assert len(digests) == 4  # every candidate distinct, so de-duplication cannot drop one
    mtimes = [p.stat().st_mtime_ns for p in files]
    again = product_photos(2, 2, size=600, cache_root=tmp_path)
    assert [p.stat().st_mtime_ns for row in again for p in row] == mtimes  # served from the cache
    other = product_photos(2, 2, size=600, cache_root=tmp_path / "elsewhere")
    assert [p.read_bytes() for row in other for p in row] == [p.read_bytes() for p in files]  # deterministic


def test_run_monitored_measures_the_child_peak_rss() -> None:
    code = "b = bytearray(200 * 1024 * 1024)\nb[::4096] = b'x' * len(b[::4096])\nprint('ok')"
    result = run_monitored([sys.executable, "-c", code], env={"PATH": "/usr/bin:/bin"}, timeout_s=60)
    assert result.check().stdout.strip() == "ok"
    assert result.wall_s > 0
    assert result.max_rss_mib >= 200
    assert result.peaks
    assert result.peaks[0].peak_rss_mib > 0

    failing = run_monitored([sys.executable, "-c", "raise SystemExit(3)"], env={}, timeout_s=60)
    assert failing.returncode == 3
    with pytest.raises(RuntimeError, match="exited with 3"):
        failing.check()


def test_moto_server_process_serves_a_bucket_and_stops() -> None:
    import boto3

    with MotoS3Server() as s3:
        bucket = s3.create_bucket()
        env = s3.env(bucket)
        client = boto3.client(
            "s3",
            endpoint_url=s3.endpoint,
            region_name="us-east-1",
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        )
        client.put_object(Bucket=bucket, Key="a/b.jpg", Body=b"x")
        assert s3.object_count(bucket) == 1
        port = s3.port
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


def test_wait_until_idle_reads_the_foreign_load() -> None:
    started = time.monotonic()
    reading = wait_until_idle(timeout_s=0.0, window_s=0.2)
    assert reading >= 0.0
    assert time.monotonic() - started < 5  # one window, since the timeout is already over


def test_event_write_cost_is_measured() -> None:
    per_event = measure_event_write_cost(events=20, repeats=1)
    assert 0 < per_event < 1.0


def test_sensor_tick_timing_on_a_seeded_catalog(tmp_path: Path) -> None:
    photos = [[tmp_path / "unused.jpg"]] * 250
    with catalog_database(tmp_path, prefer_postgres=False) as catalog:
        seed_catalog(catalog.url, make_products(250, photos))
        result = time_sensor_ticks(catalog.url, ticks=2)
    assert result.first_tick_s > 0
    assert result.later_ticks.median > 0
    assert result.products_per_tick == 100  # 4 runs of 25: the sensor's back-pressure budget
    assert result.runs_per_tick == 4
    assert result.partitions_registered == 200


@pytest.mark.slow
def test_end_to_end_smoke_produces_every_figure() -> None:
    config = EndToEndConfig(
        products=2,
        candidates=2,
        repeats=1,
        search_latency_s=0.0,
        image_latency_s=0.0,
        sequential_products=1,
        prefer_postgres=False,
        timeout_s=300,
        max_attempts=1,  # a shared CI machine must not make the smoke test wait for quiet
    )
    result = run(config, log=False)

    [real] = result.real
    assert real.backend == "sqlite"
    assert (real.products_stored, real.images_stored, real.objects_in_bucket) == (2, 4, 4)
    assert real.products_per_minute > 0
    assert real.process.max_rss_mib > 200  # dagster + a rembg session: a real process, not a stub
    image_runs = [t for t in real.timings if t.job_name == "product_images_job"]
    assert [t.partitions for t in image_runs] == [2]
    assert image_runs[0].step_seconds > 0

    assert sorted(f.concurrent_inferences for f in result.floor) == [1, 2]
    for floor in result.floor:
        assert (floor.products, floor.images_in, floor.images_out) == (2, 4, 4)
        assert floor.products_per_minute > 0
    assert result.floor_rate() == max(f.products_per_minute for f in result.floor)
    [sequential] = result.sequential
    assert (sequential.products, sequential.products_with_images, sequential.images_stored) == (1, 1, 2)
    assert sequential.products_per_minute > 0

    rows = result.rows()
    assert [row["path"].split(" ")[0] for row in rows] == [
        "real",
        "compute",
        "compute",
        "reference",
        "sequential",
    ]
    assert float(rows[0]["products/min"]) == pytest.approx(real.products_per_minute, abs=0.05)
    assert all("real/floor" in row["ratio"] for row in rows[1:3])
    assert sum(row["goal"].startswith(("met", "MISSED")) for row in rows[1:3]) == 1  # only the yardstick is judged
    assert rows[4]["goal"].startswith(("met", "MISSED"))
    assert "sequential flow takes" in result.notes()

    overhead = breakdown(real.process, real.timings, per_event_write_s=0.002)
    # The selection, one image run, and the image_coverage report `ml-images fetch` materialises at its end.
    assert (overhead.products, overhead.image_runs, overhead.runs) == (2, 1, 3)
    assert overhead.launch_s > 0
    assert overhead.step_s > 0
    assert 0 < overhead.share < 1
    assert overhead.overhead_s + overhead.step_s <= overhead.wall_s + 0.5
    report_rows = OverheadReport(batch_size=25, per_event_write_s=0.002, breakdowns=[overhead]).rows()
    assert any("overhead share" in row["quantity"] and "%" in row["value"] for row in report_rows)

    memory_rows = report_from_runs([real.process], model="u2netp", batch_size=25, image_size=1000).rows()
    assert "MB" in memory_rows[0]["value"]
    assert "ml-images" in memory_rows[1]["value"]


def test_seeded_products_are_all_pending_and_counted(tmp_path: Path) -> None:
    photos = product_photos(3, 1, size=600, cache_root=tmp_path / "photos")
    with catalog_database(tmp_path, prefer_postgres=False) as catalog:
        ids = seed_catalog(catalog.url, make_products(3, photos))
        assert len(set(ids)) == 3
        assert stored_image_counts(catalog.url) == {}


def test_decode_memory_report_states_the_goal_and_what_was_refused(tmp_path: Path) -> None:
    from benchmarks.decode_memory import DecodeMemoryResult, LargeCandidate, _side_under
    from ml_images.processing.decode import pixel_cap

    side = _side_under(pixel_cap("WEBP", "RGB"))
    # "just under": the file the benchmark makes is accepted, one more pixel a side would not be
    assert side * side < pixel_cap("WEBP", "RGB") <= (side + 1) * (side + 1)
    path = tmp_path / "x.webp"
    path.write_bytes(b"RIFF....WEBP")
    result = DecodeMemoryResult(
        products=12,
        batch_size=25,
        candidates=[LargeCandidate("lossless WebP under the WebP cap", path, side, side)],
        peaks_mib=[950.0, 1000.0, 900.0],
        products_stored=[12, 12, 12],
        images_stored=[24, 24, 24],
        wall_s=[30.0, 31.0, 29.0],
        refusals={"too_many_pixels": 12},
    )
    rows = {row["quantity"]: row["value"] for row in result.rows()}
    peak = rows["peak RSS of the run process (`ml-images fetch`, wait4 ru_maxrss)"]
    assert peak.startswith("996 (944–1049) MB (950 (900–1000) MiB) — met")  # the median decides; MB = 10^6 bytes
    assert rows["processing refusals (last repeat, all products)"] == "too_many_pixels 12"
    missed = DecodeMemoryResult(12, 25, [], peaks_mib=[1000.0], products_stored=[12], images_stored=[1], wall_s=[1])
    assert "MISSED by 49 MB" in missed.rows()[0]["value"]
