"""``ml-images db upgrade`` and ``ml-images fetch`` as real subprocesses on a catalog Django migrated.

The whole Dagster path (selection, per-product runs, the asset check, the coverage report) runs with
``ML_IMAGES_CATALOG_LAYOUT=django``; the result is read back through Django's ORM, and the three Django tables
are described before and after to prove nothing was added to them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from ml_images_tests.cli.fetch_support import fetch
from ml_images_tests.django_catalog.harness import DjangoCatalog
from ml_images_tests.django_catalog.schema import schema_changes
from ml_images_tests.pipeline.support import ImageWeb, files_under, running_web

pytestmark = pytest.mark.slow


@pytest.fixture
def web() -> Iterator[ImageWeb]:
    with running_web() as server:
        yield server


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ml_images.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def _product(catalog: DjangoCatalog, model: str, **fields: Any) -> Any:
    values: dict[str, Any] = {
        "code": f"SKU-{model}",
        "description": f"Monitor Acme {model} 24 pulgadas",
        "category": "MONITOR",
        "price": Decimal("150.00"),
        "is_active": True,
        "is_for_mercadolibre": True,
        "specs": {"brand": "Acme", "model": model},
    }
    values.update(fields)
    return catalog.ProductMaster.objects.create(**values)


def _detail_keys(url: str) -> list[str]:
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text("SELECT storage_key FROM ml_images_image ORDER BY storage_key")).scalars())
    finally:
        engine.dispose()


def test_fetch_writes_pictures_and_errors_into_the_django_tables(
    django_catalog: DjangoCatalog, web: ImageWeb, tmp_path: Path
) -> None:
    env = {
        "ML_IMAGES_DATABASE_URL": django_catalog.url,
        "ML_IMAGES_CATALOG_LAYOUT": "django",
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
    }
    (tmp_path / "dagster_home").mkdir()
    found = _product(django_catalog, "ZX8000")
    nothing = _product(django_catalog, "ZX8001")
    django_catalog.MercadoLibreListing.objects.create(product_master=nothing)
    web.add("ZX8000", 3)
    before = django_catalog.schema_snapshot()

    upgraded = _cli("db", "upgrade", **env)
    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
    assert "only the project's own tables" in upgraded.stdout

    result = fetch(web, **env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "stored: 1 (" in result.stdout
    assert "no images (listing ERROR): 1" in result.stdout

    images = list(django_catalog.ProductMaster.objects.get(pk=found.pk).images.all())
    assert len(images) >= 2  # a near-duplicate among the three generated photos may be dropped
    assert f"stored: 1 ({len(images)} images)" in result.stdout
    assert [(image.order, image.is_processed) for image in images] == [(n, True) for n in range(len(images))]
    assert len(_detail_keys(django_catalog.url)) == len(images)
    listing = django_catalog.MercadoLibreListing.objects.get(product_master_id=nothing.pk)
    assert listing.status == "ERROR"
    assert listing.sync_error.startswith("images: ")
    assert not django_catalog.MercadoLibreListing.objects.filter(product_master_id=found.pk).exists()
    stored = files_under(Path(os.environ["ML_IMAGES_HOME"]) / "images")
    assert len(stored) == len(images)

    # Forced again with other photos: the rows are switched, the replaced objects deleted after.
    web.add("ZX8000", 1, seed=777)
    forced = fetch(web, "--id", str(found.pk), **env)
    assert forced.returncode == 0, forced.stdout + forced.stderr
    images = list(django_catalog.ProductMaster.objects.get(pk=found.pk).images.all())
    assert [image.order for image in images] == [0]
    assert len(_detail_keys(django_catalog.url)) == 1
    assert files_under(Path(os.environ["ML_IMAGES_HOME"]) / "images") != stored
    assert len(files_under(Path(os.environ["ML_IMAGES_HOME"]) / "images")) == 1

    again = fetch(web, **env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "nothing to do" in again.stdout
    assert schema_changes(before, django_catalog.schema_snapshot()) == []
