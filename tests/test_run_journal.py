"""The journal a local run keeps in its output folder, across real process deaths."""
from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

from enhance_ops.run_journal import Journal

PROJECT = Path(__file__).resolve().parents[1]
_DIE = """
import datetime as dt, os, sys
from pathlib import Path
from enhance_ops.run_journal import Journal
journal = Journal(Path(sys.argv[1]))
journal.begin("night", dt.date(2026, 12, 1), None, [])
journal.hold(Path("scan.tif"), sys.argv[2])
if sys.argv[3] == "after":
    journal.release(sys.argv[2])
os._exit(9)
"""


def _die(folder: Path, digest: str, when: str) -> None:
    done = subprocess.run([sys.executable, "-c", _DIE, str(folder), digest, when], timeout=60,
                          env={**os.environ, "PYTHONPATH": str(PROJECT / "plugins")})
    assert done.returncode == 9


def _clean_run(folder: Path, survives: str | None = None) -> None:
    journal = Journal(folder)
    journal.begin("next", dt.date(2026, 12, 2), None, [])
    if survives:
        journal.hold(Path("scan.tif"), survives)
        journal.release(survives)
    journal.close()


def test_only_a_death_with_the_image_in_hand_counts_against_it_and_a_run_it_survives_clears_it(tmp_path: Path) -> None:
    """One death may be the machine's (a reboot, a kill from outside): content is left out only
    after two runs died holding it, with no run in between that got through it."""
    _die(tmp_path, "aa", "after")  # died between images: nothing is blamed
    journal = Journal(tmp_path)
    assert journal.dead is not None and journal.dead.run_id == "night" and journal.dead.in_hand is None
    assert journal.deaths("aa") == 0
    journal.begin("next", dt.date(2026, 12, 2), None, [])
    journal.close()
    assert not tmp_path.joinpath(".enhance-ops").exists()  # a clean end with nothing to leave out leaves nothing

    _die(tmp_path, "aa", "holding")
    _clean_run(tmp_path, survives="aa")  # tried once more, and it got through
    _die(tmp_path, "aa", "holding")
    journal = Journal(tmp_path)
    assert journal.dead is not None and journal.dead.in_hand == "scan.tif"
    assert journal.deaths("aa") == 1 and not journal.left_out("aa")
    journal.begin("next", dt.date(2026, 12, 2), None, [])
    journal.close()

    _die(tmp_path, "aa", "holding")
    _die(tmp_path, "aa", "holding")
    _clean_run(tmp_path)
    journal = Journal(tmp_path)
    assert journal.dead is None and journal.left_out("aa") and not journal.left_out("bb")


def test_a_dead_runs_report_path_is_kept_and_a_journal_from_before_reports_were_kept_still_reads(
        tmp_path: Path) -> None:
    """The next run writes a dead run's report where that run was to write it; a journal left by
    a version that kept no report path is still read (its dead run had its report unwritten)."""
    import json

    journal = Journal(tmp_path)
    journal.begin("night", dt.date(2026, 12, 1), "/archive/ledger", ["min_psnr=30"], report="/archive/night.html")
    journal.leave()  # as a process that died: its state stays
    reread = Journal(tmp_path)
    dead = reread.dead
    reread.leave()
    assert dead is not None and (dead.ledger, dead.report, dead.gate) == ("/archive/ledger", "/archive/night.html",
                                                                          ["min_psnr=30"])
    state_file = tmp_path / ".enhance-ops" / "state.json"
    state = json.loads(state_file.read_text())
    del state["report"]
    state_file.write_text(json.dumps(state))
    old = Journal(tmp_path)
    assert old.dead is not None and old.dead.run_id == "night" and old.dead.report is None
    old.leave()
