"""``ml-images fetch --parallel N``: N batch runs at once, every product stored once, failures reported per run."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import DagsterRunStatus, RunsFilter

from ml_images_tests.cli.fetch_support import fetch, instance_at
from ml_images_tests.pipeline.support import Catalog, ImageWeb

pytestmark = pytest.mark.slow


def test_two_batch_runs_overlap_and_store_every_product_once(home: Path, catalog: Catalog, web: ImageWeb):
    ids = [catalog.add_product(f"ZX80{i:02d}") for i in range(4)]
    for i in range(4):
        web.add(f"ZX80{i:02d}", 1)
    web.search_latency = 1.0  # each run spends a while on its searches: two runs at once must overlap

    result = fetch(web, "--batch-size", "2", "--parallel", "2")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 runs at once" in result.stdout
    assert "products done 4/4" in result.stdout
    assert "stored: 4 (4 images)" in result.stdout
    assert [len(catalog.images(pid)) for pid in ids] == [1, 1, 1, 1]
    for pid in ids:
        assert [a.outcome for a in catalog.attempts(pid)] == ["stored"]  # each product was processed once
    with instance_at(home / "dagster_home") as instance:
        records = instance.get_run_records(RunsFilter(job_name="product_images_job"))
        assert len(records) == 2
        assert all(r.dagster_run.status == DagsterRunStatus.SUCCESS for r in records)
        first, second = sorted(records, key=lambda r: r.start_time or 0)
        assert first.end_time is not None
        assert second.start_time is not None
        assert second.start_time < first.end_time  # the second run started before the first one ended


def test_each_failed_batch_is_reported_on_its_own(home: Path, catalog: Catalog, web: ImageWeb):
    ids = [catalog.add_product(f"ZX81{i:02d}") for i in range(2)]
    for i in range(2):
        web.add(f"ZX81{i:02d}", 1)
    web.search_status = 503  # both runs start at once and both meet the outage

    result = fetch(web, "--batch-size", "1", "--parallel", "2")

    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.count("products done") == 2, result.stdout + result.stderr[-3000:]  # one line per run
    assert result.stdout.count(" FAILED: ") == 2, result.stdout
    assert result.stdout.count("search_unavailable") >= 2  # each run's own failure line
    assert "failed: 2" in result.stdout
    assert "2 run(s) failed" in result.stdout
    for pid in ids:
        assert catalog.images(pid) == []
        assert [a.outcome for a in catalog.attempts(pid)] == ["failed"]
