"""Damaged files end as specific errors or notes, within bounded memory (tests/fuzz_decode.py).

Fuzzing found a 67-byte EXIF block that took piexif 4.5 GB, a 349-byte PNG whose IDAT length
made OpenCV allocate 4 GB, a TIFF tile size that took 208 MB, and bare exceptions from OpenCV
and from a resolution tag read as text. The fixed seed replays the same 400 damaged copies of
each sound file every run, under a 6 GB address-space limit, so a reader that allocates by a damaged length
fails here with a MemoryError instead of taking a worker down.

Fuzzing the whole Enhancer, each copy written to a format chosen at random, found three more
internal errors: EXIF that left no room for the derivative's marking in a JPEG, a long thin
image the LPIPS measure could not take, and text that was not ASCII in a TIFF derivative.
"""
from __future__ import annotations

import json
import os
import random
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from fuzz_decode import damaged
from hostile_corpus import build

from enhance_ops import codecs
from enhance_ops.enhance import EnhanceOptions, Enhancer
from enhance_ops.errors import EnhanceError

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


def test_sound_files_and_damaged_copies_enhanced_into_every_format_end_as_derivatives_or_specific_errors() -> None:
    formats = [None, "PNG", "JPEG", "TIFF", "WEBP"]
    enhancers = {fmt: Enhancer(EnhanceOptions(preset="fidelity", overrides=("superres.scale=2", "superres.models=[]"),
                                              max_pixels=4_000_000, output_format=fmt)) for fmt in formats}
    sound = [case.data for case in build().values() if case.expected == "ok"]
    rng = random.Random(2026)
    runs = [(data, fmt) for data in sound for fmt in formats]  # every sound file into every format, then damage
    runs += [(damaged(data, rng), rng.choice(formats)) for _ in range(4) for data in sound]
    made = 0
    for data, fmt in runs:
        try:
            result = enhancers[fmt].enhance(data)
        except EnhanceError:
            continue
        except Exception as exc:  # an internal error in the ledger
            pytest.fail(f"{type(exc).__name__}: {exc} (into {fmt}; the master, hex: {data.hex()[:400]}…)")
        for frame in codecs.pages(result.data).frames:  # a whole, decodable derivative
            codecs.decode(result.data, frame=frame)
        made += 1
    assert made > 3 * len(sound)
