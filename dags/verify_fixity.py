"""Fixity: every week, each derivative in the bucket read back against the sha256 recorded when it was written.

The derivatives are cut into runs of consecutive keys (``$ENHANCE_FIXITY_PARTS``, 8), each read
by a mapped task, so a large archive is read by several workers at once. What they found goes
to ``reports/fixity/<date>/<run>.json`` and ``.html``; the run fails (unretried: reading again
finds the same) when a derivative changed or is missing, so Airflow's failure alerts reach
whoever looks after the archive. Triggered by hand with a ``prefix``, it checks part of it (a
day's ``enhanced/2026-11-30/``). ``enhance_ops.fixity`` does the work.
"""
from __future__ import annotations

from typing import Any

from airflow.sdk import Param, dag, task

from enhance_ops.airflow import wiring
from enhance_ops.airflow.assets import REPORTS
from enhance_ops.airflow.dag_defaults import SHARED


@dag(
    dag_id="verify_fixity",
    schedule="0 6 * * 0",  # Sundays 06:00 UTC, clear of the nightly runs
    **SHARED,
    tags=["archive", "fixity"],
    params={
        "bucket": Param("archive", type="string"),
        "prefix": Param("", type="string", description="only derivatives under this prefix, e.g. enhanced/2026-11-30/ "
                                                       "(empty: all)"),
    },
)
def verify_fixity() -> None:
    @task
    def plan() -> list[dict[str, str | None]]:
        return wiring.fixity_ranges()

    @task
    def check(keys: dict[str, str | None]) -> dict[str, Any]:
        return wiring.check_fixity(keys)

    @task(outlets=[REPORTS], retries=0)
    def report(parts: list[dict[str, Any]]) -> dict[str, int]:
        return wiring.report_fixity(parts)

    report(check.expand(keys=plan()))


verify_fixity()
