"""The start of a test's worker or run script (Python source): from it on, ``codecs.decode``
kills the process with SIGSEGV on a file whose bytes end in ``SEGV``, as a decoder's native
crash would. No sound decoder here crashes on a file any more, so the crash is staged."""
from __future__ import annotations

PRELUDE = """
import os, signal, sys
from enhance_ops import codecs
decode = codecs.decode


def crashing(data, **options):
    if data.endswith(b"SEGV"):
        os.kill(os.getpid(), signal.SIGSEGV)
    return decode(data, **options)


codecs.decode = crashing
"""
