"""The demo runner's set-up steps: environment, one-time seeding of the catalog, the pre-existing image."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

import pytest
import sqlalchemy as sa

from demo import sample_catalog as sc
from demo.fixture_server import FixtureSearchServer
from demo.runner import DEMO_API_KEY, PINNED_AWAY, _cli, prepare_environment, search_environment, seed_catalog
from ml_images.catalog.db import create_catalog_engine, make_session_factory
from ml_images.catalog.models import ProductImage, ProductMaster
from ml_images.settings import Settings


def test_prepare_environment_makes_absolute_homes_and_pins_the_embedded_default(tmp_path: Path) -> None:
    notes: list[str] = []
    env = {
        "ML_IMAGES_HOME": str(tmp_path / "rel" / ".." / "home"),
        "ML_IMAGES_DATABASE_URL": "postgresql://shop@db/catalog",
        "AWS_STORAGE_BUCKET_NAME": "shop-images",
        "MERCADOLIBRE_PUBLICATION_RULES": "{}",
        "IMAGE_SEARCH_COUNT": "3",
    }
    home, dagster_home = prepare_environment(env, say=notes.append)
    assert home == (tmp_path / "home").resolve()
    assert home.is_dir()
    assert dagster_home == home / "dagster_home"
    assert dagster_home.is_dir()
    assert "telemetry" in (dagster_home / "dagster.yaml").read_text()
    assert env["ML_IMAGES_HOME"] == str(home)
    assert env["DAGSTER_HOME"] == str(dagster_home)
    assert not set(PINNED_AWAY) & env.keys()
    assert env["IMAGE_SEARCH_COUNT"] == "3"  # a harmless knob stays the user's
    assert len(notes) == 3
    assert all("ignoring" in n for n in notes)


def test_prepare_environment_keeps_an_existing_dagster_yaml(tmp_path: Path) -> None:
    (tmp_path / "dh").mkdir()
    (tmp_path / "dh" / "dagster.yaml").write_text("run_queue: {}\n")
    env = {"ML_IMAGES_HOME": str(tmp_path / "home"), "DAGSTER_HOME": str(tmp_path / "dh")}
    prepare_environment(env, say=lambda _: None)
    assert (tmp_path / "dh" / "dagster.yaml").read_text() == "run_queue: {}\n"


def test_search_environment_points_the_pipeline_at_the_fixture(tmp_path: Path) -> None:
    env: dict[str, str] = {}
    with FixtureSearchServer({}) as server:
        search_environment(env, server)
        assert env["ML_IMAGES_SEARCH_ENDPOINT"] == server.search_endpoint
    assert env["BRAVE_SEARCH_API_KEY"] == DEMO_API_KEY
    assert env["ML_IMAGES_SEARCH_PROVIDER"] == "brave"
    assert env["ML_IMAGES_ALLOWED_PRIVATE_HOSTS"] == "127.0.0.1"


def test_catalog_is_seeded_once(tmp_path: Path, placeholder_photos: dict[str, Path]) -> None:
    assert _cli(["db", "upgrade"]) == 0
    engine = create_catalog_engine(Settings.from_env(os.environ).database_url)
    try:
        factory = make_session_factory(engine)
        demo_dir = tmp_path / "demo"
        demo_dir.mkdir()
        assert seed_catalog(factory, demo_dir, placeholder_photos, say=lambda _: None) is True
        with factory() as session:
            before = {p.code: p.last_updated for p in session.scalars(sa.select(ProductMaster))}
            images = list(session.scalars(sa.select(ProductImage)))
        assert set(before) == {p.code for p in sc.PRODUCTS}
        has_images = next(p for p in sc.PRODUCTS if p.expected == sc.HAS_IMAGES)
        assert len(images) == 1
        with factory() as session:
            owner = session.get(ProductMaster, images[0].product_id)
            assert owner is not None
            assert owner.code == has_images.code
        picture = Path(url2pathname(urlsplit(images[0].url).path))
        assert picture.is_file()
        assert images[0].storage_key is None
        assert images[0].order == 0

        notes: list[str] = []
        assert seed_catalog(factory, demo_dir, placeholder_photos, say=notes.append) is False
        assert "not reloaded" in notes[0]
        with factory() as session:
            after = {p.code: p.last_updated for p in session.scalars(sa.select(ProductMaster))}
            assert session.scalar(sa.select(sa.func.count()).select_from(ProductImage)) == 1
        assert after == before  # the second run changes nothing, so nothing becomes pending again
    finally:
        engine.dispose()


@pytest.mark.parametrize("name", ["ML_IMAGES_DATABASE_URL", "AWS_STORAGE_BUCKET_NAME"])
def test_pinned_variables_include_real_infrastructure(name: str) -> None:
    assert name in PINNED_AWAY


def test_django_layout_seeds_django_shaped_tables(
    tmp_path: Path, placeholder_photos: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``ML_IMAGES_CATALOG_LAYOUT=django make demo`` without Django: the demo makes the three tables itself."""
    from demo.runner import seed_django_tables
    from ml_images.catalog.layout import CatalogLayout

    monkeypatch.setenv("ML_IMAGES_CATALOG_LAYOUT", "django")
    settings = Settings.from_env(os.environ)
    seed_django_tables(settings, say=lambda _: None)
    assert _cli(["db", "upgrade"]) == 0
    layout = CatalogLayout("django", "aiecommerce")
    engine = create_catalog_engine(settings.database_url, layout)
    try:
        tables = set(sa.inspect(engine).get_table_names())
        assert set(layout.shop_tables) | {"ml_images_fetch_attempt", "ml_images_image"} <= tables
        assert not {"product_master", "product_image", "alembic_version"} & tables
        factory = make_session_factory(engine)
        demo_dir = tmp_path / "demo"
        demo_dir.mkdir()
        assert seed_catalog(factory, demo_dir, placeholder_photos, say=lambda _: None) is True
        with engine.connect() as conn:
            codes = set(conn.execute(sa.text("SELECT code FROM aiecommerce_productmaster")).scalars())
            titles = list(conn.execute(sa.text("SELECT seo_title FROM aiecommerce_productmaster")).scalars())
            pictures = conn.execute(sa.text('SELECT "order", is_processed FROM aiecommerce_productimage')).all()
        assert codes == {p.code for p in sc.PRODUCTS}
        assert max(len(t) for t in titles) <= 60
        assert [tuple(row) for row in pictures] == [(0, True)]
        seed_django_tables(settings, say=lambda _: None)  # the tables exist: nothing is created again
    finally:
        engine.dispose()
