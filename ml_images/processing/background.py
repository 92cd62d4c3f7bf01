"""Background removal with rembg: one ONNX session per process and model, created lazily and shared.

Threads and memory. The pipeline processes two products at once in two threads that share one
``BackgroundRemover``; ONNX Runtime's ``InferenceSession.run`` is thread-safe. Two concurrent u2netp runs with one
intra-op thread each give the best raw throughput on 2 cores (docs/decisions.md §3: 3.3 first-images/s against 2.8
for one run at a time with 2 threads), but every concurrent run holds its own activations, about 290 MiB for
u2netp at 320×320 (measured here: +275 MiB for one run, +575 MiB for two). On top of the 232 MiB that
``import rembg`` costs, two concurrent runs peak at 830-880 MiB (870-925 MB), over the 900 MB budget of a worker
process; one run at a time peaks near 600 MiB whatever the number of threads.

Default: ``max_concurrent_runs=1`` with ``intra_op_threads = cores`` (2 here): the lowest latency per main
picture (~275 ms of ONNX) and bounded memory; the other thread's Pillow work still overlaps the inference. Only the
main picture of a product goes through the model, so the throughput given up is a few percent of a product's
machine time. ``BackgroundRemover(max_concurrent_runs=2)`` selects the concurrent layout (intra-op threads then
default to ``cores // 2``) when the memory is there; ``benchmarks/processing_costs.py`` prints both.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from ml_images.errors import ModelNotInstalledError
from ml_images.processing import model_provisioning as mp
from ml_images.processing.execution_providers import DEFAULT_PROVIDERS, check_available, check_taken_up

log = logging.getLogger(__name__)


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def default_intra_op_threads(max_concurrent_runs: int = 1) -> int:
    """The cores split between the inferences that may run at once (never more ORT threads than cores)."""
    return max(1, available_cpus() // max(1, max_concurrent_runs))


class BackgroundRemover:
    """Removes the background of a PIL image with rembg; RGBA out, alpha = the predicted mask.

    The session is built on first use (``import rembg`` alone costs about 1.4 s, the session about 0.1 s) and then
    reused for every image and product: never a session per image.
    """

    def __init__(
        self,
        model_name: str = mp.U2NETP,
        *,
        intra_op_threads: int | None = None,
        max_concurrent_runs: int = 1,
        allow_download: bool = False,
        providers: Sequence[str] = DEFAULT_PROVIDERS,
    ) -> None:
        if intra_op_threads is not None and intra_op_threads < 1:
            raise ValueError(f"intra_op_threads must be >= 1, got {intra_op_threads}")
        if max_concurrent_runs < 1:
            raise ValueError(f"max_concurrent_runs must be >= 1, got {max_concurrent_runs}")
        self.model_name = model_name
        self.max_concurrent_runs = max_concurrent_runs
        self.intra_op_threads = intra_op_threads or default_intra_op_threads(max_concurrent_runs)
        # Each inference in flight holds its own activations (~290 MiB for u2netp): this bounds the memory.
        self._runs = threading.BoundedSemaphore(max_concurrent_runs)
        # Off by default: a worker silently fetching 0.2-1 GB mid-run is a surprise; `ml-images models install`
        # is the explicit way. When on, a missing model goes through rembg's own downloader.
        self.allow_download = allow_download
        self.providers = tuple(providers)
        self._lock = threading.Lock()
        self._session: Any = None
        self._available = False

    def __repr__(self) -> str:
        return (
            f"BackgroundRemover(model_name={self.model_name!r}, intra_op_threads={self.intra_op_threads}, "
            f"max_concurrent_runs={self.max_concurrent_runs}, providers={list(self.providers)})"
        )

    def model_path(self) -> Path:
        """The model file rembg will load (or, when absent, where ``ml-images models install`` puts it)."""
        return mp.find_model_file(self.model_name) or mp.install_target(self.model_name)

    def ensure_available(self) -> None:
        """Raise ``ModelNotInstalledError`` unless the model file is in place. Never lets rembg reach the network
        unless ``allow_download`` is set: the file's presence is checked here, before rembg would call pooch."""
        if self._available:
            return
        mp.validate_model_name(self.model_name)
        status = mp.check_model(self.model_name)
        if status.path is None:
            if not self.allow_download:
                raise mp.missing_model_error(self.model_name)
            mp.install_with_rembg(self.model_name)
        elif status.md5_ok is False:
            raise ModelNotInstalledError(
                f"rembg model {self.model_name!r} at {status.path} is damaged (md5 {status.md5}, expected "
                f"{mp.expected_md5(self.model_name)}); run `{mp.install_command(self.model_name)}` to replace it"
            )
        self._available = True

    def load(self) -> None:
        """Build the session now (start-up, benchmarks) instead of on the first image."""
        self._get_session()

    @property
    def loaded(self) -> bool:
        return self._session is not None

    def _get_session(self) -> Any:
        session = self._session
        if session is not None:
            return session
        with self._lock:  # two threads asking at once must not build two sessions (two ~0.5 GB ORT arenas)
            if self._session is None:
                self.ensure_available()
                check_available(self.providers)
                import onnxruntime as ort
                from rembg import new_session

                options = ort.SessionOptions()
                options.intra_op_num_threads = self.intra_op_threads
                options.inter_op_num_threads = 1
                # The memory pattern pre-plans one block per concurrent Run(): with the two threads sharing this
                # session that held 1.05 GiB peak; without it tensors are freed as soon as they are dead and the
                # peak is 0.8 GiB, with no measurable change in inference time (A/B interleaved on this machine).
                options.enable_mem_pattern = False
                log.info("loading rembg model %s (%d intra-op threads)", self.model_name, self.intra_op_threads)
                session = new_session(self.model_name, sess_opts=options, providers=list(self.providers))
                check_taken_up(self.providers, session.inner_session.get_providers())
                self._session = session
            return self._session

    def remove(self, image: Image.Image) -> Image.Image:
        """RGBA copy of ``image`` whose alpha is the predicted mask; colours are kept (no darkened edges).

        Pass an already reduced copy: the model sees 320×320 whatever the input size, and everything else rembg
        does grows with the pixel count (docs/decisions.md §2).
        """
        from rembg import remove

        # putalpha keeps the original colours under a soft alpha; rembg's default cut-out multiplies them by the
        # mask, which leaves grey fringes once composited on white.
        session = self._get_session()
        with self._runs:
            result = remove(image, session=session, putalpha=True)
        if not isinstance(result, Image.Image):  # rembg returns the input's type; a PIL image went in
            raise TypeError(f"rembg returned {type(result).__name__}, expected a PIL image")
        return result if result.mode == "RGBA" else result.convert("RGBA")


_shared: dict[tuple[str, tuple[str, ...]], BackgroundRemover] = {}
_shared_lock = threading.Lock()


def _forget_after_fork() -> None:
    # An ONNX Runtime session does not survive fork(); a forked worker builds its own on first use.
    global _shared_lock
    _shared.clear()
    _shared_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


def get_shared_remover(model_name: str, providers: Sequence[str] = DEFAULT_PROVIDERS) -> BackgroundRemover:
    """One remover (hence one session) per process, model and providers, for Dagster resources and the CLI."""
    key = (model_name, tuple(providers))
    with _shared_lock:
        remover = _shared.get(key)
        if remover is None:
            remover = _shared[key] = BackgroundRemover(model_name, providers=providers)
        return remover
