"""A small demo-like run recorded in a persistent ``DAGSTER_HOME``: two eligible products, one finds photos
(stored) and one finds nothing (its listing goes to ERROR), processed by a real ``ml-images fetch`` subprocess
against the loopback search-and-image server of ``ml_images_tests/pipeline/support.py``."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ml_images_tests.pipeline.support import Catalog, ImageWeb, web_environment

FETCH_TIMEOUT_S = 300


@dataclass(frozen=True)
class DemoRun:
    dagster_home: Path
    env: dict[str, str]
    stored_id: int
    error_id: int
    output: str


def run_environment(web: ImageWeb, dagster_home: Path) -> dict[str, str]:
    """The environment of the fetch and of the webserver: the test's ML_IMAGES_HOME, the loopback web."""
    return {
        **os.environ,
        **web_environment(web),
        "ML_IMAGES_STEP_MAX_RETRIES": "0",
        "DAGSTER_HOME": str(dagster_home),
    }


def materialise_demo_run(web: ImageWeb, dagster_home: Path) -> DemoRun:
    home = Path(os.environ["ML_IMAGES_HOME"])
    catalog = Catalog(f"sqlite:///{home / 'catalog.db'}")  # the embedded default location
    try:
        stored_id = catalog.add_product("ZX8100", code="SKU-STORED")
        error_id = catalog.add_product("ZX8200", code="SKU-NOTHING")  # the search finds nothing for it
        web.add("ZX8100", 2)
    finally:
        catalog.close()
    env = run_environment(web, dagster_home)
    done = subprocess.run(
        [sys.executable, "-m", "ml_images.cli", "fetch"],
        env=env,
        capture_output=True,
        text=True,
        timeout=FETCH_TIMEOUT_S,
        check=False,
    )
    output = done.stdout + done.stderr
    if done.returncode != 0:
        raise AssertionError(f"ml-images fetch failed ({done.returncode}):\n{output[-3000:]}")
    return DemoRun(dagster_home=dagster_home, env=env, stored_id=stored_id, error_id=error_id, output=output)
