"""The heap settings of ml_images.malloc_tuning: applied on glibc, once, by the CLI and the code location."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import ml_images.malloc_tuning as m
assert not m._applied
import {module}
print(m._applied)
"""


def _applied_after_importing(module: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", CHECK.format(module=module)], capture_output=True, text=True, timeout=120, check=True
    )
    return out.stdout.strip()


def test_loading_the_code_location_applies_the_settings() -> None:
    # Every run, daemon and Celery task process loads the code location.
    assert _applied_after_importing("ml_images.definitions") == "True"


def test_the_cli_applies_them_before_any_command() -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import ml_images.malloc_tuning as m, ml_images.cli as c\n"
            "try:\n    c.main(['--version'])\nexcept SystemExit:\n    pass\nprint(m._applied)",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert out.stdout.strip().splitlines()[-1] == "True"


def test_operator_settings_win(monkeypatch) -> None:
    import ml_images.malloc_tuning as m

    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    monkeypatch.setattr(m, "_applied", False)
    calls: list[tuple[int, int]] = []

    class Mallopt:  # stands in for libc's function (argtypes and restype are set on it)
        argtypes: object = None
        restype: object = None

        def __call__(self, param: int, value: int) -> int:
            calls.append((param, value))
            return 1

    class Libc:
        mallopt = Mallopt()

    monkeypatch.setattr(m.ctypes, "CDLL", lambda name: Libc())
    assert m.limit_heap_fragmentation() is True
    assert calls == []  # neither setting overridden
