"""The allocator settings: a freed tile-sized array's pages are reused, not faulted in again."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from enhance_ops import allocator

_FAULTS_ON_REUSE = """
import resource, sys
import numpy as np
from enhance_ops import allocator
if sys.argv[1] == "tuned":
    assert allocator.keep_freed_memory()
np.ones(20 << 18, np.float32)  # 20 MB, touched, freed
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
np.ones(20 << 18, np.float32)  # the same size again
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(script: str, *args: str, env: dict[str, str] | None = None) -> int:
    """The page faults ``script`` prints, run in a fresh process (glibc's settings are per process)."""
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, check=True,
                          env={**os.environ, **(env or {})})
    return int(done.stdout.strip())


def test_a_freed_tile_sized_array_is_reused_without_page_faults() -> None:
    # glibc's defaults: fresh memory, faulted in page by page (5120 faults of 4 KiB, or
    # about 500 where transparent huge pages back part of it)
    assert _faults(_FAULTS_ON_REUSE, "default") >= 100
    assert _faults(_FAULTS_ON_REUSE, "tuned") <= 5  # the freed pages, reused


_FAULTS_IN_A_SECOND_THREAD = """
import resource, sys, threading
import numpy as np
from enhance_ops import allocator
assert allocator.keep_freed_memory()
np.ones(20 << 18, np.float32)  # 20 MB in the main thread's arena, freed
freed, finish, faults = threading.Event(), threading.Event(), []

def lane():  # a thread that has freed its own array and lives on, as a strip lane does
    np.ones(20 << 18, np.float32)
    freed.set()
    finish.wait()

def another():
    before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
    np.ones(20 << 18, np.float32)
    faults.append(resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before)

first = threading.Thread(target=lane)
first.start()
freed.wait()
second = threading.Thread(target=another)
second.start()
second.join()
finish.set()
first.join()
print(faults[0])
"""


def test_a_thread_reuses_the_pages_other_threads_freed() -> None:
    """With an arena of its own, a third thread faulted in fresh pages while two arenas held
    freed ones: what made a shard of large scans peak 0.24 GB higher."""
    assert _faults(_FAULTS_IN_A_SECOND_THREAD) <= 5
    assert _faults(_FAULTS_IN_A_SECOND_THREAD, env={"MALLOC_ARENA_MAX": "8"}) >= 100  # the user's setting wins


def test_glibc_variables_set_by_the_user_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "131072")
    allocator.keep_freed_memory.cache_clear()
    try:
        assert allocator.keep_freed_memory() is False
    finally:
        allocator.keep_freed_memory.cache_clear()
