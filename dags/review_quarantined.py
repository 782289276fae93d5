"""After review: quarantined derivatives released to enhanced/ or rejected, with who and why in the ledger.

Triggered by hand (the UI's trigger form or the REST API) with the decision and the
``quarantine/<day>/…`` keys that the run's report (or ``review-queue``) lists;
``enhance_ops.review`` does the work. Nothing changes unless every key is a quarantined
derivative awaiting review.
"""
from __future__ import annotations

from airflow.sdk import Param, dag, task

from enhance_ops.airflow import wiring
from enhance_ops.airflow.assets import LEDGER, RELEASED
from enhance_ops.airflow.dag_defaults import SHARED


@dag(
    dag_id="review_quarantined",
    schedule=None,
    **SHARED,
    tags=["archive", "review"],
    params={
        "bucket": Param("archive", type="string"),
        "decision": Param("release", enum=["release", "reject"],
                          description="release: move to enhanced/; reject: delete (unless changed by hand), not to be made again with the same settings"),
        "keys": Param([], type="array", items={"type": "string"},
                      description="quarantine/<day>/… keys, as the run's report lists them"),
        "by": Param(None, type=["null", "string"], description="who decided (kept in the ledger)"),
        "reason": Param(None, type=["null", "string"], description="why (kept in the ledger)"),
    },
)
def review_quarantined() -> None:
    @task(outlets=[LEDGER, RELEASED])  # RELEASED: an event of the enhanced/ Asset, for releases only
    def decide() -> list[str | None]:
        return wiring.review_decision()

    decide()


review_quarantined()
