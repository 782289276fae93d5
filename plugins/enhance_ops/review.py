"""An archivist's decision after review: a quarantined derivative released or rejected.

The gate holds back what it cannot vouch for; a person who has looked at it decides. Releasing
moves the derivative from ``quarantine/<day>/…`` to ``enhanced/<day>/…`` (never over another
master's derivative: see ``airflow.tasks.publish``); rejecting deletes it (one changed by hand
since is kept), and the master is not enhanced again with the same settings (a forced run
with another preset can try again).
Where a forced run with other settings was held back and is rejected, the derivative that was
published before it, still in ``enhanced/``, is its master's derivative again.
Either way the decision is recorded where the pipeline records everything: a ledger row (a
copy of the image's row with the new verdict and key and a note of who decided and why,
under a run of its own) and the catalog, so that a catalog rebuilt from the ledger agrees.
What the gate found stays in the row's ``failed_expectations``. Masters elsewhere that are
copies of the same content (ledger status ``duplicate``) point at the derivative; they get
a row that follows it. Where the master has moved on (re-scanned, processed again) while
copies still point at its held derivative, the decision is theirs alone.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from .airflow.tasks import (ENHANCED, LEDGER, QUARANTINE, beside_copies, changed_by_hand, clear_of_hand_made,
                            copies_following, key_for, mark, put_ledger_parts, replaces_note, tagged)
from .catalog import Catalog
from .quality import ledger
from .storage import ObjectStore, safe_key


KEPT_BY_HAND = "kept: it was changed by hand after the pipeline put it there (delete it by hand if it should go)"


class ReviewError(ValueError):
    """The key is not a quarantined derivative awaiting review, or the decision lacks who or why."""


@dataclass(frozen=True)
class _Decision:
    """One call's decision: which, and when (its ledger rows are filed under a run of its own)."""

    name: str
    now: dt.datetime

    @property
    def run_id(self) -> str:
        return f"{self.name}-{self.now.strftime('%Y%m%dT%H%M%S%fZ')}"


@dataclass(frozen=True)
class _Held:
    """A derivative under review: its key, its catalog entry and its ledger row; or, where its
    master has moved on, the entry of the first copy that still points at it, no row, and a
    note saying why the decision is the copies' alone."""

    key: str
    entry: dict[str, Any]
    row: dict[str, Any] | None
    copies: list[dict[str, Any]]  # the catalog rows of the copies that point at it
    made_for: str  # the master the pipeline made it for (its mark)
    moved_on: str | None = None


def awaiting(catalog: Catalog) -> list[dict[str, Any]]:
    """The review queue, oldest day first: quarantined derivatives that are still their masters'
    current ones (not released, rejected or superseded by a later run), and those whose master
    has moved on (re-scanned, processed again) but that copies still point at, each listed
    under its first copy (the master to compare it with)."""
    own = catalog.current(catalog.quarantined())
    for_copies: dict[str, dict[str, Any]] = {}
    for copy in catalog.current(catalog.quarantined("duplicate")):
        for_copies.setdefault(copy["output_key"], copy)
    keys = {row["output_key"] for row in own}
    queue = own + [copy for key, copy in for_copies.items() if key not in keys]
    return sorted(queue, key=lambda r: (r["logical_date"], r["output_key"]))


def queue_size(queue: list[dict[str, Any]]) -> str:
    return f"{len(queue)} quarantined {'derivative awaits' if len(queue) == 1 else 'derivatives await'} review"


def release(store: ObjectStore, catalog: Catalog, keys: Sequence[str], *, by: str, reason: str,
            now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Release quarantined derivatives to ``enhanced/``; returns the new ledger rows.

    The steps: copy to ``enhanced/``, write the ledger part, update the catalog, delete the
    quarantined copies. Interrupted before the catalog update, the same call completes it;
    after it, the ledger and catalog already say released and at worst a quarantined copy is
    left beside the released one.
    """
    decision = _Decision("release", now or dt.datetime.now(dt.timezone.utc))
    past = _Ledger(store)
    found = _under_review(past, catalog, keys, by, reason)
    for held in found:  # all checked before the first copy
        if not store.exists(held.key):
            raise ReviewError(f"{held.key}: in the catalog but not in the bucket (deleted outside the pipeline?): "
                              "nothing to release; reject it to take it off the review queue")
    # one decided for copies alone keeps off its master's name, which the master's new scan may take
    plains = [ENHANCED + held.key[len(QUARANTINE):] for held in found]
    plains = [tagged(plain, held.entry["source_sha256"]) if held.moved_on else plain
              for plain, held in zip(plains, found)]
    holders = catalog.claim([(plain, held.entry["source_key"]) for plain, held in zip(plains, found)])
    named = [key_for(plain, held.entry["source_key"], holders[plain]) for plain, held in zip(plains, found)]
    placed = beside_copies(catalog, [(key, held.entry["source_key"], held.entry["source_sha256"])
                                     for (key, _), held in zip(named, found)])
    cleared = [clear_of_hand_made(store, catalog, target, held.entry["source_key"])
               for held, (target, _) in zip(found, placed)]
    # the master's own earlier derivative, which a forced try replaces
    over = {held.key: target for held, (target, ours, _) in zip(found, cleared) if held.row is not None and ours}
    makers = {}  # the run that made it, where the master's history says
    for held, history in _with_history(past, [held for held in found if held.key in over]):
        earlier = _last_own(history, held, lambda row: row["output_key"] == over[held.key])
        makers[held.key] = earlier["run_id"] if earlier else None
    rows, remade = [], []
    for held, (_, note), (_, beside), (target, _, by_hand) in zip(found, named, placed, cleared):
        store.copy(held.key, target, mark(held.entry["source_key"]))
        notes = [n for n in (note, beside, by_hand) if n]
        notes += [replaces_note(target, makers[held.key])] if makers.get(held.key) else []
        notes.append(f"released from quarantine by {by.strip()}: {reason.strip()}")
        decided = _decided(past, held, decision, target, "passed", notes)
        rows += decided
        if held.key in over:
            remade.append((decided[0], makers[held.key]))
    rows += copies_following(catalog, remade)
    _record(store, catalog, decision, rows, [held.key for held in found])
    return rows


def reject(store: ObjectStore, catalog: Catalog, keys: Sequence[str], *, by: str, reason: str,
           now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Reject quarantined derivatives: delete them, recorded (verdict ``rejected``, no output key).

    One changed by hand since the pipeline put it there (an archivist's retouching) is kept
    where it is, and the note says so: deleting a person's work is for a person to do.
    The steps: write the ledger part, update the catalog, delete. Interrupted before the
    catalog update, the same call completes it; after it, at worst the quarantined copy is
    left, which the catalog and ``review-queue`` no longer list.
    """
    decision = _Decision("reject", now or dt.datetime.now(dt.timezone.utc))
    past = _Ledger(store)
    found = _under_review(past, catalog, keys, by, reason)
    rows, deleted = [], []
    for held in found:
        kept = changed_by_hand(store, catalog, held.key, held.made_for)
        fate = f"{held.key} {KEPT_BY_HAND}" if kept else f"{held.key} deleted"
        decided = _decided(past, held, decision, None, "rejected", [f"rejected in review by {by.strip()}: "
                                                                     f"{reason.strip()}; {fate}"])
        if kept:  # in the copies' rows too: what they point at is still there
            for row in decided:
                if not any(fate in note for note in row["notes"]):
                    row["notes"].append(fate)
        else:
            deleted.append(held.key)
        rows += decided
    rows += _reinstated(past, found, decision)  # after the rejections: the last row of a master and content wins
    _record(store, catalog, decision, rows, deleted)
    return rows


DECISIONS: dict[str, Callable[..., list[dict[str, Any]]]] = {"release": release, "reject": reject}


def _under_review(past: _Ledger, catalog: Catalog, keys: Sequence[str], by: str, reason: str) -> list[_Held]:
    """Every key checked before anything changes: each must be its master's current
    derivative, in quarantine, or one that copies still point at after their master moved on."""
    if not by.strip() or not reason.strip():
        raise ReviewError("say who decides (by) and why (reason): the ledger keeps both")
    if not keys:
        raise ReviewError("no keys to decide on")
    keys = list(dict.fromkeys(safe_key(k) for k in keys))
    entries = catalog.published(keys)
    masters = {**catalog.names(keys), **{k: e["source_key"] for k, e in entries.items()}}
    latest = catalog.latest(list(set(masters.values())))
    copies = catalog.duplicates_at(keys)
    found = []
    for key in keys:
        entry = entries.get(key)
        master = latest.get(masters.get(key, ""))
        if key.startswith(QUARANTINE) and master is not None and not _current(entry, master):
            if not copies.get(key):
                _refuse_superseded(key, master)
            moved_on = (f"its master {master['source_key']} was processed again by run {master['run_id']}: "
                        f"decided for the copies that point at {key}")
            found.append(_Held(key, copies[key][0], None, copies[key], master["source_key"], moved_on))
            continue
        if not key.startswith(QUARANTINE) or entry is None or entry["verdict"] != "quarantined":
            raise ReviewError(f"{key}: not a quarantined derivative in the catalog")
        found.append(_Held(key, entry, past.row(entry, key), copies.get(key, []), entry["source_key"]))
    return found


def _current(entry: dict[str, Any] | None, latest: dict[str, Any]) -> bool:
    return entry is not None and latest["source_sha256"] == entry["source_sha256"]


def _refuse_superseded(key: str, latest: dict[str, Any]) -> None:
    """A quarantined derivative its master has moved on from, which no copy points at:
    decided on already, processed again (forced, into enhanced/), or replaced by a new
    version of the master."""
    if latest["run_id"].startswith("reject-"):
        raise ReviewError(f"{key}: not a quarantined derivative in the catalog: rejected already, by run {latest['run_id']}")
    if latest["run_id"].startswith("release-"):
        raise ReviewError(f"{key}: not a quarantined derivative in the catalog: released already, "
                          f"to {latest['output_key']} by run {latest['run_id']}")
    raise ReviewError(f"{key}: superseded: {latest['source_key']} was processed again by run {latest['run_id']} "
                      f"({latest['status']}, {latest['output_key'] or 'no derivative'})")


def _reinstated(past: _Ledger, found: list[_Held], decision: _Decision) -> list[dict[str, Any]]:
    """A row for each rejected derivative whose master still has, in ``enhanced/``, the one an
    earlier processing of the same content published: a forced run with other settings replaced
    the catalog's one row for that master and content, and rejecting it would leave the live
    derivative out of the catalog (copies made with its settings would be enhanced again)."""
    # not those decided for copies alone, nor those with nothing in enhanced/ under their name
    candidates = [held for held in found if held.row is not None and _published_under_its_name(past.store, held)]
    rows = []
    for held, history in _with_history(past, candidates):
        earlier = _last_own(history, held, lambda row: row["output_key"].startswith(ENHANCED))
        if earlier is None or earlier["source_sha256"] != held.entry["source_sha256"] \
                or not past.store.exists(earlier["output_key"]):  # (a re-scan's may have taken its key)
            continue
        note = (f"{earlier['output_key']}, made by run {earlier['run_id']}, is again the derivative of "
                f"{held.entry['source_key']}: {held.key} of the later run {held.entry['run_id']} was rejected")
        rows.append({**earlier, "run_id": decision.run_id, "shard": 0, "processed_at": decision.now,
                     "source_etag": held.entry["source_etag"], "notes": [*earlier["notes"], note]})
    return rows


def _with_history(past: _Ledger, found: list[_Held]) -> Iterator[tuple[_Held, list[dict[str, Any]]]]:
    """Each held derivative with its master's ledger rows, oldest first; each day's ledger read once."""
    for day in sorted({held.entry["logical_date"] for held in found}):
        on_day = [held for held in found if held.entry["logical_date"] == day]
        history = past.history(day, {held.entry["source_key"] for held in on_day})
        for held in on_day:
            yield held, history.get(held.entry["source_key"], [])


def _published_under_its_name(store: ObjectStore, held: _Held) -> bool:
    """Whether ``enhanced/`` holds anything under the held derivative's name, plain, tagged or
    in another format: only then can the master have a derivative there to reinstate, and
    only then is the day's ledger read (a night has a part per shard)."""
    return bool(store.list(str(PurePosixPath(ENHANCED + held.key[len(QUARANTINE):]).with_suffix(""))))


def _last_own(history: list[dict[str, Any]], held: _Held,
              where: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
    """The latest of the held derivative's master's earlier processings (``history``) that made
    a derivative of its own (not a copy's pointer) and meet ``where``."""
    assert held.row is not None
    return next((row for row in reversed(history) if row["processed_at"] < held.row["processed_at"]
                 and row["status"] == "ok" and row["output_key"] and where(row)), None)


def _ledger_partition(day: dt.date, run_id: str | None = None) -> str:
    return f"{LEDGER}date={day.isoformat()}/" + (f"run={run_id}/" if run_id else "")


class _Ledger:
    """The ledger rows one decision reads, each run's partition read once: a night's run has a
    part per shard, and a decision may name many of its images."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self._runs: dict[str, dict[tuple[str, str, str | None], dict[str, Any]]] = {}

    def row(self, entry: dict[str, Any], key: str) -> dict[str, Any]:
        """The row with which ``entry``'s run made (or pointed a copy at) the derivative ``key``."""
        run = _ledger_partition(entry["logical_date"], entry["run_id"])
        if run not in self._runs:
            self._runs[run] = {}
            for part in self.store.list(run):
                for row in ledger.from_parquet(self.store.get(part.key)):
                    self._runs[run].setdefault((row["source_key"], row["source_sha256"], row["output_key"]), row)
        found = self._runs[run].get((entry["source_key"], entry["source_sha256"], key))
        if found is None:
            raise ReviewError(f"{key}: no row for it in the ledger under {run}")
        return found

    def history(self, day: dt.date, source_keys: set[str]) -> dict[str, list[dict[str, Any]]]:
        """Every row of these masters, oldest first: a master's rows are all filed under its day."""
        found: dict[str, list[dict[str, Any]]] = {}
        for part in self.store.list(_ledger_partition(day)):
            for row in ledger.from_parquet(self.store.get(part.key), source_keys=source_keys):
                found.setdefault(row["source_key"], []).append(row)
        return {key: sorted(rows, key=lambda r: r["processed_at"]) for key, rows in found.items()}


def _decided(past: _Ledger, held: _Held, decision: _Decision, output_key: str | None,
             verdict: str, notes: list[str]) -> list[dict[str, Any]]:
    """The ledger rows of one decision: the derivative's, and one for each copy pointing at it,
    each with its master's ETag as the catalog has it now (it may have been uploaded again
    unchanged since its row was written)."""
    change = {"run_id": decision.run_id, "shard": 0, "processed_at": decision.now, "output_key": output_key,
              "verdict": verdict, **({} if output_key else {"output_sha256": None, "output_bytes": None})}
    rows = []
    if held.row is not None:
        rows.append({**held.row, **change, "source_etag": held.entry["source_etag"], "notes": [*held.row["notes"], *notes]})
    for copy in held.copies:
        row = past.row(copy, held.key)
        if held.moved_on:
            added = [*notes, held.moved_on]
        else:
            added = [f"follows the {decision.name} of {held.key}, the derivative of {held.entry['source_key']}"]
        rows.append({**row, **change, "source_etag": copy["source_etag"], "notes": [*row["notes"], *added]})
    return rows


def _record(store: ObjectStore, catalog: Catalog, decision: _Decision, rows: list[dict[str, Any]],
            deleted: list[str]) -> None:
    put_ledger_parts(store, rows, decision.run_id, 0, decision.now.date())
    catalog.record(rows)
    store.delete(deleted)
