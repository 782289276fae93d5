"""The start of a test's worker or run script (Python source): from it on, ``codecs.decode``
kills the process with SIGSEGV on a file whose bytes end in ``SEGV``, as a decoder's native
crash would, and never returns on one whose bytes end in ``HANG``, as a decoder caught in a
loop would (``HOLD``: the same, holding the interpreter's lock, so that no other Python thread
runs). No sound decoder here crashes or hangs on a file any more, so these are staged."""
from __future__ import annotations

PRELUDE = """
import ctypes, os, signal, sys, threading
from enhance_ops import codecs
decode = codecs.decode


def crashing(data, **options):
    if data.endswith(b"SEGV"):
        os.kill(os.getpid(), signal.SIGSEGV)
    if data.endswith(b"HANG"):
        threading.Event().wait()
    if data.endswith(b"HOLD"):
        ctypes.PyDLL(None).sleep(3600)  # libc's sleep, called with the GIL held
    return decode(data, **options)


codecs.decode = crashing
"""
