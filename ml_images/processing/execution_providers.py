"""ONNX Runtime execution providers for background removal (``ML_IMAGES_ONNX_PROVIDERS``).

The default is the CPU. A machine with a GPU asks for e.g. ``CUDAExecutionProvider,CPUExecutionProvider`` with the
GPU build of onnxruntime installed (README, "Background-removal model"). A requested provider that this
onnxruntime build does not have, or that a session did not take up (ONNX Runtime falls back to the CPU on its own
when the GPU libraries fail to load), stops the run with a configuration error instead of running on the CPU
unnoticed.
"""

from __future__ import annotations

from collections.abc import Sequence

from ml_images.errors import ConfigurationError

ONNX_PROVIDERS_ENV = "ML_IMAGES_ONNX_PROVIDERS"
CPU = "CPUExecutionProvider"
DEFAULT_PROVIDERS: tuple[str, ...] = (CPU,)


def parse_providers(raw: str | None) -> tuple[str, ...]:
    """``CUDAExecutionProvider,CPUExecutionProvider`` → a tuple in order of preference; blank → the CPU."""
    if raw is None or not raw.strip():
        return DEFAULT_PROVIDERS
    names = tuple(dict.fromkeys(name.strip() for name in raw.split(",") if name.strip()))
    bad = [n for n in names if not n.isidentifier() or not n.endswith("ExecutionProvider")]
    if bad:
        raise ConfigurationError(
            f"{ONNX_PROVIDERS_ENV}: {', '.join(repr(b) for b in bad)} is not an ONNX Runtime execution provider name "
            "(e.g. CUDAExecutionProvider,CPUExecutionProvider)"
        )
    return names


def available_providers() -> list[str]:
    import onnxruntime as ort

    return list(ort.get_available_providers())


def check_available(requested: Sequence[str], available: Sequence[str] | None = None) -> None:
    """Every requested provider must be in this onnxruntime build."""
    have = list(available) if available is not None else available_providers()
    missing = [name for name in requested if name not in have]
    if missing:
        raise ConfigurationError(
            f"{ONNX_PROVIDERS_ENV} asks for {', '.join(missing)}, which this onnxruntime build does not have "
            f"(it has {', '.join(have) or 'none'}); install the matching onnxruntime build (e.g. onnxruntime-gpu "
            "for CUDAExecutionProvider) or unset the variable to use the CPU"
        )


def check_taken_up(requested: Sequence[str], active: Sequence[str]) -> None:
    """The session runs on the first requested provider (ONNX Runtime may silently fall back to the next)."""
    if requested and requested[0] not in active:
        raise ConfigurationError(
            f"{ONNX_PROVIDERS_ENV}: the model session did not start on {requested[0]} (it runs on "
            f"{', '.join(active) or 'nothing'}): its libraries failed to load; see the onnxruntime log above"
        )
