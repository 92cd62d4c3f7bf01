"""``ml-images partitions prune``: done products' partitions go; pictures, rows and history stay."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from dagster import AssetKey, AssetMaterialization, DagsterInstance, DagsterRunStatus

from ml_images.catalog.models import ImageFetchAttempt, ProductImage, ProductMaster, utcnow
from ml_images.cli import main
from ml_images.orchestration.partitions import PRODUCTS_PARTITIONS_NAME, RANGE_END_TAG, RANGE_START_TAG
from ml_images.outcomes import ProductStatus
from ml_images_tests.pipeline.support import Catalog

ASSET = AssetKey("product_images")


@pytest.fixture(autouse=True)
def _catalog_url(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """``catalog`` (ml_images_tests/pipeline/fixtures.py) is on this database; the command reads it from here."""
    monkeypatch.setenv("ML_IMAGES_DATABASE_URL", database_url)


@pytest.fixture
def dagster_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


def _stored(catalog: Catalog, pid: int, days_ago: float, *, with_attempt: bool = True) -> None:
    when = utcnow() - timedelta(days=days_ago)
    with catalog.session_factory() as session, session.begin():
        session.add(ProductImage(product_id=pid, url=f"https://cdn/{pid}.jpg", order=0, created_at=when))
        if with_attempt:
            session.add(
                ImageFetchAttempt(product_id=pid, started_at=when, finished_at=when, outcome=ProductStatus.STORED.value)
            )


def _registered(home: Path) -> list[str]:
    with DagsterInstance.from_config(str(home)) as instance:
        return list(instance.get_dynamic_partitions(PRODUCTS_PARTITIONS_NAME))


def test_prune_deletes_only_done_products_and_keeps_pictures_rows_and_history(
    catalog: Catalog, dagster_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = catalog.add_product("OLD1")
    recent = catalog.add_product("NEW1")
    pending = catalog.add_product("PEND1")
    elsewhere = catalog.add_product("ELSE1")  # pictures that came from elsewhere: their row's age counts
    gone = catalog.add_product("GONE1")
    in_range = catalog.add_product("RUN1")
    _stored(catalog, old, 40)
    _stored(catalog, recent, 1)
    _stored(catalog, elsewhere, 60, with_attempt=False)
    _stored(catalog, in_range, 50)
    keys = [str(p) for p in (old, recent, pending, elsewhere, gone, in_range)]
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        instance.add_dynamic_partitions(PRODUCTS_PARTITIONS_NAME, [*keys, "not-a-product"])
        instance.report_runless_asset_event(AssetMaterialization(ASSET, partition=str(old)))
        # A run not started yet whose range ends at in_range: its end must stay resolvable.
        from ml_images.definitions import defs

        job = defs.resolve_job_def("product_images_job")
        instance.create_run_for_job(
            job,
            tags={RANGE_START_TAG: str(pending), RANGE_END_TAG: str(in_range)},
            status=DagsterRunStatus.NOT_STARTED,
        )
    with catalog.session_factory() as session, session.begin():
        session.execute(sa.delete(ProductMaster).where(ProductMaster.id == gone))

    assert main(["partitions", "prune", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert (
        "7 partitions registered; done: 2 with pictures stored more than 30 days ago, 1 no longer in the catalog" in out
    )
    assert "kept 1 named by unfinished runs" in out
    assert "left 1 keys that are not product ids" in out
    assert "would delete 3 partitions" in out
    assert len(_registered(dagster_home)) == 7

    assert main(["partitions", "prune"]) == 0
    assert "deleted 3 partitions" in capsys.readouterr().out
    assert _registered(dagster_home) == [str(recent), str(pending), str(in_range), "not-a-product"]
    # Pictures and rows stay.
    assert [len(catalog.images(p)) for p in (old, recent, elsewhere, in_range)] == [1, 1, 1, 1]
    assert len(catalog.attempts(old)) == 1
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        # Dagster keeps the deleted key's materialisation in the event log.
        event = instance.get_latest_materialization_event(ASSET)
        assert event is not None
        assert event.asset_materialization is not None
        assert event.asset_materialization.partition == str(old)

    # Nothing left to prune on a second pass; a shorter age takes the recent one too.
    assert main(["partitions", "prune", "--older-than-days", "0.5"]) == 0
    assert str(recent) not in _registered(dagster_home)


def test_prune_refuses_a_negative_age(dagster_home: Path, catalog: Catalog) -> None:
    assert main(["partitions", "prune", "--older-than-days", "-1"]) == 2
    assert os.environ["DAGSTER_HOME"] == str(dagster_home)
