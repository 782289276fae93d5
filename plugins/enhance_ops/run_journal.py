"""What a local run into a folder is doing, so that a run its process dies in loses neither its
ledger rows nor the rest of the folder.

Ctrl-C and SIGTERM end a run cleanly, its ledger and report written; a decoder's native crash,
the OOM killer or SIGKILL writes nothing. The rerun then lost the dead run's rows, and died
again at the same image, every time. So a run keeps, in ``.enhance-ops/`` inside its output
folder: a lock (one run into a folder at a time), the image it holds, and its ledger rows as
it goes. The next run finishes the dead one's ledger and report and tries the image it died
holding once more; content two runs died holding is failed from then on, and every run after completes.
"""
from __future__ import annotations

import datetime as dt
import fcntl
import json
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .batch import PlanError

log = logging.getLogger(__name__)

FOLDER = ".enhance-ops"
DEATHS_TO_LEAVE_OUT = 2  # one death may be the machine's (a reboot, a kill), not the image's


@dataclass(frozen=True)
class DeadRun:
    run_id: str
    logical_date: dt.date
    ledger: str | None  # the ledger folder it was to write its rows to
    report: str | None  # the file it was to write its report to
    gate: list[str]  # its --gate settings, to judge its rows as it would have
    rows: list[dict[str, Any]]  # one per image it finished, kept only when it had a ledger or a report
    in_hand: str | None  # the input it died holding


class Journal:
    """The state of the run into one output folder, kept in that folder as the run goes."""

    def __init__(self, output_folder: Path) -> None:
        self.root = output_folder / FOLDER
        self._lock = _lock(self.root / "lock")
        self._rows = self.root / "rows"
        self._state: dict[str, Any] = {"killers": {}}
        self._kept = 0
        self.broken: str | None = None  # why the journal stopped being written, if it did
        self.dead = self._last_run()

    def _last_run(self) -> DeadRun | None:
        """The run before this one, when it died: a run that ended cleanly took its own out."""
        try:
            state = json.loads((self.root / "state.json").read_text())
            self._state["killers"] = dict(state["killers"])
            if "run_id" not in state:
                return None
            if state["in_hand"] is not None:
                held = self._state["killers"].setdefault(state["in_hand"]["sha256"], {"deaths": 0})
                held.update(source=state["in_hand"]["source"], deaths=held["deaths"] + 1)
            # a journal from before reports were kept names none
            return DeadRun(state["run_id"], dt.date.fromisoformat(state["logical_date"]), state["ledger"],
                           state.get("report"), state["gate"], self._kept_rows(),
                           state["in_hand"] and state["in_hand"]["source"])
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as exc:  # written by hand: what it says of the images is unknown
            raise PlanError(f"{self.root / 'state.json'} cannot be read ({type(exc).__name__}: {exc}); "
                            f"delete {self.root} to run into this folder") from None

    def _kept_rows(self) -> list[dict[str, Any]]:
        from .quality import ledger

        return [row for part in sorted(self._rows.glob("*.parquet")) for row in ledger.from_parquet(part.read_bytes())]

    def begin(self, run_id: str, logical_date: dt.date, ledger: str | None, gate: list[str], *,
              report: str | None = None) -> None:
        """This run from now on; the dead one's rows, finished by the caller, are let go."""
        shutil.rmtree(self._rows, ignore_errors=True)
        self._state.update(run_id=run_id, logical_date=logical_date.isoformat(), ledger=ledger, report=report,
                           gate=gate, in_hand=None, pid=os.getpid())
        self._write(self._rows.mkdir)
        self._save()

    def deaths(self, sha256: str) -> int:
        """How many runs into this folder died holding this content."""
        return int(self._state["killers"].get(sha256, {}).get("deaths", 0))

    def left_out(self, sha256: str) -> bool:
        return self.deaths(sha256) >= DEATHS_TO_LEAVE_OUT

    def hold(self, source: Path, sha256: str) -> None:
        self._state["in_hand"] = {"source": str(source), "sha256": sha256}
        self._save()

    def release(self, sha256: str) -> None:
        """The image held is done with, whatever came of it: it did not take the run down."""
        self._state["in_hand"] = None
        self._state["killers"].pop(sha256, None)
        self._save()

    def keep(self, row: dict[str, Any]) -> None:
        from .quality import ledger

        path = self._rows / f"{self._kept:06d}.parquet"
        tmp = path.with_suffix(".tmp")
        self._write(lambda: (tmp.write_bytes(ledger.to_parquet([row])), os.replace(tmp, path)))
        self._kept += 1

    def close(self) -> None:
        """The run ended cleanly (done, or stopped by Ctrl-C or SIGTERM with its ledger written).
        The folder goes, unless it names content that killed two runs, to leave out again."""
        if self._state["killers"]:
            shutil.rmtree(self._rows, ignore_errors=True)
            self._state = {"killers": self._state["killers"]}
            self._save()
        else:
            shutil.rmtree(self.root)  # the lock file with it, while still held
        os.close(self._lock)

    def leave(self) -> None:
        """The run ended without writing its ledger: its state stays, for the next run to finish."""
        os.close(self._lock)

    def _save(self) -> None:
        path = self.root / "state.json"
        tmp = path.with_suffix(".tmp")
        self._write(lambda: (tmp.write_text(json.dumps(self._state, indent=1)), os.replace(tmp, path)))

    def _write(self, write: Callable[[], object]) -> None:
        """A write to the journal; where the disk refuses one (full, a file size limit) the run
        goes on without it, as its images may still be written: the state is taken away, so
        that the next run blames no image by a stale one."""
        if self.broken:
            return
        try:
            write()
        except OSError as exc:
            self.broken = exc.strerror or str(exc)
            (self.root / "state.json").unlink(missing_ok=True)  # an unlink needs no space
            log.warning("the run's journal in %s cannot be written (%s): were this run to die, the next would not "
                        "know what it held, nor write its ledger", self.root, self.broken)


def _lock(path: Path) -> int:
    """An exclusive lock on ``path``, held until the descriptor is closed or the process dies."""
    while True:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise PlanError(f"{path.parent.parent} cannot be written into: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            owner = _owner(path.parent / "state.json")
            raise PlanError(f"another run{owner} is writing into {path.parent.parent}: runs into one folder take "
                            f"turns (choose another output folder to run beside it)") from None
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)  # the run before took the folder away after this one opened its lock: again


def _owner(state: Path) -> str:
    try:
        run = json.loads(state.read_text())
        return f" ({run['run_id']}, process {run['pid']})"
    except (OSError, ValueError, KeyError, TypeError):
        return ""
