"""``dagster-webserver`` as a real subprocess on a free loopback port, over a given ``DAGSTER_HOME``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

WEBSERVER = str(Path(sys.executable).with_name("dagster-webserver"))
REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 20.0
# An instance that never phones home; SQLite storage under DAGSTER_HOME (no dagster.yaml storage section).
INSTANCE_YAML = "telemetry:\n  enabled: false\n"


@dataclass(frozen=True)
class DagsterUI:
    """A running webserver: ``url(path)`` gives a page's address; ``log`` is its stdout and stderr."""

    port: int
    dagster_home: Path
    log: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + (path if path.startswith("/") else "/" + path)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def prepare_dagster_home(dagster_home: Path) -> Path:
    """An existing folder with a telemetry-off instance file (kept when the test wrote its own)."""
    dagster_home.mkdir(parents=True, exist_ok=True)
    config = dagster_home / "dagster.yaml"
    if not config.exists():
        config.write_text(INSTANCE_YAML)
    return dagster_home


def _tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""


@contextmanager
def running_dagster_ui(
    dagster_home: Path,
    env: Mapping[str, str],
    log: Path,
    *,
    code: Sequence[str] = ("-m", "ml_images.definitions"),
    start_timeout: float = START_TIMEOUT_S,
) -> Iterator[DagsterUI]:
    """Starts ``dagster-webserver <code>`` (a module by default, or ``("-f", file)``), waits until its
    ``/server_info`` answers and its code location has loaded, and stops it (terminate, then kill) afterwards."""
    prepare_dagster_home(dagster_home)
    port = free_port()
    with log.open("w") as out:
        process = subprocess.Popen(
            [WEBSERVER, *code, "-h", "127.0.0.1", "-p", str(port)],
            cwd=REPO,
            env={**env, "DAGSTER_HOME": str(dagster_home)},
            stdout=out,
            stderr=subprocess.STDOUT,
            # Its own process group: the code server it spawns is stopped with it.
            start_new_session=True,
        )
        try:
            ui = DagsterUI(port=port, dagster_home=dagster_home, log=log)
            _wait_until_loaded(process, ui, start_timeout)
            _skip_community_prompt(ui)
            yield ui
        finally:
            _stop_group(process)


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
            return
        except subprocess.TimeoutExpired:
            continue


def _skip_community_prompt(ui: DagsterUI) -> None:
    """On 127.0.0.1 the UI opens a "Join the Dagster community" dialog over every page until it is dismissed;
    dismissing it is a GraphQL mutation stored in this instance (``DAGSTER_HOME``)."""
    answer = requests.post(ui.url("/graphql"), json={"query": "mutation { setNuxSeen }"}, timeout=30)
    answer.raise_for_status()
    if answer.json().get("data", {}).get("setNuxSeen") is not True:
        raise AssertionError(f"setNuxSeen failed: {answer.text[:500]}")


_LOCATIONS_QUERY = """
{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus
    locationOrLoadError { __typename ... on PythonError { message } } } } } }
"""


def _wait_until_loaded(process: subprocess.Popen[bytes], ui: DagsterUI, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise AssertionError(f"dagster-webserver exited with {process.returncode}:\n{_tail(ui.log)}")
        try:
            answer = requests.post(ui.url("/graphql"), json={"query": _LOCATIONS_QUERY}, timeout=5)
            if answer.ok:
                entries = answer.json()["data"]["workspaceOrError"]["locationEntries"]
                if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                    errors = [e for e in entries if e["locationOrLoadError"]["__typename"] == "PythonError"]
                    if errors:
                        raise AssertionError(f"code location failed to load: {errors}")
                    return
        except (requests.RequestException, KeyError, TypeError, ValueError):
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"dagster-webserver not ready after {timeout:.0f} s:\n{_tail(ui.log)}")
        time.sleep(0.5)
