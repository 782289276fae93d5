"""Nightly enhancement of the day's scans: discover → shards → enhance (GPU pool) → gate → publish → ledger → report
→ delete earlier runs' bookkeeping (``runs/<run>/``) untouched for ``$ENHANCE_KEEP_RUNS_DAYS`` (14) days → fail the
run if a shard failed.

Wiring only: every task calls a function in ``enhance_ops.airflow.tasks``. Manual triggers
take the Params below (backfills: another day, a range of days or an explicit prefix, another
preset or scale, re-processing with ``force``); ``airflow backfill create`` makes one run per
day. The tasks after the shards also run when a day brought nothing new, so every night has
its ledger check and report, and when a shard failed past its retries: the shards that
finished are gated, published and reported, the report names the failed shards' images,
and the run's last task fails it.
"""
from __future__ import annotations

import datetime as dt
import os

from airflow.sdk import CronDataIntervalTimetable, Param, TriggerRule, dag, task

from enhance_ops.airflow import wiring
from enhance_ops.airflow.assets import ENHANCED, LEDGER, REPORTS
from enhance_ops.airflow.dag_defaults import SHARED
from enhance_ops.airflow.tasks import MAX_LOOKBACK_DAYS
from enhance_ops.chain.presets import PRESETS, SCALES  # plain data: no torch at parse time
from enhance_ops.formats import DEFAULT_MAX_PIXELS

AFTER_SHARDS = TriggerRule.NONE_FAILED  # an empty day skips enhance_shard; the gate, ledger and report still run
SHARDS_DONE = TriggerRule.ALL_DONE  # settle_shards waits for every shard, failed ones included
# The run for day D covers the interval [D 00:00, D+1 00:00) UTC and starts when it ends: its
# logical date is D, so it enhances incoming/D/ once the day is over.
NIGHTLY = CronDataIntervalTimetable("0 0 * * *", timezone="UTC")


@dag(
    dag_id="enhance_daily",
    schedule=NIGHTLY,
    **SHARED,
    tags=["archive", "enhancement"],
    default_args={
        "retries": int(os.environ.get("ENHANCE_TASK_RETRIES", "3")),
        "retry_delay": dt.timedelta(seconds=int(os.environ.get("ENHANCE_RETRY_DELAY_S", "300"))),
    },
    params={
        "bucket": Param("archive", type="string", description="bucket holding incoming/, enhanced/, ledger/ …"),
        "date": Param(None, type=["null", "string"], format="date",
                      description="day to process (YYYY-MM-DD); empty: the run's logical date"),
        "end_date": Param(None, type=["null", "string"], format="date",
                          description="last day of a range starting at date (inclusive); empty: one day"),
        "prefix": Param(None, type=["null", "string"],
                        description="explicit source folder for backfills; empty: incoming/<date>/"),
        "preset": Param("archive-photo", type="string", enum=sorted(PRESETS)),
        "scale": Param(4, type="integer", enum=list(SCALES)),
        "shard_size": Param(16, type="integer", minimum=1, maximum=1000, description="images per GPU task"),
        "shard_mb": Param(2048, type="number", exclusiveMinimum=0,
                          description="megabytes of masters per GPU task at most (a larger master goes alone), "
                                      "so that large scans spread over more tasks"),
        "force": Param(False, type="boolean", description="re-process images the catalog already holds"),
        "max_megapixels": Param(DEFAULT_MAX_PIXELS / 1e6, type="number", exclusiveMinimum=0,
                                description="larger images fail (too_large) before decoding: the decompression-bomb guard"),
        "max_file_mb": Param(2048, type="number", exclusiveMinimum=0,
                             description="larger files fail (file_too_large) without being downloaded"),
        "max_images": Param(100000, type="integer", minimum=1,
                            description="images per run at most; the rest wait for the next run"),
        "lookback_days": Param(3, type="integer", minimum=0, maximum=MAX_LOOKBACK_DAYS,
                               description="also take what is new in the previous days' incoming folders "
                                           "(late uploads, images deferred by max_images); not with prefix or force"),
        "overrides": Param([], type="array", items={"type": "string"},
                           description="preset overrides, e.g. denoise.strength=strong"),
        "gate": Param([], type="array", items={"type": "string"},
                      description="gate thresholds, e.g. min_consistency_psnr_db=28"),
    },
)
def enhance_daily() -> None:
    @task
    def configure() -> dict:
        return wiring.configure()

    @task
    def discover(cfg: dict) -> dict:
        return wiring.discover(cfg)

    @task
    def plan_shards(cfg: dict, discovered: dict) -> list[str]:
        return wiring.plan_shards(cfg, discovered)

    @task(pool="gpu", queue="gpu", max_active_tis_per_dag=4)
    def enhance_shard(manifest_key: str) -> dict:
        return wiring.enhance_shard(manifest_key)

    @task(trigger_rule=SHARDS_DONE)
    def settle_shards(cfg: dict, manifests: list[str], shards: list[dict]) -> dict:
        return wiring.settle_shards(cfg, manifests, shards)

    @task(trigger_rule=AFTER_SHARDS)
    def quality_gate(cfg: dict, settled: dict) -> dict:
        return wiring.quality_gate(cfg, settled)

    @task(outlets=[ENHANCED], trigger_rule=AFTER_SHARDS)
    def publish(cfg: dict, settled: dict, gate_summary: dict) -> dict:
        return wiring.publish(cfg, settled)

    @task(outlets=[LEDGER], trigger_rule=AFTER_SHARDS)
    def write_ledger(cfg: dict, settled: dict, published: dict) -> list[str]:
        return wiring.write_ledger(cfg, settled)

    @task(outlets=[REPORTS], trigger_rule=AFTER_SHARDS)
    def write_report(cfg: dict, settled: dict, gate_summary: dict, ledger_keys: list[str]) -> str:
        return wiring.write_report(cfg, settled, gate_summary)

    @task(trigger_rule=AFTER_SHARDS)
    def expire_old_runs(cfg: dict, report_key: str) -> dict:
        return wiring.expire_old_runs(cfg)

    @task(trigger_rule=AFTER_SHARDS)
    def every_shard_enhanced(settled: dict, expired: dict) -> None:
        wiring.every_shard_enhanced(settled)

    cfg = configure()
    manifests = plan_shards(cfg, discover(cfg))
    settled = settle_shards(cfg, manifests, enhance_shard.expand(manifest_key=manifests))
    gate_summary = quality_gate(cfg, settled)
    published = publish(cfg, settled, gate_summary)
    report_key = write_report(cfg, settled, gate_summary, write_ledger(cfg, settled, published))
    every_shard_enhanced(settled, expire_old_runs(cfg, report_key))


enhance_daily()
