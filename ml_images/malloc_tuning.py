"""glibc heap settings for a long-lived process that decodes and encodes many pictures on several threads.

Measured with `python -m benchmarks --only end_to_end --products 100` (4 batch runs in one `ml-images fetch`
process, 2026-11-26): with glibc's defaults the process's RSS grew by about 150 MB per batch run (peak 1.38-1.66 GiB
after 4 runs) although every run frees what it allocated: each thread's freed picture buffers (3-6 MB each) stay in
its own malloc arena, and after the first large free glibc raises its mmap threshold, so later buffers come from
those arenas too and fragment them. Two arenas and a fixed 1 MiB mmap threshold (large buffers always mapped, and
returned to the system when freed) gave a peak of 853 MiB for the same run. docs/decisions.md §3 has the figures.

glibc only (Linux); elsewhere nothing is changed. Environment variables set by the operator
(`MALLOC_ARENA_MAX`, `MALLOC_MMAP_THRESHOLD_`) win: glibc read them at start-up and they are not overridden here.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

# mallopt(3) parameters (malloc.h).
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8

ARENA_MAX = 2
MMAP_THRESHOLD_BYTES = 1 << 20

_applied = False


def limit_heap_fragmentation() -> bool:
    """Applies the settings once per process (before worker threads start is best); True when glibc took them."""
    global _applied
    if _applied:
        return True
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc: nothing to tune
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = True
    if "MALLOC_ARENA_MAX" not in os.environ:
        ok = mallopt(M_ARENA_MAX, ARENA_MAX) == 1 and ok
    if "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        ok = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1 and ok
    _applied = ok
    return ok
