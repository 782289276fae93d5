"""The catalog of what has been processed, so a nightly run need not re-read every ledger file.

One row per (source key, content hash): where a master was found (key and ETag), where its
derivative went and with what verdict. Discovery asks it which keys of the day's prefix are
already done (by key and ETag, without downloading anything); a shard asks it whether the
content it just downloaded was already enhanced under another key with the same settings (by
sha256 and the settings' digest); publishing
claims each derivative's key for its master before copying there. SQLite by
default, PostgreSQL in docker-compose (any SQLAlchemy URL). It is updated in the same step
that publishes, and can be rebuilt from the Parquet ledger, which stays the record of truth.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Date, DateTime, Engine, String, and_, case, create_engine, delete, inspect, or_, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Processed(Base):
    __tablename__ = "processed_images"

    source_key: Mapped[str] = mapped_column(String(1024), primary_key=True)
    source_sha256: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
    source_etag: Mapped[str | None] = mapped_column(String(128))
    output_key: Mapped[str | None] = mapped_column(String(1024), index=True)
    output_sha256: Mapped[str | None] = mapped_column(String(64))  # the derivative's bytes, as written
    status: Mapped[str] = mapped_column(String(16))
    verdict: Mapped[str | None] = mapped_column(String(16))
    run_id: Mapped[str] = mapped_column(String(256))
    logical_date: Mapped[dt.date] = mapped_column(Date)
    processed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    settings_sha256: Mapped[str | None] = mapped_column(String(64))  # of the chain's settings, where it ran


class DerivativeName(Base):
    """Which master a published key belongs to, claimed before anything is copied there, so
    that two runs publishing at once cannot both take a free name."""

    __tablename__ = "derivative_names"

    output_key: Mapped[str] = mapped_column(String(1024), primary_key=True)
    source_key: Mapped[str] = mapped_column(String(1024))


T = TypeVar("T")
FIELDS = [c.name for c in Processed.__table__.columns]
ADDED_COLUMNS = ("settings_sha256", "output_sha256")  # added to catalogs made before them, on opening
KEY = ("source_key", "source_sha256")
HOLDS_A_DERIVATIVE = ("ok", "duplicate")  # statuses of a row whose outcome a later failure or self-copy leaves as it is


def default_url() -> str:
    """``$ENHANCE_CATALOG_URL``, else a SQLite file in ``$AIRFLOW_HOME`` (one machine only: use PostgreSQL with workers)."""
    home = Path(os.environ.get("AIRFLOW_HOME", ".")).resolve()
    return os.environ.get("ENHANCE_CATALOG_URL") or f"sqlite:///{home / 'enhance_catalog.db'}"


def _create_schema(engine: Engine) -> None:
    """The first runs on a fresh catalog (two workers' discover tasks at once) may both find
    the table missing; once one has created it, PostgreSQL refuses the other's CREATE TABLE
    (a unique violation in pg_type). That one only needed the tables to exist."""
    try:
        Base.metadata.create_all(engine)
    except DBAPIError:
        if not all(inspect(engine).has_table(name) for name in Base.metadata.tables):
            raise
    _add_columns(engine)


def _add_columns(engine: Engine) -> None:
    """Columns added since a catalog was made (create_all only makes missing tables); NULL in
    its old rows, which ``catalog-rebuild`` fills from the ledger. Of two runs adding one at
    once, the second is refused (the column exists) and goes on."""
    table = Processed.__table__
    for name in ADDED_COLUMNS:
        if name in _columns(engine):
            continue
        column = table.c[name]
        try:
            with engine.begin() as conn:
                conn.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {name} {column.type.compile(engine.dialect)}")
        except DBAPIError:
            if name not in _columns(engine):
                raise


def _columns(engine: Engine) -> set[str]:
    return {c["name"] for c in inspect(engine).get_columns(Processed.__tablename__)}


class Catalog:
    def __init__(self, url: str) -> None:
        self.engine = create_engine(url)
        _create_schema(self.engine)

    def known_sources(self, prefix: str) -> set[tuple[str, str | None]]:
        """(key, ETag) of each master under ``prefix`` as last processed: discovery skips these
        unread. Not an earlier version's ETag: a master replaced by a new scan and then put
        back (its first bytes, its first ETag) holds other content than its latest derivative."""
        table = Processed.__table__
        query = (select(table.c.source_key, table.c.source_etag)
                 .where(table.c.source_key.startswith(prefix)).order_by(table.c.processed_at))
        with self.engine.connect() as conn:
            return set(dict(conn.execute(query).tuples().all()).items())  # the latest last

    def earlier(self, sha256: str, run_id: str, settings_sha256: str) -> dict[str, Any] | None:
        """The latest derivative of this content that another run made with the same chain
        settings, if any (a copy under a new key need not be enhanced again). Only one that is
        still its master's latest: a master processed again since (a re-scan) may have put
        another content's derivative at its key."""
        table = Processed.__table__
        query = (
            select(table)
            .where(table.c.source_sha256 == sha256, table.c.run_id != run_id, table.c.status == "ok",
                   table.c.settings_sha256 == settings_sha256)
            .order_by(table.c.processed_at)
        )
        with self.engine.connect() as conn:
            found = self.current([dict(r) for r in conn.execute(query).mappings()])
        return found[-1] if found else None

    def published(self, output_keys: list[str]) -> dict[str, dict[str, Any]]:
        """The latest processing whose derivative was published at each of these keys, where
        one was (duplicates only point to another master's derivative)."""
        table = Processed.__table__
        return self._latest_by(table.c.output_key, output_keys, table.c.status == "ok")

    def quarantined(self, status: str = "ok") -> list[dict[str, Any]]:
        """Every processing whose derivative was published to quarantine (``ok``), or that points
        at one as a copy (``duplicate``), oldest day first."""
        table = Processed.__table__
        query = (
            select(table)
            .where(table.c.status == status, table.c.verdict == "quarantined")
            .order_by(table.c.logical_date, table.c.output_key)
        )
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def written(self, source_key: str, output_key: str) -> str | None:
        """The sha256 of what this master's latest processing to write ``output_key`` wrote
        there, where the catalog still has it."""
        table = Processed.__table__
        query = (select(table.c.output_sha256)
                 .where(table.c.source_key == source_key, table.c.output_key == output_key, table.c.status == "ok")
                 .order_by(table.c.processed_at.desc()).limit(1))
        with self.engine.connect() as conn:
            return conn.execute(query).scalar()

    def derivatives(self, prefix: str = "", page: int = 500, *, after: str | None = None,
                    through: str | None = None) -> Iterator[dict[str, Any]]:
        """Every derivative the bucket should hold under ``prefix`` (and with a key past
        ``after`` and up to ``through``, where given), in key order: those that a master's
        latest processing (its own, or a copy's) points at, each with the latest row that
        wrote it (or, released for copies alone, a copy's). Not one superseded or rejected
        since, which the pipeline deleted or left to a person. Read ``page`` keys at a time, so
        a whole archive's check holds one page, and no query stays open while it reads."""
        table = Processed.__table__
        holds = and_(table.c.status.in_(HOLDS_A_DERIVATIVE), table.c.output_key.startswith(prefix, autoescape=True))
        if through is not None:
            holds = and_(holds, table.c.output_key <= through)
        while True:
            keys_query = select(table.c.output_key).distinct().where(holds).order_by(table.c.output_key).limit(page)
            if after is not None:
                keys_query = keys_query.where(table.c.output_key > after)
            with self.engine.connect() as conn:
                keys = list(conn.execute(keys_query).scalars())
                if not keys:
                    return
                rows = [dict(r) for r in conn.execute(select(table).where(holds, table.c.output_key.in_(keys))
                                                      .order_by(table.c.processed_at)).mappings()]
            live = {r["output_key"] for r in self.current(rows)}
            found: dict[str, dict[str, Any]] = {}
            for row in rows:  # the latest last; the writer's row before any copy's
                key = row["output_key"]
                if key in live and (row["status"] == "ok" or found.get(key, row)["status"] != "ok"):
                    found[key] = row
            yield from (found[key] for key in keys if key in found)
            after = keys[-1]

    def adopt(self, row: dict[str, Any], sha256: str) -> bool:
        """Record ``sha256`` as the checksum of the derivative ``row`` wrote, where the row still
        has none and still points at that key (a run may have made it again meanwhile)."""
        table = Processed.__table__
        statement = (update(table)
                     .where(table.c.source_key == row["source_key"], table.c.source_sha256 == row["source_sha256"],
                            table.c.output_key == row["output_key"], table.c.output_sha256.is_(None))
                     .values(output_sha256=sha256))
        with self.engine.begin() as conn:
            return conn.execute(statement).rowcount == 1

    def duplicates_at(self, output_keys: list[str]) -> dict[str, list[dict[str, Any]]]:
        """The masters whose latest processing found them copies of the content at each of these
        keys (keys that none point at left out), in one query a batch."""
        table = Processed.__table__
        rows: list[dict[str, Any]] = []
        for batch in _batches(output_keys):
            query = select(table).where(table.c.status == "duplicate", table.c.output_key.in_(batch))
            with self.engine.connect() as conn:
                rows += [dict(r) for r in conn.execute(query).mappings()]
        found: dict[str, list[dict[str, Any]]] = {}
        for row in self.current(rows):
            found.setdefault(row["output_key"], []).append(row)
        return found

    def current(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Those of these rows that are still their masters' latest processing (not superseded
        by a new version of the master or a later decision on it)."""
        latest = self.latest(list({r["source_key"] for r in rows}))
        return [r for r in rows if latest[r["source_key"]]["source_sha256"] == r["source_sha256"]]

    def latest(self, source_keys: list[str]) -> dict[str, dict[str, Any]]:
        """The latest processing of each of these masters, whatever its outcome."""
        return self._latest_by(Processed.__table__.c.source_key, source_keys)

    def _latest_by(self, column: Any, values: list[str], *conditions: Any) -> dict[str, dict[str, Any]]:
        """The latest row for each value of ``column``."""
        found: dict[str, dict[str, Any]] = {}
        for batch in _batches(values):
            query = (
                select(Processed.__table__)
                .where(column.in_(batch), *conditions)
                .order_by(Processed.__table__.c.processed_at)
            )
            with self.engine.connect() as conn:
                found.update({r[column.name]: dict(r) for r in conn.execute(query).mappings()})  # the latest last
        return found

    def claim(self, wanted: Sequence[tuple[str, str]]) -> dict[str, str]:
        """Claim each (output key, source key) whose output key no master holds yet; returns
        the master that holds each key afterwards, this one or another.

        One transaction, insert-if-absent: of two runs claiming a name at once, the second
        waits for the first's commit and finds the name taken (names are never given up).
        Names published before claims were kept are seeded from the processed rows first.
        """
        table = DerivativeName.__table__
        keys = list(dict.fromkeys(k for k, _ in wanted))
        if not keys:
            return {}
        seeded = [(k, row["source_key"]) for k, row in self.published(keys).items()]
        insert = pg_insert if self.engine.dialect.name == "postgresql" else sqlite_insert
        with self.engine.begin() as conn:
            for pairs in (seeded, list(wanted)):
                for batch in _batches(pairs):
                    values = [{"output_key": k, "source_key": s} for k, s in batch]
                    conn.execute(insert(table).values(values).on_conflict_do_nothing(index_elements=["output_key"]))
        return self.names(keys)

    def names(self, output_keys: list[str]) -> dict[str, str]:
        """The master each of these keys was claimed for, where one was."""
        table = DerivativeName.__table__
        holders: dict[str, str] = {}
        for batch in _batches(output_keys):
            query = select(table).where(table.c.output_key.in_(batch))
            with self.engine.connect() as conn:
                holders.update({r.output_key: r.source_key for r in conn.execute(query)})
        return holders

    def record(self, rows: Iterable[dict[str, Any]]) -> int:
        """Upsert ledger rows (the last of several for the same key and content wins); returns how many.

        Failed images whose bytes were read are recorded too (verdict ``failed``), so a bad
        file is not retried every night; re-uploading it changes its ETag and it is seen again.
        Two later processings of the same master and content leave a row that holds a
        derivative (its own, or another master's that it is a copy of) as it is, taking only
        their ETag: a failed retry (``force``), after which the derivative is still the
        master's, published or awaiting review (the ledger and the run's report keep the
        failure); and the master uploaded again unchanged (a new ETag, as a multipart upload
        gives the same bytes), which the shard found to be a copy of its own derivative. A
        copy's later row replaces its earlier one: both point at a derivative, and the later
        names its latest maker (a derivative made again in place, which the copy follows).
        """
        latest: dict[tuple[str, str], dict[str, Any]] = {}
        for row in (r for r in rows if r.get("source_sha256")):
            key = (row["source_key"], row["source_sha256"])
            earlier = latest.get(key)
            if earlier and _leaves_as_is(row["status"], row["output_key"], earlier["status"], earlier["output_key"]):
                latest[key] = {**earlier, "source_etag": row.get("source_etag")}
            else:
                latest[key] = row
        values = [{**{f: row.get(f) for f in FIELDS}, "settings_sha256": _settings(row)} for row in latest.values()]
        if not values:
            return 0
        insert = pg_insert if self.engine.dialect.name == "postgresql" else sqlite_insert
        statement = insert(Processed).values(values)
        table, new = Processed.__table__, statement.excluded
        kept = _leaves_as_is(new.status, new.output_key, table.c.status, table.c.output_key)
        update = {f: case((kept, table.c[f]), else_=new[f]) for f in FIELDS if f not in (*KEY, "source_etag")}
        with self.engine.begin() as conn:
            conn.execute(statement.on_conflict_do_update(index_elements=list(KEY),
                                                         set_={**update, "source_etag": new.source_etag}))
        return len(values)

    def rows(self) -> list[dict[str, Any]]:
        table = Processed.__table__
        with self.engine.connect() as conn:
            query = select(table).order_by(table.c.source_key, table.c.source_sha256)
            return [dict(r) for r in conn.execute(query).mappings()]


def _leaves_as_is(status: Any, output_key: Any, held_status: Any, held_output_key: Any) -> Any:
    """Whether a later processing (its status and output key) leaves as it is the row of the same
    master and content (its status and output key): one that holds a derivative, when the later
    one failed; the master's own derivative (or its rejection: no key), when the later one is
    a copy of it. Plain values in Python, or column expressions in SQL (where NULL keys compare
    equal too)."""
    if isinstance(status, str):
        return held_status in HOLDS_A_DERIVATIVE and (
            status == "failed" or (status == "duplicate" and held_status == "ok" and output_key == held_output_key))
    return and_(held_status.in_(HOLDS_A_DERIVATIVE), or_(
        status == "failed",
        and_(status == "duplicate", held_status == "ok", output_key.is_not_distinct_from(held_output_key))))


def _batches(values: Sequence[T], size: int = 500) -> Iterator[Sequence[T]]:
    """Slices small enough for one statement: databases cap a query's parameters."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


def settings_sha256(parameters_json: str) -> str:
    """What a copy's settings are matched by (the ledger's ``parameters_json``): a derivative
    made with other settings (another preset, scale or override) is not reused."""
    return hashlib.sha256(parameters_json.encode()).hexdigest()


def _settings(row: dict[str, Any]) -> str | None:
    return settings_sha256(row["parameters_json"]) if row.get("parameters_json") else None


def rebuild(catalog: Catalog, ledger_rows: Iterable[dict[str, Any]]) -> int:
    """Replace the catalog's contents with what the ledger says, the latest processing of each master winning."""
    with catalog.engine.begin() as conn:
        conn.execute(delete(Processed))
        conn.execute(delete(DerivativeName))  # claimed again from the rebuilt rows when next asked
    return catalog.record(sorted(ledger_rows, key=lambda r: r["processed_at"]))
