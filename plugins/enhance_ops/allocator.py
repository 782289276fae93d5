"""glibc malloc settings for a process that enhances large images.

Tiled SR and the strip-wise stages allocate and free arrays of 1-60 MB over and over: each
tile's network output, each strip's temporaries. With glibc's defaults such arrays end up
mmapped, or the heap is trimmed once they are freed, so every tile and every strip gets
fresh pages that the kernel zeroes and maps on first touch. On the VM the benchmarks ran on
that was 15-19 % of a 1024² image's time at x4 (docs/benchmarks.md). Keeping them in the
heap lets the next tile reuse the same pages; arrays above ``mmap_threshold`` (an output
image, hundreds of MB) are still mapped apart and go back to the system when freed.

Kept pages stay in the arena of the thread that freed them, and glibc gives threads arenas
of their own (up to 8 per core): the strip lanes and a shard's fetch and write threads each
kept their own, and a shard of three 20-Mpx scans peaked 0.24 GB higher for it
(docs/benchmarks.md, *Memory on a large scan*). With two arenas the threads reuse each
other's pages; the chain's time moved by at most 3 % either way in A/B runs.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
from functools import lru_cache

_M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8


@lru_cache(maxsize=1)
def keep_freed_memory(mmap_threshold: int = 64 << 20, trim_threshold: int = 1 << 30, arenas: int = 2) -> bool:
    """Set both thresholds and the number of arenas once per process; False (nothing changed)
    off glibc, or when the process was started with glibc's own ``MALLOC_*_THRESHOLD_``
    variables, which then win (as ``MALLOC_ARENA_MAX`` does over ``arenas``)."""
    if any(os.environ.get(v) for v in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")):
        return False
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    if not os.environ.get("MALLOC_ARENA_MAX") and not mallopt(_M_ARENA_MAX, arenas):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, mmap_threshold)) and bool(mallopt(_M_TRIM_THRESHOLD, trim_threshold))
