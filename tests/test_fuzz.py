"""Damaged files end as specific errors or notes, within bounded memory (tests/fuzz_decode.py).

Fuzzing found a 67-byte EXIF block that took piexif 4.5 GB, a 349-byte PNG whose IDAT length
made OpenCV allocate 4 GB, a TIFF tile size that took 208 MB, and bare exceptions from OpenCV
and from a resolution tag read as text. The fixed seed replays the same 400 damaged copies of
each sound file every run, under a 6 GB address-space limit, so a reader that allocates by a damaged length
fails here with a MemoryError instead of taking a worker down.
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

from hostile_corpus import build

TESTS = Path(__file__).parent
ROUNDS = 400


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))


def test_damaged_copies_of_sound_files_end_as_specific_errors_in_bounded_memory() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(TESTS.parent / "plugins")])}
    run = subprocess.run([sys.executable, str(TESTS / "fuzz_decode.py"), "2026", str(ROUNDS)], env=env, cwd=TESTS.parent,
                         capture_output=True, text=True, timeout=600, preexec_fn=_limited)
    assert run.returncode == 0, run.stderr[-2000:]
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    outcomes = lines[-1]["outcomes"]
    assert lines[:-1] == []  # no bare exception, no memory failure
    sound = sum(case.expected == "ok" for case in build().values())
    assert sum(outcomes.values()) == ROUNDS * sound and outcomes["ok"] > 0 and outcomes["CorruptImageError"] > 0
