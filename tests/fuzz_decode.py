"""Damaged copies of the hostile corpus's sound files, read as a shard reads a master.

Run by ``test_fuzz.py`` in a process of its own, under an address-space limit: it prints
one JSON line per outcome that is not a specific ``EnhanceError`` (a bare exception, or a
memory failure the readers turned into a note or an error), and a final line of counts.
Mutations: bytes set at random (mostly in the headers), four-byte fields set to large
values (lengths and counts), cuts, and runs of zeros.
"""
from __future__ import annotations

import collections
import json
import logging
import random
import sys
import warnings

from hostile_corpus import build

from enhance_ops import codecs
from enhance_ops.errors import EnhanceError

LARGE = [b"\xff\xff\xff\xf0", b"\x00\x40\x00\x00", b"\x00\x00\x40\x00", b"\x10\x00\x00\x00"]


def damaged(seed: bytes, rng: random.Random) -> bytes:
    data = bytearray(seed)
    kind = rng.choice(["bytes", "large", "large", "cut", "zeros"])
    if kind == "bytes":
        for _ in range(rng.randint(1, 6)):
            data[rng.randrange(min(len(data), 400) if rng.random() < 0.7 else len(data))] = rng.randrange(256)
    elif kind == "large":
        at = rng.randrange(max(1, min(len(data), 512) - 4))
        data[at:at + 4] = rng.choice(LARGE)
    elif kind == "cut":
        del data[rng.randrange(1, len(data)):]
    else:
        at, length = rng.randrange(len(data)), rng.randint(1, 64)
        data[at:at + length] = bytes(len(data[at:at + length]))
    return bytes(data)


def main(seed: int, rounds: int) -> None:
    warnings.simplefilter("ignore")
    logging.disable(logging.CRITICAL)
    sound = [case.data for case in build().values() if case.expected == "ok"]
    rng, outcomes = random.Random(seed), collections.Counter()
    for _ in range(rounds):
        for original in sound:
            data = damaged(original, rng)
            try:
                notes = []
                for frame in codecs.pages(data).frames:
                    notes += codecs.decode(data, max_pixels=50_000_000, frame=frame).notes
                outcome = "ok"
                if any("MemoryError" in note for note in notes):
                    print(json.dumps({"memory": notes, "data": data.hex()}), flush=True)
            except EnhanceError as exc:
                outcome = type(exc).__name__
                if isinstance(exc.__cause__, MemoryError) or "MemoryError" in str(exc):
                    print(json.dumps({"memory": str(exc), "data": data.hex()}), flush=True)
            except Exception as exc:  # what the ledger would call an internal error
                outcome = "bare"
                print(json.dumps({"bare": f"{type(exc).__name__}: {exc}", "data": data.hex()}), flush=True)
            outcomes[outcome] += 1
    print(json.dumps({"outcomes": outcomes}))


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
