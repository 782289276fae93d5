"""Fixity: the derivatives the catalog says the bucket holds, read back and checked against
the sha256 their run recorded (ledger and catalog ``output_sha256``) when it wrote them.

Archives check their files for silent change: a storage fault, a faulty copy or migration,
an edit by hand. A derivative that readers use in place of the master deserves the same.
One written before checksums were recorded (ledger schema 4, 2026-12-03) can only be found
missing, and is counted apart, until ``adopt`` takes what the bucket holds now as its baseline.
"""
from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from .airflow.tasks import hand_made
from .catalog import Catalog
from .storage import ObjectStore

INTACT, CHANGED, MISSING, UNRECORDED = "intact", "changed", "missing", "unrecorded"
ADOPTED, NOT_ADOPTED = "adopted", "not adopted"  # what ``adopt`` did with one written before checksums were recorded
STATES = (INTACT, CHANGED, MISSING, UNRECORDED)
FAILING = (CHANGED, MISSING)  # what a fixity check exists to find; unrecorded ones are only counted


@dataclass(frozen=True)
class Checked:
    """One derivative's state, and what was found where it is not intact."""

    key: str
    source_key: str
    run_id: str
    state: str
    detail: str = ""


READERS = 8  # derivatives read at once: a read is network-bound, and hashing lets go of the GIL


def check(store: ObjectStore, catalog: Catalog, prefix: str = "", after: str | None = None,
          through: str | None = None) -> Iterator[Checked]:
    """Each derivative under ``prefix`` (``enhanced/``, ``quarantine/2026-11-30/``; all by
    default; with a key past ``after`` and up to ``through`` where given: one of ``ranges``),
    in key order; every one is read whole (``READERS`` at a time)."""
    yield from _read_back(store, catalog, catalog.derivatives(prefix, after=after, through=through), _checked)


def ranges(catalog: Catalog, prefix: str, parts: int) -> list[tuple[str | None, str | None]]:
    """The derivatives under ``prefix`` cut into at most ``parts`` runs of consecutive keys,
    about equal in number, as the (``after``, ``through``) bounds ``check`` takes: a large
    archive is read by several workers at once, each its own run of keys, none twice. The
    last run has no upper bound, so a derivative written after the cut is still checked."""
    keys = [row["output_key"] for row in catalog.derivatives(prefix)]
    count = max(1, min(parts, len(keys)))
    ends = [keys[len(keys) * (n + 1) // count - 1] for n in range(count - 1)]
    return list(zip([None, *ends], [*ends, None]))


def adopt(store: ObjectStore, catalog: Catalog, prefix: str = "") -> Iterator[Checked]:
    """Each derivative under ``prefix`` written before checksums were recorded, given one: the
    sha256 of what the bucket holds now becomes its baseline, which later checks hold it to.
    Only where it still carries the pipeline's mark: a file put there by hand is not taken
    as the pipeline's. A missing one, or one without the mark, is reported, not adopted."""
    unrecorded = (row for row in catalog.derivatives(prefix) if not row["output_sha256"])
    yield from _read_back(store, catalog, unrecorded, _adopted)


def _read_back(store: ObjectStore, catalog: Catalog, rows: Iterator[dict[str, Any]],
               one: Callable[[ObjectStore, Catalog, dict[str, Any]], Checked | None]) -> Iterator[Checked]:
    """``one`` over the rows, ``READERS`` at a time, in the rows' order."""
    with ThreadPoolExecutor(READERS, thread_name_prefix="fixity") as pool:
        reading: deque[Future[Checked | None]] = deque()
        for row in rows:
            if len(reading) >= 2 * READERS:  # a window, not a future for every derivative of the archive
                yield from _done(reading.popleft())
            reading.append(pool.submit(one, store, catalog, row))
        while reading:
            yield from _done(reading.popleft())


def _adopted(store: ObjectStore, catalog: Catalog, row: dict[str, Any]) -> Checked | None:
    key, run = row["output_key"], row["run_id"]
    metadata = store.metadata(key)
    found = None if metadata is None else store.sha256(key)
    if found is None:
        return Checked(key, row["source_key"], run, MISSING, f"written by run {run}, not in the bucket")
    if not _marked(store, catalog, key, row["source_key"], metadata):
        return Checked(key, row["source_key"], run, NOT_ADOPTED, "it lacks the pipeline's mark: replaced or "
                       "edited by hand, so what it holds is not taken as what the pipeline wrote")
    if not catalog.adopt(row, found):
        return None  # made again, or adopted by another command, since it was listed
    return Checked(key, row["source_key"], run, ADOPTED, f"sha256 {found}, as the bucket holds it now")


def _done(future: Future[Checked | None]) -> Iterator[Checked]:
    checked = future.result()
    if checked is not None:
        yield checked


def _checked(store: ObjectStore, catalog: Catalog, row: dict[str, Any]) -> Checked | None:
    """One derivative against the catalog's row, looked at again where it is not as recorded:
    a run may have made it again, superseded or rejected it since the check listed it (None:
    no longer expected)."""
    checked = _compared(store, catalog, row)
    if checked.state not in FAILING:
        return checked
    now = next((r for r in catalog.derivatives(row["output_key"]) if r["output_key"] == row["output_key"]), None)
    if now is None:
        return None
    unchanged = (now["run_id"], now["output_sha256"]) == (row["run_id"], row["output_sha256"])
    return checked if unchanged else _compared(store, catalog, now)


def _compared(store: ObjectStore, catalog: Catalog, row: dict[str, Any]) -> Checked:
    key, recorded, run = row["output_key"], row["output_sha256"], row["run_id"]
    if recorded:
        found = store.sha256(key)
        state = MISSING if found is None else INTACT if found == recorded else CHANGED
    else:  # only its presence can be checked
        state = MISSING if store.metadata(key) is None else UNRECORDED
    if state == MISSING:
        detail = f"written by run {run}, not in the bucket"
    elif state == UNRECORDED:
        detail = f"written by run {run}, before checksums were recorded"
    elif state == CHANGED:
        detail = f"sha256 {found}, recorded {recorded} by run {run}; {_how(store, catalog, key, row['source_key'])}"
    else:
        detail = ""
    return Checked(key, row["source_key"], run, state, detail)


class Tally:
    """Derivatives counted by state as a check yields them: the command prints each one not
    intact as it comes, the DAG's task keeps them for the report."""

    def __init__(self) -> None:
        self.counts = dict.fromkeys(STATES, 0)

    def add(self, checked: Checked) -> bool:
        """Counts it; whether it is one to show (not intact)."""
        self.counts[checked.state] += 1
        return checked.state != INTACT

    @property
    def failing(self) -> bool:
        """Whether any is changed or missing: what makes the check fail."""
        return any(self.counts[state] for state in FAILING)

    def summary(self, prefix: str = "") -> str:
        """The counts in one sentence, for the command's last line and the report."""
        counts, total = self.counts, sum(self.counts.values())
        return (f"checked {total} {'derivative' if total == 1 else 'derivatives'}{f' under {prefix}' if prefix else ''}: "
                f"{counts[INTACT]} intact, {counts[CHANGED]} changed, {counts[MISSING]} missing, "
                f"{counts[UNRECORDED]} written before checksums were recorded")


def part(store: ObjectStore, catalog: Catalog, prefix: str, after: str | None, through: str | None) -> dict[str, Any]:
    """One run of keys checked: the count of each state, and every derivative not intact."""
    tally = Tally()
    problems = [asdict(checked) for checked in check(store, catalog, prefix, after, through) if tally.add(checked)]
    return {"counts": tally.counts, "not_intact": problems}


def record(store: ObjectStore, prefix: str, parts: list[dict[str, Any]], key: str, title: str) -> dict[str, Any]:
    """The parts' findings, in key order, put at ``key``.json (the counts, the sentence,
    whether any is changed or missing, and every derivative not intact) and, for archivists,
    at ``key``.html; returns them."""
    from .quality import report

    tally = Tally()
    for found_in_part in parts:
        for state, count in found_in_part["counts"].items():
            tally.counts[state] += count
    problems = [problem for found_in_part in parts for problem in found_in_part["not_intact"]]
    found = {"prefix": prefix, "counts": tally.counts, "summary": tally.summary(prefix),
             "failing": tally.failing, "not_intact": problems}
    store.put(f"{key}.json", json.dumps(found, indent=1).encode())
    store.put(f"{key}.html", report.render_fixity(found, title=title, listing_at=f"{key}.json").encode())
    return found


def _how(store: ObjectStore, catalog: Catalog, key: str, source_key: str) -> str:
    """Whether a changed derivative was put there again by hand or changed where it lies."""
    if not _marked(store, catalog, key, source_key, store.metadata(key)):
        return "it lacks the pipeline's mark: replaced or edited by hand"
    return "it carries the pipeline's mark: changed in storage"


def _marked(store: ObjectStore, catalog: Catalog, key: str, source_key: str, metadata: dict[str, str] | None) -> bool:
    """Whether the object carries the mark the pipeline puts on what it writes: a storage fault
    keeps the mark of a master pointing at it (its own; released for copies alone, the first
    copy's, which need not be the row's), a file uploaded by hand has none."""
    masters = [source_key, *(copy["source_key"] for copy in catalog.duplicates_at([key]).get(key, []))]
    return metadata is not None and not all(hand_made(metadata, master) for master in masters)
