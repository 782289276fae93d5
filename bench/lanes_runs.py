"""What the benchmarks of work spread over the strip lanes share: their two settings (this
machine's lanes, and one), taken in turn, their command line and their report.

Each setting goes first in every other round: the first run after another case's pays for
fresh memory (the decoder of 0b20a14, which has no lanes, read a CMYK scan 0.5 s slower first).
"""
from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from cpu_inference import cpu_name, save_results

import enhance_ops
from enhance_ops.chain import strips


def settings() -> dict[str, str]:
    """Setting name → ``ENHANCE_STRIP_LANES``: this machine's lanes, and one."""
    return {f"{strips.lanes()} lanes": str(strips.lanes()), "1 lane": "1"}


def in_turn(chosen: dict[str, str], rep: int) -> Iterator[str]:
    """The settings of round ``rep``, each set in the environment while its name is out."""
    try:
        for name, lanes in list(chosen.items())[:: 1 if rep % 2 else -1]:
            os.environ[strips.LANES_VARIABLE] = lanes
            yield name
    finally:
        os.environ.pop(strips.LANES_VARIABLE, None)


def timed(call: Callable[[], object]) -> float:
    """Seconds ``call`` took."""
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def save(name: str, rows: list[dict[str, object]], *, size: str, reps: int) -> Path:
    """bench/results/<name>.json: the rows, the machine, and which ``enhance_ops`` ran."""
    return save_results(name, {"machine": f"{cpu_name()}, {len(os.sched_getaffinity(0))} cores", "size": size,
                               "code": str(next(iter(enhance_ops.__path__))), "reps": reps,
                               "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "rows": rows})


def main(doc: str, name: str, measure: Callable[[int], list[dict[str, object]]], line: Callable[[dict], str],
         size: str) -> None:
    """A benchmark's command line: ``--reps`` rounds of ``measure``, a ``line`` per row, saved as ``--name``."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--name", default=name, help="results file name (bench/results/NAME.json)")
    args = parser.parse_args()
    rows = measure(args.reps)
    for row in rows:
        print(line(row), flush=True)
    print(save(args.name, rows, size=size, reps=args.reps))
