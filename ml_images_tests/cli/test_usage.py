"""What ``ml-images`` says about itself: version, help text, and each sub-command's own usage on a bad option."""

from __future__ import annotations

import pytest

from ml_images.cli import main, package_version


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as stopped:
        main(list(argv))
    out, err = capsys.readouterr()
    return int(stopped.value.code or 0), out, err


def test_version(capsys: pytest.CaptureFixture[str]):
    code, out, _ = _run(capsys, "--version")

    assert code == 0
    assert out.strip() == f"ml-images {package_version()}"
    assert package_version() == "0.1.0"  # pyproject.toml's version, installed with the package


@pytest.mark.parametrize(
    "argv", [(), ("fetch",), ("db",), ("db", "upgrade"), ("catalog", "load"), ("models", "install")]
)
def test_help_is_plain_text(capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]):
    code, out, _ = _run(capsys, *argv, "--help")

    assert code == 0
    assert out.startswith(f"usage: ml-images {' '.join(argv)}".rstrip())
    assert "``" not in out  # no reStructuredText markup from docstrings


def test_fetch_help_documents_batch_size_progress_and_exit_status(capsys: pytest.CaptureFixture[str]):
    _, out, _ = _run(capsys, "fetch", "--help")

    assert "--batch-size N  products per Dagster run (default 25)" in out
    assert "progress bar" in out
    assert "0    every run did its work; products that got no pictures" in out
    assert "ML_IMAGES_SENSOR_* variables do not apply here" in out


@pytest.mark.parametrize(
    ("argv", "usage"),
    [
        (("fetch", "--bogus"), "usage: ml-images fetch [-h] [--limit N] [--dry-run] [--id ID] [--batch-size N]"),
        (("fetch", "--limit", "3", "extra"), "usage: ml-images fetch "),
        (("db", "upgrade", "--bogus"), "usage: ml-images db upgrade [-h] [--revision REVISION]"),
        (("catalog", "load", "x.csv", "--bogus"), "usage: ml-images catalog load "),
        (("--bogus", "fetch"), "usage: ml-images [-h] [--version] [-v] COMMAND ..."),
    ],
)
def test_a_bad_option_prints_the_usage_of_its_own_command(
    capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], usage: str
):
    code, out, err = _run(capsys, *argv)

    assert code == 2
    assert out == ""
    assert err.startswith(usage)
    assert "error: unrecognized arguments:" in err
