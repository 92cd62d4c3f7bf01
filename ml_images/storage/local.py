"""A local-folder image store for the embedded default (``$ML_IMAGES_HOME/images``)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote

from ml_images.errors import StorageUnavailableError
from ml_images.storage.keys import validate_key


class LocalImageStore:
    """Objects are files under ``root``; writes are atomic (temporary file in the same folder, then rename)."""

    def __init__(self, root: Path, *, public_base_url: str | None = None) -> None:
        self.root = Path(root).expanduser().resolve()
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None

    def __repr__(self) -> str:
        return f"LocalImageStore(root={str(self.root)!r})"

    def _path(self, key: str) -> Path:
        path = self.root.joinpath(*validate_key(key).split("/"))
        if not path.is_relative_to(self.root):  # validate_key already forbids '..'; belt and braces
            raise ValueError(f"object key escapes the store: {key!r}")
        return path

    def put(self, key: str, data: bytes, content_type: str = "image/jpeg") -> str:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.chmod(tmp_name, 0o644)  # mkstemp's 0600 would hide the images from a web server
                os.replace(tmp_name, path)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp_name)
        except OSError as exc:
            raise StorageUnavailableError(f"cannot write {key} under {self.root}: {exc.strerror or exc}") from exc
        return self.url_for(key)

    def get(self, key: str) -> bytes:
        """The object's bytes; ``KeyError`` when it does not exist."""
        path = self._path(key)
        try:
            return path.read_bytes()
        except FileNotFoundError as exc:
            raise KeyError(key) from exc
        except OSError as exc:
            raise StorageUnavailableError(f"cannot read {key} under {self.root}: {exc.strerror or exc}") from exc

    def delete(self, keys: Iterable[str]) -> None:
        for key in keys:
            path = self._path(key)
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:
                raise StorageUnavailableError(f"cannot delete {key} under {self.root}: {exc.strerror or exc}") from exc
            self._prune(path.parent)

    def _prune(self, folder: Path) -> None:
        """Remove folders left empty (a product whose images were all replaced), never the root itself."""
        while folder != self.root and folder.is_relative_to(self.root):
            try:
                folder.rmdir()
            except OSError:  # not empty (or already gone): stop
                return
            folder = folder.parent

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def url_for(self, key: str) -> str:
        if self.public_base_url:
            return f"{self.public_base_url}/{quote(validate_key(key))}"
        return self._path(key).as_uri()

    def describe(self) -> str:
        return f"local folder {self.root}"
