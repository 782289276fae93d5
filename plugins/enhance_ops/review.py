"""An archivist's decision after review: a quarantined derivative released to ``enhanced/``.

The gate holds back what it cannot vouch for; a person who has looked at it may disagree.
Releasing moves the derivative from ``quarantine/<day>/…`` to ``enhanced/<day>/…`` (never over
another master's derivative: see ``airflow.tasks.publish``) and records the decision where
the pipeline records everything: a ledger row (a copy of the image's row with verdict
``passed``, the new key and a note of who released it and why, under a run of its own) and
the catalog, so that a catalog rebuilt from the ledger agrees. What the gate found stays in
the row's ``failed_expectations``.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from .airflow.tasks import ENHANCED, LEDGER, QUARANTINE, key_for, put_ledger_parts
from .catalog import Catalog
from .quality import ledger
from .storage import ObjectStore, safe_key


class ReleaseError(ValueError):
    """The key is not a quarantined derivative that this pipeline published."""


def _ledger_row(store: ObjectStore, held: dict[str, Any], key: str) -> dict[str, Any]:
    run = f"{LEDGER}date={held['logical_date'].isoformat()}/run={held['run_id']}/"
    for part in store.list(run):
        for row in ledger.from_parquet(store.get(part.key)):
            if (row["source_key"], row["source_sha256"], row["output_key"]) == (held["source_key"], held["source_sha256"], key):
                return row
    raise ReleaseError(f"{key}: no row for it in the ledger under {run}")


def awaiting(catalog: Catalog) -> list[dict[str, Any]]:
    """The review queue: quarantined derivatives that are still their masters' current ones
    (not released, not superseded by a later run), oldest day first."""
    held = catalog.quarantined()
    latest = catalog.latest(list({r["source_key"] for r in held}))
    return [r for r in held if latest[r["source_key"]]["source_sha256"] == r["source_sha256"]]


def queue_size(queue: list[dict[str, Any]]) -> str:
    return f"{len(queue)} quarantined {'derivative awaits' if len(queue) == 1 else 'derivatives await'} review"


def _refuse_if_superseded(key: str, held: dict[str, Any] | None, latest: dict[str, Any]) -> None:
    """A quarantined derivative its master has moved on from: released already, processed
    again (forced, into enhanced/), or replaced by a new version of the master."""
    if held is not None and latest["source_sha256"] == held["source_sha256"]:
        return  # the master's current derivative
    if latest["run_id"].startswith("release-"):
        raise ReleaseError(f"{key}: not a quarantined derivative in the catalog: released already, "
                           f"to {latest['output_key']} by run {latest['run_id']}")
    raise ReleaseError(f"{key}: superseded: {latest['source_key']} was processed again by run {latest['run_id']} "
                       f"({latest['status']}, {latest['output_key'] or 'no derivative'})")


def release(store: ObjectStore, catalog: Catalog, keys: Sequence[str], *, by: str, reason: str,
            now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Release quarantined derivatives; returns their new ledger rows (one part for the call).

    Every key is checked before anything moves: it must be its master's current derivative,
    in quarantine (``_refuse_if_superseded``). The steps: copy to ``enhanced/``, write the
    ledger part, update the catalog, delete the quarantined copies. Interrupted before the
    catalog update, the same call completes it; after it, the ledger and catalog already say
    released and at worst a quarantined copy is left beside the released one.
    """
    if not by.strip() or not reason.strip():
        raise ReleaseError("say who releases (by) and why (reason): the ledger keeps both")
    if not keys:
        raise ReleaseError("no keys to release")
    now = now or dt.datetime.now(dt.timezone.utc)
    run_id = f"release-{now.strftime('%Y%m%dT%H%M%S%fZ')}"
    keys = list(dict.fromkeys(safe_key(k) for k in keys))
    holders = catalog.published(keys)
    masters = {**catalog.names(keys), **{k: h["source_key"] for k, h in holders.items()}}
    latest = catalog.latest(list(set(masters.values())))
    found = []
    for key in keys:
        held = holders.get(key)
        if key.startswith(QUARANTINE) and masters.get(key) in latest:
            _refuse_if_superseded(key, held, latest[masters[key]])
        if not key.startswith(QUARANTINE) or held is None or held["verdict"] != "quarantined":
            raise ReleaseError(f"{key}: not a quarantined derivative in the catalog")
        found.append((key, held, _ledger_row(store, held, key)))
    plains = [ENHANCED + key[len(QUARANTINE):] for key, _, _ in found]
    holders = catalog.claim([(plain, held["source_key"]) for plain, (_, held, _) in zip(plains, found)])
    rows = []
    for (key, held, row), plain in zip(found, plains):
        target, note = key_for(plain, held["source_key"], holders[plain])
        store.copy(key, target)
        notes = [*row["notes"], *([note] if note else []), f"released from quarantine by {by.strip()}: {reason.strip()}"]
        rows.append({**row, "run_id": run_id, "shard": 0, "output_key": target, "verdict": "passed", "notes": notes,
                     "processed_at": now})
    put_ledger_parts(store, rows, run_id, 0, now.date())
    catalog.record(rows)
    store.delete([key for key, _, _ in found])
    return rows
