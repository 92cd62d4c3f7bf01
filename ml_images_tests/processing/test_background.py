"""BackgroundRemover: lazy single session, thread safety, and the model-availability check before any download."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ml_images.errors import ConfigurationError, ModelNotInstalledError
from ml_images.processing import model_provisioning as mp
from ml_images.processing.background import (
    BackgroundRemover,
    available_cpus,
    default_intra_op_threads,
    get_shared_remover,
)
from ml_images_tests.processing.images import product_photo


@pytest.fixture
def empty_model_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """rembg's model home pointed at an empty folder: nothing is installed there."""
    home = tmp_path / "rembg_home"
    home.mkdir()
    monkeypatch.delenv("U2NET_HOME", raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("REMBG_HOME", str(home))
    return home


@pytest.fixture
def no_downloads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records any attempt by rembg to download a model (pooch.retrieve), and refuses it."""
    import pooch

    attempts: list[str] = []

    def refuse(url: str, *args: object, **kwargs: object) -> str:
        attempts.append(url)
        raise AssertionError(f"rembg tried to download {url}")

    monkeypatch.setattr(pooch, "retrieve", refuse)
    return attempts


def test_remove_returns_rgba_with_the_mask_and_the_original_colours(remover):
    photo = product_photo(400, 400, seed=1, background=(170, 150, 110), object_color=(30, 40, 190))
    cut = remover.remove(photo)
    assert cut.mode == "RGBA"
    assert cut.size == photo.size
    alpha = np.asarray(cut.getchannel("A"))
    assert alpha[200, 200] > 240  # the object
    assert alpha[5, 5] < 15  # the backdrop
    assert cut.getpixel((200, 200))[:3] == photo.getpixel((200, 200))  # colours not darkened by the mask
    assert remover.loaded


def test_session_is_lazy_and_created_once_under_concurrent_first_use(monkeypatch: pytest.MonkeyPatch):
    import rembg

    created: list[str] = []
    real_new_session = rembg.new_session

    def counting_new_session(name: str, *args: object, **kwargs: object) -> object:
        created.append(name)
        return real_new_session(name, *args, **kwargs)

    monkeypatch.setattr(rembg, "new_session", counting_new_session)
    remover = BackgroundRemover("u2netp", intra_op_threads=1)
    assert not remover.loaded
    assert remover.model_path() == mp.find_model_file("u2netp")
    assert created == []
    barrier = threading.Barrier(3)
    outputs: list[Image.Image] = []

    def work() -> None:
        barrier.wait()
        outputs.append(remover.remove(product_photo(320, 320, seed=2)))

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(outputs) == 3
    assert created == ["u2netp"]
    remover.remove(product_photo(320, 320, seed=3))
    assert created == ["u2netp"]


def test_shared_remover_is_one_per_model():
    assert get_shared_remover("u2netp") is get_shared_remover("u2netp")
    assert get_shared_remover("u2netp") is not get_shared_remover("isnet-general-use")
    assert not get_shared_remover("isnet-general-use").loaded  # nothing built until used


def test_default_is_one_inference_at_a_time_on_all_cores():
    assert BackgroundRemover().max_concurrent_runs == 1
    assert BackgroundRemover().intra_op_threads == default_intra_op_threads() == available_cpus()
    concurrent = BackgroundRemover(max_concurrent_runs=2)
    assert concurrent.intra_op_threads == default_intra_op_threads(2) == max(1, available_cpus() // 2)
    assert BackgroundRemover(intra_op_threads=3).intra_op_threads == 3
    with pytest.raises(ValueError, match="intra_op_threads"):
        BackgroundRemover(intra_op_threads=0)
    with pytest.raises(ValueError, match="max_concurrent_runs"):
        BackgroundRemover(max_concurrent_runs=0)


@pytest.mark.parametrize("limit", [1, 2])
def test_inferences_in_flight_are_bounded(remover, limit, monkeypatch: pytest.MonkeyPatch):
    """Each inference in flight holds its own activations: the limit is what bounds the process's memory."""
    bounded = BackgroundRemover("u2netp", max_concurrent_runs=limit)
    session = remover._get_session()  # reuse the test session's model: only the limit is under test
    monkeypatch.setattr(bounded, "_session", session)
    in_flight, peak = 0, 0
    guard = threading.Lock()
    real_predict = session.predict

    def watched_predict(*args: object, **kwargs: object) -> object:
        nonlocal in_flight, peak
        with guard:
            in_flight += 1
            peak = max(peak, in_flight)
        try:
            time.sleep(0.05)  # widen the window in which a second run could start
            return real_predict(*args, **kwargs)
        finally:
            with guard:
                in_flight -= 1

    monkeypatch.setattr(session, "predict", watched_predict)
    barrier = threading.Barrier(3)

    def work() -> None:
        barrier.wait()
        bounded.remove(product_photo(256, 256, seed=4))

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert peak == limit


def test_missing_model_offline_is_refused_before_rembg_tries_to_download(empty_model_home, no_downloads):
    remover = BackgroundRemover("isnet-general-use")
    with pytest.raises(ModelNotInstalledError) as info:
        remover.ensure_available()
    message = str(info.value)
    expected = empty_model_home / "models" / "isnet-general-use" / "isnet-general-use.onnx"
    assert "'isnet-general-use'" in message
    assert str(expected) in message
    assert "ml-images models install --model isnet-general-use" in message
    assert remover.model_path() == expected
    with pytest.raises(ModelNotInstalledError):
        remover.remove(product_photo(64, 64))
    assert not remover.loaded
    assert no_downloads == []


def test_missing_u2netp_names_the_install_command(empty_model_home, no_downloads):
    with pytest.raises(ModelNotInstalledError) as info:
        BackgroundRemover().ensure_available()
    assert "`ml-images models install`" in str(info.value)
    assert str(empty_model_home / "models" / "u2netp" / "u2netp.onnx") in str(info.value)
    assert no_downloads == []


def test_a_present_file_is_used_for_other_models_too(empty_model_home, no_downloads):
    target = empty_model_home / "models" / "silueta" / "silueta.onnx"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"placeholder")  # presence is what rembg checks; no checksum is known for it here
    remover = BackgroundRemover("silueta")
    remover.ensure_available()
    assert remover.model_path() == target
    assert no_downloads == []


def test_damaged_u2netp_is_refused(empty_model_home):
    target = empty_model_home / "models" / "u2netp" / "u2netp.onnx"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"not the model")
    with pytest.raises(ModelNotInstalledError, match="damaged"):
        BackgroundRemover().ensure_available()


@pytest.mark.parametrize("name", ["no-such-model", "sam", "u2net_custom", "withoutbg"])
def test_models_that_cannot_serve_the_pipeline_are_configuration_errors(name):
    with pytest.raises(ConfigurationError, match="ML_IMAGES_REMBG_MODEL"):
        BackgroundRemover(name).ensure_available()


# Forked in a fresh interpreter with no other thread: forking the test process itself (moto's server thread, the
# heartbeat and download pools of earlier tests) can leave a lock held in the child and hang it.
_FORK_PROBE = """
import os
from ml_images.processing.background import get_shared_remover

parent = get_shared_remover("u2netp")
parent.load()
read_end, write_end = os.pipe()
pid = os.fork()
if pid == 0:  # child: only look, then leave without running any cleanup
    child = get_shared_remover("u2netp")
    os.write(write_end, b"fresh" if child is not parent and not child.loaded else b"inherited")
    os._exit(0)
os.close(write_end)
answer = os.read(read_end, 16)
os.waitpid(pid, 0)
print(answer.decode(), get_shared_remover("u2netp") is parent and parent.loaded)
"""


def test_a_forked_child_does_not_inherit_the_shared_session():
    done = subprocess.run([sys.executable, "-c", _FORK_PROBE], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["fresh", "True"]
