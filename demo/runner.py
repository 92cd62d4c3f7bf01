"""``python -m demo`` (what ``make demo`` runs): the whole pipeline end to end, offline.

1. ``ML_IMAGES_HOME`` / ``DAGSTER_HOME`` made absolute and created (a minimal ``dagster.yaml`` with telemetry off);
2. the candidate photos rendered into ``$ML_IMAGES_HOME/demo/photos`` (first run only: the generator is
   deterministic and keeps a manifest);
3. ``ml-images db upgrade``; the sample catalog loaded with ``ml-images catalog load`` **only when none of its
   products is in the database yet** — reloading would refresh ``last_updated`` and could make products pending
   again, and the catalog is the shop's data: a demo re-run must not rewrite it. The "already has images" product
   gets its one image row right after that first load;
4. the fixture search server started on 127.0.0.1 (Brave's JSON, API key checked, images served);
5. ``ml-images fetch`` run as a subprocess — Dagster runs in its own process with the demo's environment — with
   its output streamed;
6. a summary read back from the database, and the contact sheet (HTML + PNG) written;
7. the server stopped. Exit status: that of ``ml-images fetch`` (0 when every run succeeded).

The demo always uses the embedded default (SQLite + local folder under ``ML_IMAGES_HOME``): variables that
would point it at a real catalog, bucket or different rules are ignored, with a note.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, MutableMapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from PIL import Image, ImageOps
from sqlalchemy.orm import Session, sessionmaker

from demo.contact_sheet import write_contact_sheet
from demo.fixture_server import FixtureSearchServer
from demo.photos import MANIFEST, write_photos
from demo.sample_catalog import (
    HAS_IMAGES,
    PRODUCTS,
    DemoProduct,
    all_photos,
    distributor_photo_names,
    distributor_url_rewrites,
    fixture_catalog_names,
)
from demo.status import collect_status
from demo.summary import format_summary
from ml_images.catalog.db import create_catalog_engine, make_session_factory
from ml_images.catalog.layout import CatalogLayout, layout_of, models_of
from ml_images.catalog.rules import parse_publication_rules
from ml_images.catalog.selection import MercadoLibreFilter
from ml_images.settings import Settings

DEMO_API_KEY = "demo-key"  # not a secret: the fixture server's stand-in for a Brave subscription token
FETCH_TIMEOUT_S = 1800
DAGSTER_YAML = "telemetry:\n  enabled: false\n"
# Would point the demo at real infrastructure or change the sample catalog's intended mix.
PINNED_AWAY = (
    "ML_IMAGES_DATABASE_URL",
    "AWS_STORAGE_BUCKET_NAME",
    "AWS_ENDPOINT_URL",
    "ML_IMAGES_PUBLIC_BASE_URL",
    "MERCADOLIBRE_PUBLICATION_RULES",
    "MERCADOLIBRE_FRESHNESS_THRESHOLD_HOURS",
    "ML_IMAGES_NO_IMAGES_COOLDOWN_HOURS",
    "SERPAPI_API_KEY",
    "GOOGLE_API_KEY",
    "GOOGLE_SEARCH_ENGINE_ID",
    "SEARXNG_URL",
)

Say = Callable[[str], None]


def _say(text: str) -> None:
    print(text, flush=True)


def prepare_environment(env: MutableMapping[str, str], say: Say = _say) -> tuple[Path, Path]:
    """Absolute ``ML_IMAGES_HOME`` and ``DAGSTER_HOME`` (created), the demo's pins applied to ``env``."""
    home = Path(env.get("ML_IMAGES_HOME") or "./var").expanduser().resolve()
    dagster_home = Path(env.get("DAGSTER_HOME") or home / "dagster_home").expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)
    dagster_home.mkdir(parents=True, exist_ok=True)
    config = dagster_home / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML, encoding="utf-8")
    env["ML_IMAGES_HOME"] = str(home)
    env["DAGSTER_HOME"] = str(dagster_home)
    for name in PINNED_AWAY:
        if env.pop(name, None) is not None:
            say(f"note: ignoring {name} — the demo always runs on the embedded default under {home}")
    return home, dagster_home


def search_environment(env: MutableMapping[str, str], server: FixtureSearchServer) -> None:
    env["ML_IMAGES_SEARCH_PROVIDER"] = "brave"
    env["ML_IMAGES_SEARCH_ENDPOINT"] = server.search_endpoint
    env["BRAVE_SEARCH_API_KEY"] = DEMO_API_KEY
    env["ML_IMAGES_ALLOWED_PRIVATE_HOSTS"] = "127.0.0.1"
    # The sample catalog's distributor thumbnails → the large photos on this run's fixture server.
    env["ML_IMAGES_DISTRIBUTOR_URL_REWRITES"] = distributor_url_rewrites(server.base_url)


def generate_photos(photos_dir: Path, say: Say = _say) -> dict[str, Path]:
    specs = all_photos()
    started = time.monotonic()
    announced = False

    def progress(index: int, total: int, filename: str) -> None:
        nonlocal announced
        if not announced:
            say(f"Rendering the demo's candidate photos into {photos_dir} (first run only, about a second each)...")
            announced = True
        if index == total or index % 10 == 0:
            say(f"  {index}/{total} {filename}")

    paths = write_photos(specs, photos_dir, progress=progress)
    if announced:
        say(f"Photos ready in {time.monotonic() - started:.0f} s.")
    else:
        say(f"Photos: {len(paths)} already rendered in {photos_dir}.")
    return paths


def seed_django_tables(settings: Settings, say: Say = _say) -> None:
    """With ``ML_IMAGES_CATALOG_LAYOUT=django`` and no Django tables yet, create Django-shaped ones (demo only).

    A shop's own tables come from its Django ``migrate``; these have the same names, columns and NOT NULLs (no
    server defaults, as Django makes them), so the demo runs the django layout without a Django installation.
    """
    layout = CatalogLayout(settings.catalog_layout, settings.django_app_label)
    if not layout.is_django:
        return
    engine = create_catalog_engine(settings.database_url, layout)
    try:
        missing = [t for t in layout.shop_tables if t not in sa.inspect(engine).get_table_names()]
        if missing:
            say(f"Django layout: creating Django-shaped demo tables {', '.join(layout.shop_tables)}")
            layout.models.shop_metadata.create_all(engine)
    finally:
        engine.dispose()


def _cli(argv: Sequence[str]) -> int:
    from ml_images.cli import main as cli_main

    return cli_main(list(argv))


def seed_catalog(factory: sessionmaker[Session], demo_dir: Path, photo_paths: dict[str, Path], say: Say = _say) -> bool:
    """Load the sample catalog unless one of its products is already there; True when it loaded."""
    codes = [p.code for p in PRODUCTS]
    product = models_of(factory).ProductMaster
    with factory() as session:
        present = session.scalar(sa.select(sa.func.count()).where(product.code.in_(codes))) or 0
    if present:
        say(f"Sample catalog already loaded ({present} of {len(codes)} products): kept as it is, not reloaded.")
        return False
    now = datetime.now(UTC)
    catalog_file = demo_dir / "catalog.jsonl"
    seo_title_max = product.__table__.c.seo_title.type.length or 120
    catalog_file.write_text(write_jsonl(PRODUCTS, now, seo_title_max), encoding="utf-8")
    say(f"Loading the sample catalog ({len(PRODUCTS)} products) from {catalog_file}")
    code = _cli(["catalog", "load", str(catalog_file)])
    if code != 0:
        raise SystemExit(code)
    for product in PRODUCTS:
        if product.expected == HAS_IMAGES:
            add_existing_image(factory, product, photo_paths[product.photos[0].name], demo_dir / "existing")
    return True


def write_jsonl(products: Sequence[DemoProduct], now: datetime, seo_title_max: int = 120) -> str:
    return "".join(json.dumps(p.row(now, seo_title_max), ensure_ascii=False) + "\n" for p in products)


def add_existing_image(factory: sessionmaker[Session], product: DemoProduct, photo: Path, folder: Path) -> None:
    """Give ``product`` one image uploaded "by hand" earlier, so the selection must leave it alone."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{product.code.lower()}-0.jpg"
    with Image.open(photo) as im:
        picture = ImageOps.pad(im.convert("RGB"), (1200, 1200), color=(255, 255, 255))
    buf = io.BytesIO()
    picture.save(buf, "JPEG", quality=90)
    target.write_bytes(buf.getvalue())
    layout = layout_of(factory)
    ProductMaster, ProductImage = layout.models.ProductMaster, layout.models.ProductImage
    with factory() as session, session.begin():
        pm = session.scalar(sa.select(ProductMaster).where(ProductMaster.code == product.code))
        if pm is None:
            raise RuntimeError(f"{product.code} was not loaded")
        has = session.scalar(sa.select(sa.func.count()).where(ProductImage.product_id == pm.id)) or 0
        if not has:
            # A Django picture row has these columns only (every NOT NULL one given: Django keeps its defaults).
            row: dict[str, object] = {"product_id": pm.id, "url": target.as_uri(), "order": 0, "is_processed": True}
            if not layout.is_django:
                row.update(width=1200, height=1200, background_removed=False)
            session.add(ProductImage(**row))


def run_fetch(env: MutableMapping[str, str], say: Say = _say) -> int:
    """``ml-images fetch`` in a child process with ``env``; its output goes straight to ours."""
    say("Running `ml-images fetch` (selection, then batched per-product runs through Dagster)...")
    sys.stdout.flush()
    try:
        completed = subprocess.run(
            [sys.executable, "-m", "ml_images.cli", "fetch"],
            env=dict(env),
            timeout=FETCH_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        say(f"ml-images fetch did not finish within {FETCH_TIMEOUT_S} s; stopped.")
        return 124
    return completed.returncode


def main(env: MutableMapping[str, str] | None = None) -> int:
    """Run the demo; ``env`` defaults to ``os.environ`` (the CLI calls made in-process read it too)."""
    env = os.environ if env is None else env
    home, dagster_home = prepare_environment(env)
    demo_dir = home / "demo"
    photos_dir = demo_dir / "photos"
    demo_dir.mkdir(parents=True, exist_ok=True)
    _say(f"ml_images demo — ML_IMAGES_HOME={home}  DAGSTER_HOME={dagster_home}")
    photo_paths = generate_photos(photos_dir)

    if (env.get("ML_IMAGES_CATALOG_LAYOUT") or "").strip().lower() == "django":
        seed_django_tables(Settings.from_env(env))
    code = _cli(["db", "upgrade"])
    if code != 0:
        return code
    settings = Settings.from_env(env)
    engine = create_catalog_engine(settings.database_url)
    try:
        session_factory = make_session_factory(engine)
        seed_catalog(session_factory, demo_dir, photo_paths)

        catalog = {key: [photos_dir / name for name in names] for key, names in fixture_catalog_names().items()}
        distributor = [photos_dir / name for name in distributor_photo_names()]
        with FixtureSearchServer(catalog, api_key=DEMO_API_KEY, distributor=distributor) as server:
            search_environment(env, server)
            _say(f"Fixture search server on {server.base_url} (Brave image-search format, {len(catalog)} products).")
            run_started = datetime.now(UTC)
            fetch_code = run_fetch(env)
            _say(f"Fixture server answered {server.search_calls} searches and {server.image_requests} image requests.")

        product_filter = MercadoLibreFilter(
            session_factory, parse_publication_rules(settings.publication_rules_json), settings.freshness_hours
        )
        manifest = json.loads((photos_dir / MANIFEST).read_text(encoding="utf-8"))
        store_root = None if settings.bucket else settings.home / "images"
        statuses = collect_status(
            session_factory, PRODUCTS, product_filter, photo_paths, manifest, store_root=store_root
        )
        html_path, _png_path = write_contact_sheet(statuses, demo_dir)
        _say(
            format_summary(
                statuses,
                run_started=run_started,
                images_dir=store_root,
                contact_sheet=html_path,
                dagster_home=dagster_home,
                fetch_exit_code=fetch_code,
            )
        )
        return fetch_code
    finally:
        engine.dispose()
