"""Every benchmark script loads and answers ``--help`` without running: three that took no
options had run in full on any argument, ``--help`` too, and written over their results."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
# every script but the two that only read the results (and so may run on any argument), and the shared modules
SCRIPTS = sorted(p.name for p in (PROJECT / "bench").glob("*.py")
                 if p.name not in ("plot.py", "tables.py") and 'if __name__ == "__main__":' in p.read_text())


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_benchmark_answers_help_and_leaves_its_results_alone(script: str) -> None:
    results = {p: p.stat().st_mtime_ns for p in (PROJECT / "bench" / "results").iterdir()}
    done = subprocess.run([sys.executable, str(PROJECT / "bench" / script), "--help"], capture_output=True, text=True,
                          cwd=PROJECT, env={**os.environ, "PYTHONPATH": os.pathsep.join(
                              [str(PROJECT / "plugins"), str(PROJECT / "bench")])}, timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("usage: "), done.stderr[-2000:]
    assert {p: p.stat().st_mtime_ns for p in (PROJECT / "bench" / "results").iterdir()} == results
