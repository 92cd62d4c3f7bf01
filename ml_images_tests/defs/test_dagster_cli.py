"""The Dagster CLI on the code location: validate, the shipped dry-run config, ranges by tags."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus

from ml_images.catalog.models import Base
from ml_images.orchestration.partitions import PRODUCTS_PARTITIONS_NAME
from ml_images_tests.pipeline.support import Catalog, ImageWeb, files_under, web_environment

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
DAGSTER = str(Path(sys.executable).with_name("dagster"))


@pytest.fixture
def home() -> Path:
    return Path(os.environ["ML_IMAGES_HOME"])


@pytest.fixture
def dagster_home(tmp_path: Path) -> Path:
    path = tmp_path / "dagster_home"
    path.mkdir()
    return path


@pytest.fixture
def default_catalog(home: Path) -> Iterator[Catalog]:
    db = Catalog(f"sqlite:///{home / 'catalog.db'}")
    try:
        yield db
    finally:
        db.close()


def dagster(web: ImageWeb, dagster_home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **web_environment(web), "DAGSTER_HOME": str(dagster_home)}
    result = subprocess.run(
        [DAGSTER, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=240, check=False
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def _dump(catalog: Catalog) -> dict[str, list[tuple[Any, ...]]]:
    with catalog.engine.connect() as conn:
        return {
            table.name: [tuple(row) for row in conn.execute(sa.select(table).order_by(*table.primary_key.columns))]
            for table in Base.metadata.sorted_tables
        }


def test_definitions_validate(web: ImageWeb, dagster_home: Path):
    result = dagster(web, dagster_home, "definitions", "validate", "-m", "ml_images.definitions")
    assert "Validation successful for code location ml_images.definitions" in result.stdout + result.stderr


def test_job_execute_with_the_dry_run_config_writes_nothing(
    home: Path, default_catalog: Catalog, web: ImageWeb, dagster_home: Path
):
    default_catalog.add_product("ZX9000")
    web.add("ZX9000", 1)
    before = _dump(default_catalog)

    dagster(
        web, dagster_home, "job", "execute", "-m", "ml_images.definitions", "-j", "fetch_ml_images",
        "-c", "examples/dry_run.yaml",
    )  # fmt: skip

    assert _dump(default_catalog) == before
    assert web.search_calls == 0
    assert files_under(home / "images") == []
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        assert instance.get_dynamic_partitions(PRODUCTS_PARTITIONS_NAME) == []
        [run] = instance.get_runs()
        assert (run.job_name, run.status) == ("fetch_ml_images", DagsterRunStatus.SUCCESS)
        assert run.tags["ml_images/dry_run"] == "true"
        materialized = [
            e.asset_materialization.asset_key.to_user_string()
            for e in instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION)
            if e.asset_materialization is not None
        ]
        assert materialized == ["eligible_products"]  # the selection itself is only observed
        [entry] = instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_OBSERVATION)
        assert entry.asset_observation is not None
        assert entry.asset_observation.metadata["dry_run"].value is True
        assert entry.asset_observation.metadata["would_register"].value == 1


def test_selection_then_a_range_then_the_whole_range_by_tags(
    home: Path, default_catalog: Catalog, web: ImageWeb, dagster_home: Path
):
    ids = [default_catalog.add_product(f"ZX91{i:02d}") for i in range(3)]
    for i in range(3):
        web.add(f"ZX91{i:02d}", 1)
    keys = [str(i) for i in ids]

    dagster(
        web, dagster_home, "job", "execute", "-m", "ml_images.definitions", "-j", "fetch_ml_images",
        "-c", "examples/limit.yaml",
    )  # fmt: skip
    tags = {"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[1]}
    dagster(
        web, dagster_home, "job", "execute", "-m", "ml_images.definitions", "-j", "product_images_job",
        "--tags", json.dumps(tags),
    )  # fmt: skip

    assert [len(default_catalog.images(pid)) for pid in ids] == [1, 1, 0]
    rows, calls = default_catalog.image_count(), web.search_calls

    # The whole range again: the products already done are skipped, only the third is searched and stored.
    whole = {"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[2]}
    dagster(
        web, dagster_home, "job", "execute", "-m", "ml_images.definitions", "-j", "product_images_job",
        "--tags", json.dumps(whole),
    )  # fmt: skip

    assert [len(default_catalog.images(pid)) for pid in ids] == [1, 1, 1]  # only the third was still pending
    assert default_catalog.image_count() == rows + 1
    assert web.search_calls == calls + 1
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        runs = instance.get_runs()
        assert len(runs) == 3
        assert all(r.status == DagsterRunStatus.SUCCESS for r in runs)
