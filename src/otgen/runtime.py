"""Process-level settings that make CPU training faster; opt-in (the command line turns them on).

glibc serves every allocation above its mmap threshold (128 KiB, raised adaptively) with a fresh
``mmap`` and returns it with ``munmap``, and it trims the heap back to the OS eagerly. Langevin
steps allocate and free many activation-sized tensors (1 MiB for 1024 chains x 256 units), so each
step can pay for page faults on fresh memory: we measured the same 3x256 MLP step at 6.7 ms or at
8.8-9.8 ms from one run to the next. Keeping such blocks on the heap makes it a steady 6.7-6.9 ms
(BENCHMARKS.md).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def keep_freed_memory(mmap_threshold: int = 32 * 1024 * 1024, trim_threshold: int = 512 * 1024 * 1024) -> bool:
    """Ask glibc to serve blocks below ``mmap_threshold`` from the heap and to keep up to
    ``trim_threshold`` bytes of freed heap. Returns False (and does nothing) off glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, mmap_threshold)) and \
            bool(libc.mallopt(_M_TRIM_THRESHOLD, trim_threshold))
    except (OSError, AttributeError):
        return False
