"""Real-browser tests: ``dagster-webserver`` on a free loopback port, driven by headless Chromium.

* ``dagster_ui(dagster_home, env, code=("-m", "ml_images.definitions"))`` starts the webserver over that
  ``DAGSTER_HOME`` with that environment, waits until its code location has loaded and returns a ``DagsterUI``
  (``ui.url("/assets/product_images")``); it is stopped at the end of the test.
* ``browser`` is headless Chromium with a 1400×1000 page; ``browser.shot("name")`` saves
  ``<tmp_path>/screenshots/name.png`` and returns its path; ``wait_for_text``, ``images``, ``run`` help to assert.

Chromium comes from Debian (``apt-get install chromium chromium-driver``; ``.ci/run`` installs it). Without it
these tests skip, except when ``CI`` is set: then they fail, so CI cannot go green without running them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path

import pytest

from ml_images_tests.browser.chromium import INSTALL_HINT, Browser, missing_parts, start_chromium
from ml_images_tests.browser.dagster_ui import DagsterUI, running_dagster_ui
from ml_images_tests.pipeline.fixtures import web

__all__ = ["browser", "chromium_installed", "dagster_ui", "web"]

StartDagsterUI = Callable[..., DagsterUI]


@pytest.fixture(scope="session", autouse=True)
def chromium_installed() -> None:
    """Checked before anything costly (session scope: before module fixtures too); every test here needs it."""
    missing = missing_parts()
    if not missing:
        return
    message = (
        f"Chromium is not installed ({', '.join(missing)} missing): run `{INSTALL_HINT}` (as root; .ci/run does) "
        "to run the real-browser tests"
    )
    if os.environ.get("CI"):
        pytest.fail(message + " (CI is set: these tests must run)")
    pytest.skip(message)


@pytest.fixture
def dagster_ui(tmp_path: Path) -> Iterator[StartDagsterUI]:
    """Starts ``dagster-webserver``; every webserver started is stopped at the end of the test."""
    with ExitStack() as stack:
        started: list[DagsterUI] = []

        def start(
            dagster_home: Path,
            env: Mapping[str, str] | None = None,
            *,
            code: Sequence[str] = ("-m", "ml_images.definitions"),
        ) -> DagsterUI:
            log = tmp_path / f"webserver-{len(started)}.log"
            ui = stack.enter_context(running_dagster_ui(dagster_home, env or dict(os.environ), log, code=code))
            started.append(ui)
            return ui

        yield start


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    session = start_chromium(tmp_path / "screenshots", tmp_path / "chromedriver.log")
    try:
        yield session
    finally:
        session.driver.quit()
