"""The catalog under concurrent runs (its schema created once when two runs open a fresh
catalog at once, a derivative's name given to one master when two claim it at once) and on
catalogs made by earlier versions."""
from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import pytest
from services import postgres
from sqlalchemy import Connection, Engine, create_engine, text

from enhance_ops.catalog import Base, Catalog, DerivativeName

T = TypeVar("T")


def test_a_catalog_opened_while_another_creates_its_table_does_not_fail() -> None:
    """Real PostgreSQL, the race made deterministic: the first creator holds its transaction
    open while the second (which found no table) waits on it, then commits."""
    with postgres(("catalog",)) as server:
        url = f"{server}/catalog"
        catalog = _while_a_first_transaction_waits(url, Base.metadata.create_all, lambda: Catalog(url))
        assert isinstance(catalog, Catalog) and catalog.rows() == []
        catalog.engine.dispose()


def test_of_two_runs_claiming_a_name_at_once_the_second_finds_it_taken() -> None:
    """Real PostgreSQL: the first claim is written, not committed, when the second is made."""
    with postgres(("names",)) as server:
        url = f"{server}/names"
        catalog = Catalog(url)
        first = DerivativeName.__table__.insert().values(output_key="enhanced/d/cat.jpg", source_key="incoming/d/cat.jpg")
        holders = _while_a_first_transaction_waits(url, lambda conn: conn.execute(first), lambda: catalog.claim(
            [("enhanced/d/cat.jpg", "special/box-9/cat.jpg"), ("enhanced/d/dog.jpg", "special/box-9/dog.jpg")]))
        assert holders == {"enhanced/d/cat.jpg": "incoming/d/cat.jpg",  # taken first
                           "enhanced/d/dog.jpg": "special/box-9/dog.jpg"}  # free: now its own
        catalog.engine.dispose()


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_a_catalog_made_before_the_settings_and_fixity_columns_gains_them_and_keeps_its_rows(
        tmp_path: Path, database: str) -> None:
    with contextlib.ExitStack() as stack:
        url = f"sqlite:///{tmp_path / 'old.db'}" if database == "sqlite" else \
            f"{stack.enter_context(postgres(('old',)))}/old"
        old = create_engine(url)
        with old.begin() as conn:  # the table as the catalog made it before settings were kept
            conn.execute(text(
                "CREATE TABLE processed_images (source_key VARCHAR(1024) NOT NULL, source_sha256 VARCHAR(64) NOT NULL, "
                "source_etag VARCHAR(128), output_key VARCHAR(1024), status VARCHAR(16) NOT NULL, verdict VARCHAR(16), "
                "run_id VARCHAR(256) NOT NULL, logical_date DATE NOT NULL, processed_at TIMESTAMP NOT NULL, "
                "PRIMARY KEY (source_key, source_sha256))"))
            conn.execute(text("INSERT INTO processed_images VALUES ('incoming/d/a.jpg', :sha, 'e', 'enhanced/d/a.jpg', "
                              "'ok', 'passed', 'old', '2026-11-20', '2026-11-20 01:00:00')"), {"sha": "a" * 64})
        old.dispose()
        catalog = Catalog(url)
        [row] = catalog.rows()
        assert row["output_key"] == "enhanced/d/a.jpg" and row["settings_sha256"] is None and row["output_sha256"] is None
        assert catalog.earlier("a" * 64, "new", "s" * 64) is None  # settings unknown: enhanced again, not reused
        assert catalog.known_sources("incoming/d/") == {("incoming/d/a.jpg", "e")}  # still done for discovery
        again = Catalog(url)  # opened again: nothing more to add
        assert again.rows() == [row]
        for engine in (catalog.engine, again.engine):
            engine.dispose()


def _while_a_first_transaction_waits(url: str, first: Callable[[Connection], object], second: Callable[[], T]) -> T:
    """``second``, run while ``first``'s work is written and not committed; the first commits
    once the second is seen waiting on its lock. What the second raises is the test's failure."""
    holder, monitor = create_engine(url), create_engine(url)
    with ThreadPoolExecutor(1) as pool:
        with holder.connect() as conn:
            transaction = conn.begin()
            first(conn)
            outcome = pool.submit(second)
            deadline = time.monotonic() + 30
            while not _waiting_on_a_lock(monitor) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert _waiting_on_a_lock(monitor), "the second never waited on the first's transaction"
            transaction.commit()
        result = outcome.result(timeout=30)
    for engine in (holder, monitor):
        engine.dispose()
    return result


def test_names_published_before_claims_were_kept_stay_their_masters(tmp_path: Path) -> None:
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    catalog.record([{"source_key": "incoming/d/cat.jpg", "source_sha256": "a" * 64, "output_key": "enhanced/d/cat.jpg",
                     "status": "ok", "verdict": "passed", "run_id": "old", "logical_date": dt.date(2026, 11, 20),
                     "processed_at": dt.datetime(2026, 11, 20, tzinfo=dt.timezone.utc)}])
    assert catalog.claim([("enhanced/d/cat.jpg", "special/cat.jpg")]) == {"enhanced/d/cat.jpg": "incoming/d/cat.jpg"}
    assert catalog.claim([("enhanced/d/cat.jpg", "incoming/d/cat.jpg")]) == {"enhanced/d/cat.jpg": "incoming/d/cat.jpg"}


def _waiting_on_a_lock(monitor: Engine) -> bool:
    """Asked on a connection of its own: within a transaction PostgreSQL keeps showing the
    activity snapshot it took first."""
    with monitor.connect() as conn:
        return bool(conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")).scalar())


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_a_failed_retry_or_an_unchanged_upload_does_not_replace_a_derivative_of_the_same_content(
        tmp_path: Path, database: str) -> None:
    def row(run: str, hour: int, status: str, verdict: str, output_key: str | None, sha: str = "a",
            etag: str = "e1") -> dict[str, object]:
        return {"source_key": "incoming/d/cat.jpg", "source_sha256": sha * 64, "output_key": output_key,
                "status": status, "verdict": verdict, "run_id": run, "logical_date": dt.date(2026, 11, 20),
                "processed_at": dt.datetime(2026, 11, 20, hour, tzinfo=dt.timezone.utc), "source_etag": etag}

    held = row("night", 1, "ok", "quarantined", "quarantine/2026-11-20/cat.jpg")
    retry = row("forced", 2, "failed", "failed", None)
    with contextlib.ExitStack() as stack:
        url = f"sqlite:///{tmp_path / 'c.db'}" if database == "sqlite" else f"{stack.enter_context(postgres(('c',)))}/c"
        catalog = Catalog(url)
        catalog.record([held])
        catalog.record([retry])  # the upsert, against the stored row
        assert [r["run_id"] for r in catalog.rows()] == ["night"]
        catalog.record([held, retry])  # one batch, as a rebuild from the ledger gives it
        assert [r["run_id"] for r in catalog.rows()] == ["night"]
        catalog.record([row("again", 3, "ok", "passed", "enhanced/2026-11-20/cat.jpg"),
                        row("later", 4, "failed", "failed", None, "b")])
        # a success replaces the row; new content is a row of its own
        assert {r["run_id"] for r in catalog.rows()} == {"again", "later"}
        copy = row("copy", 5, "duplicate", "quarantined", "quarantine/2026-11-20/dog.jpg", "d")
        catalog.record([copy])
        catalog.record([row("copy-retry", 6, "failed", "failed", None, "d")])  # a copy's failed retry: it stays a copy
        assert {r["run_id"] for r in catalog.rows()} == {"again", "later", "copy"}
        failed_first = row("first", 0, "failed", "failed", None, "c")
        catalog.record([failed_first])
        catalog.record([{**held, "source_sha256": "c" * 64}])  # a success after a failure replaces it
        assert {r["run_id"] for r in catalog.rows()} == {"again", "later", "copy", "night"}

        # uploaded again unchanged (a new ETag): the shard found a copy of the master's own derivative
        unchanged = row("reupload", 7, "duplicate", "passed", "enhanced/2026-11-20/cat.jpg", etag="e2")
        rejected = row("reject-1", 8, "ok", "rejected", None, "e")  # and one of a rejected derivative, no key
        for batch in ([unchanged, {**rejected, "source_etag": "e3"}], [{**rejected, "run_id": "reject-2"}]):
            catalog.record(batch)
        catalog.record([row("reupload-2", 9, "duplicate", "rejected", None, "e", etag="e4")])
        kept = {r["source_sha256"][0]: (r["run_id"], r["status"], r["source_etag"]) for r in catalog.rows()}
        assert kept["a"] == ("again", "ok", "e2") and kept["e"] == ("reject-2", "ok", "e4")
        catalog.record([row("again", 3, "ok", "passed", "enhanced/2026-11-20/cat.jpg"), unchanged])  # one batch
        assert {r["run_id"]: r["source_etag"] for r in catalog.rows()}["again"] == "e2"
        catalog.engine.dispose()


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_the_derivatives_a_fixity_check_expects_are_those_still_pointed_at(tmp_path: Path, database: str) -> None:
    def row(master: str, sha: str, hour: int, status: str, output_key: str | None, written: str | None = None,
            verdict: str = "passed", run: str | None = None) -> dict[str, object]:
        return {"source_key": f"incoming/d/{master}.jpg", "source_sha256": sha * 64, "output_key": output_key,
                "output_sha256": written and written * 64, "status": status, "verdict": verdict,
                "run_id": run or f"run-{hour}", "logical_date": dt.date(2026, 11, 20),
                "processed_at": dt.datetime(2026, 11, 20, hour, tzinfo=dt.timezone.utc)}

    with contextlib.ExitStack() as stack:
        url = f"sqlite:///{tmp_path / 'c.db'}" if database == "sqlite" else f"{stack.enter_context(postgres(('d',)))}/d"
        catalog = Catalog(url)
        catalog.record([
            row("a", "a", 1, "ok", "enhanced/d/a.jpg", "1"),
            row("b", "b", 2, "ok", "quarantine/d/b.jpg", "2", "quarantined"),  # superseded by its re-scan:
            row("b", "B", 3, "ok", "enhanced/d/b.jpg", "3"),  # deleted by publish, not expected
            row("c", "c", 4, "ok", "quarantine/d/c.jpg", "4", "quarantined"),
            row("d", "c", 5, "duplicate", "quarantine/d/c.jpg", "4", "quarantined"),  # a copy keeps it expected
            row("c", "C", 6, "ok", "enhanced/d/c~1234abcd.jpg", "6"),
            row("e", "e", 7, "ok", None, None, "rejected"),
            row("f", "f", 8, "ok", "enhanced/d/f.jpg", "8"),
            row("f", "F", 9, "ok", "enhanced/d/f.jpg", "9"),  # a re-scan's, made again in place
            row("g", "a", 10, "duplicate", "enhanced/d/a.jpg", "1"),
        ])
        catalog.record([row("g", "a", 11, "duplicate", "enhanced/d/a.jpg", "x", run="forced")])  # follows a remake
        assert catalog.latest(["incoming/d/g.jpg"])["incoming/d/g.jpg"]["run_id"] == "forced"
        found = [(r["output_key"], r["source_key"][-5:], r["output_sha256"][:2]) for r in catalog.derivatives()]
        assert found == [("enhanced/d/a.jpg", "a.jpg", "11"), ("enhanced/d/b.jpg", "b.jpg", "33"),
                         ("enhanced/d/c~1234abcd.jpg", "c.jpg", "66"), ("enhanced/d/f.jpg", "f.jpg", "99"),
                         ("quarantine/d/c.jpg", "c.jpg", "44")]
        assert list(catalog.derivatives(page=2)) == list(catalog.derivatives())
        assert [r["output_key"] for r in catalog.derivatives("quarantine/")] == ["quarantine/d/c.jpg"]
        assert list(catalog.derivatives("enhanced/d/_")) == []  # a prefix, not a LIKE pattern
        catalog.engine.dispose()
