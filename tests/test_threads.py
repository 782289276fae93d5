"""numpy's BLAS on one thread: no BLAS thread left spinning on the cores torch's threads need."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

# After a BLAS call, how much CPU does the process burn while its only working thread sleeps?
_CPU_WHILE_IDLE = """
import resource, sys, time
import numpy as np
import torch
from threadpoolctl import threadpool_info
from enhance_ops import threads
torch_threads = torch.get_num_threads()
if sys.argv[1] == "limited":
    threads.single_threaded_blas()
blas = {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}
np.vdot(np.ones(1_000_000), np.ones(1_000_000))  # PSNR's sum of squares is such a call
usage = lambda: sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
before = usage()
time.sleep(0.2)
print(usage() - before, max(blas), torch.get_num_threads() == torch_threads)
"""


def _cpu_while_idle(mode: str) -> tuple[float, int, bool]:
    """CPU seconds the process used in a 0.2 s sleep after a BLAS call, its BLAS threads, and
    whether torch kept its thread count."""
    done = subprocess.run([sys.executable, "-c", _CPU_WHILE_IDLE, mode], capture_output=True, text=True, check=True)
    cpu, blas, torch_kept = done.stdout.split()
    return float(cpu), int(blas), torch_kept == "True"


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: BLAS runs one thread anyway")
def test_by_default_a_blas_thread_spins_after_the_call() -> None:
    # what the setting is for: OpenBLAS's second thread keeps a core busy after the call, for 2**28
    # time-stamp-counter ticks (its THREAD_TIMEOUT): 0.077-0.134 s on a 2-3.5 GHz counter, so
    # the bound is half the shortest, far above the limited case's fraction of a millisecond
    cpu, blas, _ = _cpu_while_idle("default")
    assert blas >= 2 and cpu > 0.05


def test_with_the_limit_nothing_spins_and_torch_keeps_its_threads() -> None:
    cpu, blas, torch_kept = _cpu_while_idle("limited")
    assert blas == 1 and cpu < 0.05 and torch_kept


def test_a_chain_sets_it_up() -> None:
    from threadpoolctl import threadpool_info

    from enhance_ops.chain.pipeline import Chain

    Chain("fidelity")
    assert {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"} == {1}
