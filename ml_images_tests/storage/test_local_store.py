from __future__ import annotations

from pathlib import Path

import pytest

from ml_images.errors import StorageUnavailableError
from ml_images.settings import Settings
from ml_images.storage.base import ImageStore
from ml_images.storage.factory import build_image_store
from ml_images.storage.local import LocalImageStore

KEY = "products/SKU-1/0-0123456789ab.jpg"


def test_put_get_exists_delete_round_trip(tmp_path: Path, jpeg_bytes: bytes):
    store = LocalImageStore(tmp_path / "images")
    assert isinstance(store, ImageStore)
    assert not store.exists(KEY)
    url = store.put(KEY, jpeg_bytes)
    path = tmp_path / "images" / "products" / "SKU-1" / "0-0123456789ab.jpg"
    assert url == path.as_uri()
    assert store.exists(KEY)
    assert store.get(KEY) == jpeg_bytes
    assert path.read_bytes() == jpeg_bytes
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind
    store.delete([KEY, "products/SKU-1/9-ffffffffffff.jpg"])  # a missing key is ignored
    assert not store.exists(KEY)
    assert not (tmp_path / "images" / "products").exists()  # emptied folders are pruned, the root stays
    assert (tmp_path / "images").is_dir()
    with pytest.raises(KeyError):
        store.get(KEY)


def test_overwrite_replaces_the_whole_object(tmp_path: Path):
    store = LocalImageStore(tmp_path)
    store.put(KEY, b"first version, longer")
    store.put(KEY, b"second")
    assert store.get(KEY) == b"second"


def test_delete_keeps_sibling_objects(tmp_path: Path):
    store = LocalImageStore(tmp_path)
    other = "products/SKU-1/1-aaaaaaaaaaaa.jpg"
    store.put(KEY, b"a")
    store.put(other, b"b")
    store.delete([KEY])
    assert store.exists(other)


def test_public_base_url_prefixes_the_key(tmp_path: Path):
    store = LocalImageStore(tmp_path, public_base_url="https://cdn.example.com/img/")
    assert store.put(KEY, b"x") == f"https://cdn.example.com/img/{KEY}"
    assert store.url_for(KEY) == f"https://cdn.example.com/img/{KEY}"
    assert str(tmp_path) in store.describe()


@pytest.mark.parametrize("key", ["../escape.jpg", "/etc/passwd", "products/../../x.jpg", "a\\b.jpg"])
def test_keys_that_could_escape_are_refused(tmp_path: Path, key: str):
    store = LocalImageStore(tmp_path / "root")
    for action in (lambda: store.put(key, b"x"), lambda: store.get(key), lambda: store.delete([key])):
        with pytest.raises(ValueError, match="key"):
            action()
    assert not (tmp_path / "escape.jpg").exists()


def test_unwritable_root_is_storage_unavailable(tmp_path: Path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_bytes(b"")  # a file where the root folder should be
    store = LocalImageStore(blocker)
    with pytest.raises(StorageUnavailableError, match="cannot write"):
        store.put(KEY, b"x")


def test_factory_without_bucket_is_the_local_folder_under_home(tmp_path: Path):
    settings = Settings.from_env({"ML_IMAGES_HOME": str(tmp_path)})
    store = build_image_store(settings)
    assert isinstance(store, LocalImageStore)
    assert store.root == tmp_path / "images"
