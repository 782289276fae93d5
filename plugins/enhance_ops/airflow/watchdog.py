"""A shard that stops making progress is killed, so that its retry can leave out what it was stuck on.

A decoder caught in a loop by a crafted file, or a deadlock, would hold a shard's task for
ever: Airflow's ``execution_timeout`` raises in the task's main thread, which a call stuck in
native code never returns to, and with one run of a DAG at a time every later night would
wait behind it. So the shard beats at the end of each stage of each image and after each
tile, and when nothing has beaten for ``limit_s`` the watchdog's thread prints where every
thread is and kills the process with SIGKILL, as the kernel's OOM killer would: the retry then
takes the images that were in flight one at a time, and the one it is stuck on alone fails on
the next (``attempts``). Native code that never lets go of the interpreter would keep that
thread from running too, so faulthandler's own thread, which needs no interpreter, ends the
process at twice the limit, printing the same.
"""
from __future__ import annotations

import faulthandler
import threading
import time
from collections.abc import Callable
from types import TracebackType

_STDERR = 2  # the descriptor: a task runner may have put another object in sys.stderr, which faulthandler cannot use


class Watchdog:
    """``on_stall(idle_s)`` from a thread of its own once ``beat`` has not been called for
    ``limit_s``, after every thread's stack is printed to stderr; the process's exit (status 1)
    at twice that, whatever holds the interpreter. One at a time in a process (faulthandler's
    timer is the process's)."""

    def __init__(self, limit_s: float, on_stall: Callable[[float], None]) -> None:
        if limit_s <= 0:
            raise ValueError(f"a watchdog's limit must be positive, not {limit_s}")
        self.limit_s = limit_s
        self._on_stall = on_stall
        self._last = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="watchdog", daemon=True)

    def beat(self) -> None:
        self._last = time.monotonic()
        faulthandler.dump_traceback_later(2 * self.limit_s, exit=True, file=_STDERR)

    def _watch(self) -> None:
        while not self._stop.wait(min(10.0, self.limit_s / 4)):
            idle = time.monotonic() - self._last
            if idle > self.limit_s:
                faulthandler.dump_traceback(file=_STDERR, all_threads=True)
                self._on_stall(idle)
                return

    def __enter__(self) -> Watchdog:
        self.beat()
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()
        faulthandler.cancel_dump_traceback_later()
