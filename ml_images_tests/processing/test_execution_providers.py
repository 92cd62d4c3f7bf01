"""``ML_IMAGES_ONNX_PROVIDERS``: a requested provider this machine lacks stops the run clearly, never a silent CPU."""

from __future__ import annotations

import pytest
from PIL import Image

from ml_images.errors import ConfigurationError
from ml_images.processing.background import BackgroundRemover, get_shared_remover
from ml_images.processing.execution_providers import (
    DEFAULT_PROVIDERS,
    available_providers,
    check_available,
    check_taken_up,
    parse_providers,
)
from ml_images.settings import Settings


def test_the_cpu_is_the_default_and_names_are_parsed_in_order() -> None:
    assert parse_providers(None) == parse_providers("  ") == DEFAULT_PROVIDERS == ("CPUExecutionProvider",)
    assert parse_providers("CUDAExecutionProvider, CPUExecutionProvider,CUDAExecutionProvider") == (
        "CUDAExecutionProvider",
        "CPUExecutionProvider",
    )
    assert Settings.from_env({"ML_IMAGES_ONNX_PROVIDERS": "CPUExecutionProvider"}).onnx_providers == DEFAULT_PROVIDERS


@pytest.mark.parametrize("raw", ["cuda", "CUDAExecutionProvider;rm -rf", "GPU"])
def test_a_name_that_is_not_a_provider_is_a_configuration_error(raw: str) -> None:
    with pytest.raises(ConfigurationError, match="ML_IMAGES_ONNX_PROVIDERS"):
        Settings.from_env({"ML_IMAGES_ONNX_PROVIDERS": raw})


def test_a_provider_missing_from_this_build_names_what_there_is() -> None:
    assert "CPUExecutionProvider" in available_providers()
    check_available(DEFAULT_PROVIDERS)
    with pytest.raises(ConfigurationError) as raised:
        check_available(["CUDAExecutionProvider", "CPUExecutionProvider"])
    message = str(raised.value)
    assert "asks for CUDAExecutionProvider" in message
    assert "CPUExecutionProvider" in message.split("it has", 1)[1]
    assert "onnxruntime-gpu" in message


def test_a_session_that_fell_back_to_the_cpu_is_refused() -> None:
    check_taken_up(["CUDAExecutionProvider", "CPUExecutionProvider"], ["CUDAExecutionProvider", "CPUExecutionProvider"])
    with pytest.raises(ConfigurationError, match="did not start on CUDAExecutionProvider"):
        check_taken_up(["CUDAExecutionProvider", "CPUExecutionProvider"], ["CPUExecutionProvider"])


def test_the_remover_refuses_before_building_a_session() -> None:
    remover = BackgroundRemover(providers=("CUDAExecutionProvider", "CPUExecutionProvider"))
    with pytest.raises(ConfigurationError, match="CUDAExecutionProvider"):
        remover.remove(Image.new("RGB", (64, 64), "white"))
    assert not remover.loaded


def test_the_cpu_session_runs_on_the_cpu() -> None:
    remover = get_shared_remover("u2netp", DEFAULT_PROVIDERS)
    out = remover.remove(Image.new("RGB", (64, 64), "white"))
    assert out.mode == "RGBA"
    assert "CPUExecutionProvider" in remover._get_session().inner_session.get_providers()
