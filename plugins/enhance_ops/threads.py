"""numpy's BLAS on one thread, so that it leaves the cores to torch.

The chain's numpy work is element-wise or a few small products (a dot product in PSNR, 3x3
colour matrices), where more BLAS threads gain nothing. But OpenBLAS's threads, numpy's and
the copy inside OpenCV's wheel, keep spinning for a while after each call, and on a worker
whose cores torch's own threads already use, that spinning steals the next network's CPU
time: an LPIPS run straight after PSNR's dot product took 95-133 ms with two BLAS threads
and 47-53 ms with one, interleaved in one process (docs/benchmarks.md).
"""
from __future__ import annotations

from functools import lru_cache

from threadpoolctl import threadpool_limits


@lru_cache(maxsize=1)
def single_threaded_blas() -> None:
    """Once per process; torch's OpenMP threads are not BLAS and keep their count."""
    threadpool_limits(limits=1, user_api="blas")
