"""A process that stops making progress is killed, so that the next attempt can leave out what it was stuck on.

A decoder caught in a loop by a crafted file, or a deadlock, would hold a shard's task (or a
local run) for ever: Airflow's ``execution_timeout`` raises in the task's main thread, which a
call stuck in native code never returns to, and with one run of a DAG at a time every later
night would wait behind it. So the work beats at the end of each stage of each image and after
each tile, and when nothing has beaten for ``limit_s`` the watchdog's thread prints where every
thread is and calls its ``on_stall``, which records the stall and kills the process with
SIGKILL, as the kernel's OOM killer would: what comes next is a death's (``airflow.attempts``
for a shard's retry, ``run_journal`` for the next local run), and the image the process is
stuck on alone fails. Native code that never lets go of the interpreter would keep that thread
from running too, so faulthandler's own thread, which needs no interpreter, ends the process at
twice the limit, printing the same.
"""
from __future__ import annotations

import contextlib
import faulthandler
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from types import TracebackType

_STDERR = 2  # the descriptor: a task runner may have put another object in sys.stderr, which faulthandler cannot use


def stall_limit(text: str | None = None) -> float | None:
    """``text``, else ``$ENHANCE_STALL_S``: seconds without progress before the process is
    killed (default 1800, beyond decoding the largest master or one tile on the slowest
    worker); 0: never. Anything else is refused here, before any work: it had surfaced as a
    traceback once the run was under way."""
    raw = os.environ.get("ENHANCE_STALL_S", "1800") if text is None else text
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not seconds >= 0 or math.isinf(seconds):
        raise ValueError(f"a stall limit is a number of seconds, 0 for none, not {raw!r} (--stall-s, ENHANCE_STALL_S)")
    return seconds or None


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
        self._arming = threading.Lock()  # a beat racing the watch's end arms nothing after it
        self._thread = threading.Thread(target=self._watch, name="watchdog", daemon=True)

    def beat(self) -> None:
        """Progress; after the watch has ended, nothing (it would arm faulthandler's timer again,
        with nobody left to stop it)."""
        with self._arming:
            if self._stop.is_set():
                return
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
        with self._arming:
            self._stop.set()
            faulthandler.cancel_dump_traceback_later()
        self._thread.join()


@contextlib.contextmanager
def watched(limit_s: float | None, on_stall: Callable[[float], None]) -> Iterator[Callable[[], None]]:
    """The beat of work a ``Watchdog`` watches over ``limit_s`` (None: a beat that does nothing)."""
    if limit_s is None:
        yield lambda: None
        return
    with Watchdog(limit_s, on_stall) as dog:
        yield dog.beat


def kill_this_process() -> None:
    """SIGKILL, as the OOM killer sends: nothing more runs, so what was recorded is what the next attempt reads."""
    os.kill(os.getpid(), signal.SIGKILL)
