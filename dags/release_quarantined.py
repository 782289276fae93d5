"""After review: quarantined derivatives released to enhanced/, with who and why in the ledger.

Triggered by hand (the UI's trigger form or the REST API) with the ``quarantine/<day>/…``
keys that the run's report lists; ``enhance_ops.review`` does the work. Nothing moves unless
every key is a quarantined derivative the catalog knows.
"""
from __future__ import annotations

import datetime as dt

from airflow.sdk import Param, dag, task

from enhance_ops.airflow import wiring
from enhance_ops.airflow.assets import ENHANCED


@dag(
    dag_id="release_quarantined",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,
    tags=["archive", "review"],
    params={
        "bucket": Param("archive", type="string"),
        "keys": Param([], type="array", items={"type": "string"},
                      description="quarantine/<day>/… keys to release, as the run's report lists them"),
        "by": Param(None, type=["null", "string"], description="who decided (kept in the ledger)"),
        "reason": Param(None, type=["null", "string"], description="why (kept in the ledger)"),
    },
)
def release_quarantined() -> None:
    @task(outlets=[ENHANCED])
    def release() -> list[str]:
        return wiring.release()

    release()


release_quarantined()
