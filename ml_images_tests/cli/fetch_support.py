"""Running ``ml-images fetch`` as a real subprocess (to completion, or started and then signalled)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import IO

from dagster import DagsterInstance

from ml_images_tests.pipeline.support import ImageWeb, web_environment


def fetch_environment(web: ImageWeb, **env: str) -> dict[str, str]:
    return {**os.environ, **web_environment(web), "ML_IMAGES_STEP_MAX_RETRIES": "0", **env}


def fetch(web: ImageWeb, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ml_images.cli", "fetch", *args],
        env=fetch_environment(web, **env),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


class RunningFetch:
    """``ml-images fetch`` started in the background; its output goes to files (no pipe can fill up)."""

    def __init__(self, web: ImageWeb, folder: Path, *args: str, **env: str) -> None:
        self.stdout_path = folder / "fetch.stdout"
        self.stderr_path = folder / "fetch.stderr"
        self._out: IO[str] = self.stdout_path.open("w")
        self._err: IO[str] = self.stderr_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ml_images.cli", "fetch", *args],
            env=fetch_environment(web, **env),
            stdout=self._out,
            stderr=self._err,
            text=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout=timeout)
        finally:
            self._out.close()
            self._err.close()

    def output(self) -> str:
        return self.stdout_path.read_text() + self.stderr_path.read_text()

    def stop(self) -> None:
        """Cleanup for a test that failed half-way: never leave the subprocess behind."""
        if self.process.poll() is None:
            self.process.kill()
        self.wait(timeout=30)


def instance_at(dagster_home: Path) -> DagsterInstance:
    return DagsterInstance.from_config(str(dagster_home))


def fetch_on_terminal(web: ImageWeb, *args: str, timeout: float = 240, **env: str) -> tuple[int, str]:
    """``ml-images fetch`` with its stdout and stderr on a pseudo-terminal (as in an interactive shell); returns
    the exit status and everything it wrote (with the terminal's control sequences)."""
    import pty
    import select
    import time

    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "ml_images.cli", "fetch", *args],
        env=fetch_environment(web, TERM="xterm-256color", COLUMNS="150", **env),
        stdout=terminal,
        stderr=terminal,
        stdin=subprocess.DEVNULL,
    )
    os.close(terminal)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 0.5)
            if ready:
                try:
                    data = os.read(controller, 65536)
                except OSError:  # the terminal's other end closed: the process exited
                    break
                if not data:
                    break
                chunks.append(data)
            elif process.poll() is not None:
                break
        code = process.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
        os.close(controller)
    return code, b"".join(chunks).decode("utf-8", errors="replace")
