"""The catalog's schema is created once even when two runs open a fresh catalog at once."""
from __future__ import annotations

import threading
import time

from services import postgres
from sqlalchemy import Engine, create_engine, text

from enhance_ops.catalog import Base, Catalog


def test_a_catalog_opened_while_another_creates_its_table_does_not_fail() -> None:
    """Real PostgreSQL, the race made deterministic: the first creator holds its transaction
    open while the second (which found no table) waits on it, then commits."""
    with postgres(("catalog",)) as server:
        url = f"{server}/catalog"
        first, monitor = create_engine(url), create_engine(url)
        outcome: dict[str, object] = {}

        def open_second() -> None:
            try:
                outcome["catalog"] = Catalog(url)
            except Exception as exc:  # whatever the second creator raised is the test's failure
                outcome["error"] = exc

        with first.connect() as conn:
            transaction = conn.begin()
            Base.metadata.create_all(conn)  # created, not yet committed
            second = threading.Thread(target=open_second)
            second.start()
            deadline = time.monotonic() + 30
            while not _waiting_on_a_lock(monitor) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert _waiting_on_a_lock(monitor), "the second creator never reached its CREATE TABLE"
            transaction.commit()
        second.join(timeout=30)
        assert "error" not in outcome, outcome.get("error")
        catalog = outcome["catalog"]
        assert isinstance(catalog, Catalog) and catalog.rows() == []
        for engine in (first, monitor, catalog.engine):
            engine.dispose()


def _waiting_on_a_lock(monitor: Engine) -> bool:
    """Asked on a connection of its own: within a transaction PostgreSQL keeps showing the
    activity snapshot it took first."""
    with monitor.connect() as conn:
        return bool(conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")).scalar())
