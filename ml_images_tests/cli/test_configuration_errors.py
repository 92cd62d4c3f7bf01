"""A broken configuration stops ``ml-images`` with one clear line on stderr and exit code 2, no traceback (issue 10.12).

Each case runs the real command in a subprocess, with the environment a user would have set.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ml_images_tests.pipeline.support import running_web, web_environment

pytestmark = pytest.mark.slow

SECRET = "pw-Never-Shown"


def ml_images(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, **env}
    return subprocess.run(
        [sys.executable, "-m", "ml_images.cli", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def assert_one_clear_line(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert lines[0].startswith("ml-images: configuration error: "), output
    for fragment in fragments:
        assert fragment in lines[0], output
    return lines[0]


@pytest.fixture
def fetch_env() -> Iterator[dict[str, str]]:
    """A complete configuration (search endpoint and key): only the variable under test is wrong."""
    with running_web() as web:
        yield {**web_environment(web), "ML_IMAGES_STEP_MAX_RETRIES": "0"}


@pytest.mark.parametrize(
    ("rules", "commands"),
    [("{not json", (("fetch",), ("db", "upgrade"))), ('{"MONITOR": -1}', (("fetch", "--dry-run"),))],
)
def test_bad_publication_rules(fetch_env: dict[str, str], rules: str, commands: tuple[tuple[str, ...], ...]) -> None:
    for args in commands:
        result = ml_images(*args, **fetch_env, MERCADOLIBRE_PUBLICATION_RULES=rules)
        assert_one_clear_line(result, "MERCADOLIBRE_PUBLICATION_RULES")


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql+psycopg2://shop:{SECRET}@127.0.0.1:notaport/shop",
        f"not a url {SECRET}",
        f"nosuchdb://shop:{SECRET}@127.0.0.1/shop",
        f"postgresql+nosuchdriver://shop:{SECRET}@127.0.0.1/shop",
    ],
)
def test_malformed_database_url(fetch_env: dict[str, str], url: str) -> None:
    for args in (("fetch",), ("catalog", "load", "products.jsonl")):
        result = ml_images(*args, **fetch_env, ML_IMAGES_DATABASE_URL=url)
        line = assert_one_clear_line(result, "ML_IMAGES_DATABASE_URL")
        assert SECRET not in result.stdout + result.stderr, line


def test_dagster_home_that_is_a_file(fetch_env: dict[str, str], tmp_path: Path) -> None:
    not_a_folder = tmp_path / "dagster_home"
    not_a_folder.write_text("a file where a folder should be")
    result = ml_images("fetch", **fetch_env, DAGSTER_HOME=str(not_a_folder))
    assert_one_clear_line(result, "DAGSTER_HOME", str(not_a_folder), "is a file")
    assert not_a_folder.read_text() == "a file where a folder should be"


def test_ml_images_home_that_cannot_be_created(fetch_env: dict[str, str], tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file in the way")
    home = blocker / "home"
    for args in (("fetch",), ("db", "upgrade")):
        result = ml_images(*args, **fetch_env, ML_IMAGES_HOME=str(home))
        assert_one_clear_line(result, "ML_IMAGES_HOME", str(home))


def test_ml_images_home_that_exists_but_is_not_writable(fetch_env: dict[str, str]) -> None:
    # /sys refuses new files even to root, so this holds whoever runs the tests (a chmod would not stop root).
    for args in (("fetch",), ("db", "upgrade"), ("catalog", "load", "products.jsonl")):
        result = ml_images(*args, **fetch_env, ML_IMAGES_HOME="/sys")
        assert_one_clear_line(result, "ML_IMAGES_HOME", "/sys")


def test_ml_images_home_that_is_a_file_with_dagster_home_set(fetch_env: dict[str, str], tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.write_text("a file")
    dagster_home = tmp_path / "dagster_home"
    result = ml_images("fetch", **fetch_env, ML_IMAGES_HOME=str(home), DAGSTER_HOME=str(dagster_home))
    assert_one_clear_line(result, "ML_IMAGES_HOME", "is a file")
