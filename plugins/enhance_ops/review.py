"""An archivist's decision after review: a quarantined derivative released or rejected.

The gate holds back what it cannot vouch for; a person who has looked at it decides. Releasing
moves the derivative from ``quarantine/<day>/…`` to ``enhanced/<day>/…`` (never over another
master's derivative: see ``airflow.tasks.publish``); rejecting deletes it, and the master is
not enhanced again with the same settings (a forced run with another preset can try again).
Either way the decision is recorded where the pipeline records everything: a ledger row (a
copy of the image's row with the new verdict and key and a note of who decided and why,
under a run of its own) and the catalog, so that a catalog rebuilt from the ledger agrees.
What the gate found stays in the row's ``failed_expectations``. Masters elsewhere that are
copies of the same content (ledger status ``duplicate``) point at the derivative; they get
a row that follows it.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .airflow.tasks import ENHANCED, LEDGER, QUARANTINE, key_for, put_ledger_parts
from .catalog import Catalog
from .quality import ledger
from .storage import ObjectStore, safe_key


class ReviewError(ValueError):
    """The key is not a quarantined derivative awaiting review, or the decision lacks who or why."""


@dataclass(frozen=True)
class _Held:
    """A derivative under review: its key, its catalog entry and its ledger row."""

    key: str
    entry: dict[str, Any]
    row: dict[str, Any]


def awaiting(catalog: Catalog) -> list[dict[str, Any]]:
    """The review queue: quarantined derivatives that are still their masters' current ones
    (not released, rejected or superseded by a later run), oldest day first."""
    held = catalog.quarantined()
    latest = catalog.latest(list({r["source_key"] for r in held}))
    return [r for r in held if latest[r["source_key"]]["source_sha256"] == r["source_sha256"]]


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
    now = now or dt.datetime.now(dt.timezone.utc)
    run_id = _run_id("release", now)
    found = _under_review(store, catalog, keys, by, reason)
    plains = [ENHANCED + held.key[len(QUARANTINE):] for held in found]
    holders = catalog.claim([(plain, held.entry["source_key"]) for plain, held in zip(plains, found)])
    rows = []
    for held, plain in zip(found, plains):
        target, note = key_for(plain, held.entry["source_key"], holders[plain])
        store.copy(held.key, target)
        decided = f"released from quarantine by {by.strip()}: {reason.strip()}"
        rows += _decided(store, catalog, held, "release", {"run_id": run_id, "processed_at": now, "output_key": target,
                         "verdict": "passed"}, [*([note] if note else []), decided])
    _record(store, catalog, rows, found, run_id, now)
    return rows


def reject(store: ObjectStore, catalog: Catalog, keys: Sequence[str], *, by: str, reason: str,
           now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Reject quarantined derivatives: delete them, recorded (verdict ``rejected``, no output key).

    The steps: write the ledger part, update the catalog, delete. Interrupted before the
    catalog update, the same call completes it; after it, at worst the quarantined copy is
    left, which the catalog and ``review-queue`` no longer list.
    """
    now = now or dt.datetime.now(dt.timezone.utc)
    run_id = _run_id("reject", now)
    found = _under_review(store, catalog, keys, by, reason)
    rows = []
    for held in found:
        decided = f"rejected in review by {by.strip()}: {reason.strip()}; {held.key} deleted"
        rows += _decided(store, catalog, held, "reject", {"run_id": run_id, "processed_at": now, "output_key": None,
                         "verdict": "rejected"}, [decided])
    _record(store, catalog, rows, found, run_id, now)
    return rows


DECISIONS: dict[str, Callable[..., list[dict[str, Any]]]] = {"release": release, "reject": reject}


def _under_review(store: ObjectStore, catalog: Catalog, keys: Sequence[str], by: str, reason: str) -> list[_Held]:
    """Every key checked before anything changes: each must be its master's current
    derivative, in quarantine."""
    if not by.strip() or not reason.strip():
        raise ReviewError("say who decides (by) and why (reason): the ledger keeps both")
    if not keys:
        raise ReviewError("no keys to decide on")
    keys = list(dict.fromkeys(safe_key(k) for k in keys))
    entries = catalog.published(keys)
    masters = {**catalog.names(keys), **{k: e["source_key"] for k, e in entries.items()}}
    latest = catalog.latest(list(set(masters.values())))
    found = []
    for key in keys:
        entry = entries.get(key)
        if key.startswith(QUARANTINE) and masters.get(key) in latest:
            _refuse_if_superseded(key, entry, latest[masters[key]])
        if not key.startswith(QUARANTINE) or entry is None or entry["verdict"] != "quarantined":
            raise ReviewError(f"{key}: not a quarantined derivative in the catalog")
        found.append(_Held(key, entry, _ledger_row(store, entry, key)))
    return found


def _refuse_if_superseded(key: str, entry: dict[str, Any] | None, latest: dict[str, Any]) -> None:
    """A quarantined derivative its master has moved on from: decided on already, processed
    again (forced, into enhanced/), or replaced by a new version of the master."""
    if entry is not None and latest["source_sha256"] == entry["source_sha256"]:
        return  # the master's current derivative
    if latest["run_id"].startswith("reject-"):
        raise ReviewError(f"{key}: not a quarantined derivative in the catalog: rejected already, by run {latest['run_id']}")
    if latest["run_id"].startswith("release-"):
        raise ReviewError(f"{key}: not a quarantined derivative in the catalog: released already, "
                          f"to {latest['output_key']} by run {latest['run_id']}")
    raise ReviewError(f"{key}: superseded: {latest['source_key']} was processed again by run {latest['run_id']} "
                      f"({latest['status']}, {latest['output_key'] or 'no derivative'})")


def _ledger_row(store: ObjectStore, entry: dict[str, Any], key: str) -> dict[str, Any]:
    run = f"{LEDGER}date={entry['logical_date'].isoformat()}/run={entry['run_id']}/"
    for part in store.list(run):
        for row in ledger.from_parquet(store.get(part.key)):
            if (row["source_key"], row["source_sha256"], row["output_key"]) == (entry["source_key"], entry["source_sha256"], key):
                return row
    raise ReviewError(f"{key}: no row for it in the ledger under {run}")


def _decided(store: ObjectStore, catalog: Catalog, held: _Held, decision: str, change: dict[str, Any],
             notes: list[str]) -> list[dict[str, Any]]:
    """The ledger rows of one decision (``change``: the run, time, output key and verdict): the
    derivative's, and one for each copy pointing at it."""
    change = {**change, "shard": 0}
    rows = [{**held.row, **change, "notes": [*held.row["notes"], *notes]}]
    for copy in catalog.duplicates_of(held.key):
        row = _ledger_row(store, copy, held.key)
        follows = f"follows the {decision} of {held.key}, the derivative of {held.entry['source_key']}"
        rows.append({**row, **change, "notes": [*row["notes"], follows]})
    return rows


def _record(store: ObjectStore, catalog: Catalog, rows: list[dict[str, Any]], found: list[_Held],
            run_id: str, now: dt.datetime) -> None:
    put_ledger_parts(store, rows, run_id, 0, now.date())
    catalog.record(rows)
    store.delete([held.key for held in found])


def _run_id(decision: str, now: dt.datetime) -> str:
    return f"{decision}-{now.strftime('%Y%m%dT%H%M%S%fZ')}"
