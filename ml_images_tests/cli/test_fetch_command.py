"""``ml-images fetch`` as a subprocess with a temporary DAGSTER_HOME: real runs recorded in a real instance."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from dagster import DagsterRunStatus

from ml_images.catalog.models import Base, ListingStatus
from ml_images.orchestration.partitions import PRODUCTS_PARTITIONS_NAME
from ml_images_tests.cli.fetch_support import fetch, fetch_on_terminal, instance_at
from ml_images_tests.pipeline.network_faults import closed_port, resetting_server
from ml_images_tests.pipeline.support import Catalog, ImageWeb, files_under

pytestmark = pytest.mark.slow


def _dump(catalog: Catalog) -> dict[str, list[tuple[Any, ...]]]:
    with catalog.engine.connect() as conn:
        return {
            table.name: [tuple(row) for row in conn.execute(sa.select(table).order_by(*table.primary_key.columns))]
            for table in Base.metadata.sorted_tables
        }


def test_fetch_limit_then_rerun_then_id(home: Path, catalog: Catalog, web: ImageWeb):
    ids = [catalog.add_product(f"ZX70{i:02d}") for i in range(3)]
    for i in range(3):
        web.add(f"ZX70{i:02d}", 2)

    first = fetch(web, "--limit", "2")

    assert first.returncode == 0, first.stdout + first.stderr
    dagster_home = home / "dagster_home"
    assert f"DAGSTER_HOME is not set; using {dagster_home}" in first.stderr
    assert "products done 2/2" in first.stdout
    assert "stored: 2 (4 images)" in first.stdout
    assert [len(catalog.images(pid)) for pid in ids] == [2, 2, 0]
    with instance_at(dagster_home) as instance:
        runs = instance.get_runs()
        assert {r.job_name for r in runs} == {"fetch_ml_images", "product_images_job", "image_coverage_job"}
        assert all(r.status == DagsterRunStatus.SUCCESS for r in runs)
        assert instance.get_dynamic_partitions(PRODUCTS_PARTITIONS_NAME) == [str(ids[0]), str(ids[1])]

    rest = fetch(web)  # the third product only
    assert rest.returncode == 0, rest.stdout + rest.stderr
    assert "products done 1/1" in rest.stdout
    assert [len(catalog.images(pid)) for pid in ids] == [2, 2, 2]

    rows, files, calls = catalog.image_count(), files_under(home / "images"), web.search_calls
    again = fetch(web)  # nothing pending: no rows, no files, no search
    assert again.returncode == 0, again.stdout + again.stderr
    assert "nothing to do" in again.stdout
    assert (catalog.image_count(), files_under(home / "images"), web.search_calls) == (rows, files, calls)

    before = {r.storage_key for r in catalog.images(ids[0])}
    web.add("ZX7000", 3, seed=4242)
    forced = fetch(web, "--id", str(ids[0]))  # not pending: processed anyway, its images replaced
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert "products done 1/1" in forced.stdout
    after = catalog.images(ids[0])
    assert [r.order for r in after] == [0, 1, 2]
    assert before.isdisjoint({r.storage_key for r in after})
    assert catalog.image_count() == rows + 1
    assert len(files_under(home / "images")) == len(files) + 1  # the two replaced objects were deleted


def test_fetch_dry_run_writes_nothing(home: Path, catalog: Catalog, web: ImageWeb, tmp_path: Path):
    ids = [catalog.add_product(f"ZX71{i:02d}") for i in range(2)]
    web.add("ZX7100", 1)
    before = _dump(catalog)
    dagster_home = tmp_path / "dagster"

    result = fetch(web, "--dry-run", DAGSTER_HOME=str(dagster_home))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "dry run: would process 2 products" in result.stdout
    assert f"{ids[0]}\t" in result.stdout
    assert "Acme ZX7100 MONITOR" in result.stdout
    assert _dump(catalog) == before
    assert web.search_calls == 0
    assert web.image_requests == []
    assert files_under(home / "images") == []
    with instance_at(dagster_home) as instance:
        assert instance.get_dynamic_partitions(PRODUCTS_PARTITIONS_NAME) == []
        [run] = instance.get_runs()  # no coverage report after a dry run
        assert (run.job_name, run.status) == ("fetch_ml_images", DagsterRunStatus.SUCCESS)
        assert run.tags["ml_images/dry_run"] == "true"


def test_no_result_gives_an_error_listing_and_503_gives_none(home: Path, catalog: Catalog, web: ImageWeb):
    nothing = catalog.add_product("ZX7200")  # the search finds nothing

    result = fetch(web)

    # The product's outcome, not a fault: exit 0, although its run's step failed to mark its partition in the UI.
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no images (listing ERROR): 1" in result.stdout
    assert f"1 products got no pictures ({nothing})" in result.stdout
    assert "1 products got no pictures: that is their outcome" in result.stdout
    assert "coverage: 0 of 1 eligible products have pictures, 0 pending, 1 in cooldown, 1 listings in ERROR" in (
        result.stdout
    )
    with instance_at(home / "dagster_home") as instance:
        [run] = [r for r in instance.get_runs() if r.job_name == "product_images_job"]
        assert run.status == DagsterRunStatus.FAILURE  # the partition shows as failed
        [coverage] = [r for r in instance.get_runs() if r.job_name == "image_coverage_job"]
        assert coverage.status == DagsterRunStatus.SUCCESS
    listing = catalog.listing(nothing)
    assert listing is not None
    assert listing.status == ListingStatus.ERROR

    unavailable = catalog.add_product("ZX7201")
    web.add("ZX7201", 1)
    web.search_status = 503
    failed = fetch(web)

    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "FAILED" in failed.stdout
    assert "search_unavailable" in failed.stdout
    assert "failed: 1" in failed.stdout
    assert catalog.listing(unavailable) is None
    assert catalog.images(unavailable) == []
    assert [a.outcome for a in catalog.attempts(unavailable)] == ["failed"]


def test_a_configuration_error_stops_before_any_run(home: Path, catalog: Catalog, web: ImageWeb):
    catalog.add_product("ZX7300")

    result = fetch(web, ML_IMAGES_REMBG_MODEL="isnet-general-use")

    assert result.returncode == 2, result.stdout + result.stderr
    assert "configuration error: rembg model 'isnet-general-use' is not installed" in result.stderr
    assert "ml-images models install --model isnet-general-use" in result.stderr
    assert web.search_calls == 0
    with instance_at(home / "dagster_home") as instance:
        assert instance.get_runs() == []


def test_an_outage_leaves_every_product_pending_and_fails_the_run(home: Path, catalog: Catalog, web: ImageWeb):
    ids = [catalog.add_product(f"ZX74{i:02d}") for i in range(2)]
    with resetting_server() as reset_port:
        for i in range(2):
            web.add_urls(
                f"ZX74{i:02d}", [f"http://127.0.0.1:{closed_port()}/a.jpg", f"http://127.0.0.1:{reset_port}/b"]
            )

        result = fetch(web)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "candidates_unreachable" in result.stdout
    assert "left pending (candidates unreachable): 2" in result.stdout
    assert "no images (listing ERROR): 0" in result.stdout
    for pid in ids:
        assert catalog.listing(pid) is None
        assert [(a.outcome, a.reason_code) for a in catalog.attempts(pid)] == [("failed", "candidates_unreachable")]
    with instance_at(home / "dagster_home") as instance:
        [run] = [r for r in instance.get_runs() if r.job_name == "product_images_job"]
        assert run.status == DagsterRunStatus.FAILURE


def test_a_terminal_gets_a_per_product_progress_bar_and_a_pipe_gets_lines(home: Path, catalog: Catalog, web: ImageWeb):
    ids = [catalog.add_product(f"ZX75{i:02d}") for i in range(3)]
    for i in range(2):
        web.add(f"ZX75{i:02d}", 1)  # ZX7502: nothing found

    code, shown = fetch_on_terminal(web, "--batch-size", "2")

    assert code == 0, shown
    bar = [line for line in shown.replace("\r", "\n").splitlines() if "products" in line and "ETA" in line]
    assert bar, shown
    assert "3/3" in bar[-1]  # counts of the whole fetch across its two runs
    assert "no_images 1" in bar[-1]
    assert "stored 2" in bar[-1]
    assert "━" in bar[-1]
    assert "products done 3/3" in shown  # the run lines are printed above the bar
    assert [len(catalog.images(pid)) for pid in ids] == [1, 1, 0]

    catalog.add_product("ZX7503")
    web.add("ZX7503", 1)
    piped = fetch(web)
    assert piped.returncode == 0, piped.stdout + piped.stderr
    assert "ETA" not in piped.stdout
    assert "━" not in piped.stdout
    assert "products done 1/1" in piped.stdout
