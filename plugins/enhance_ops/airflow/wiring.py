"""The Airflow side of each task: credentials from a Connection, settings from Params and context.

Storage goes through the Amazon provider's S3Hook with the connection ``$ENHANCE_S3_CONN_ID``
(default ``archive_s3``): no credentials in code, logs or the ledger. The catalog lives at
``$ENHANCE_CATALOG_URL`` (default: SQLite under ``$AIRFLOW_HOME``; PostgreSQL with several workers). XCom carries only small
dicts: the run config, counts and object keys. ``$ENHANCE_DEVICE`` (``cuda`` on GPU workers, default
``cpu``) says where the networks run; ``$ENHANCE_STALL_S`` (default 1800, 0: none) how long a shard
may make no progress before its watchdog kills the worker.
"""
from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from typing import Any

from ..catalog import Catalog, default_url
from ..storage import BucketError, S3Store, client_config
from ..watchdog import stall_limit
from . import tasks


def store(bucket: str, *, checked: bool = False) -> S3Store:
    """The bucket through S3Hook and the project's Airflow connection (credentials stay in the connection);
    ``checked``: its name and keys tried once first (a DAG's first task, a command), so that a
    wrong one fails there, said plainly.

    A connection that does not exist is an error: S3Hook would carry on without it, on
    boto3's own search for credentials, and so reach whatever account the worker's
    environment points at."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    conn_id = os.environ.get("ENHANCE_S3_CONN_ID", "archive_s3")
    hook = S3Hook(aws_conn_id=conn_id, config=client_config())
    if not hook.conn_config:
        raise BucketError(f"s3://{bucket}: there is no Airflow connection {conn_id!r} ($ENHANCE_S3_CONN_ID): "
                          f"define it (AIRFLOW_CONN_{conn_id.upper()}, or in the UI) with the endpoint and keys")
    opened = S3Store(hook.get_conn(), bucket)
    if checked:
        opened.check()
    return opened


def catalog() -> Catalog:
    return Catalog(default_url())


def _config(cfg: dict[str, Any]) -> tasks.RunConfig:
    return tasks.RunConfig.from_dict({k: v for k, v in cfg.items() if k != "bucket"})


def configure() -> dict[str, Any]:
    """The run's settings from its Params and logical date, validated once for every task after it."""
    from airflow.sdk import get_current_context

    context = get_current_context()
    params = context["params"]
    when = context.get("logical_date") or context["dag_run"].run_after  # manual runs may have no logical date
    day = dt.date.fromisoformat(params["date"]) if params.get("date") else when.date()
    cfg = tasks.RunConfig(
        run_id=tasks.clean_run_id(context["run_id"]),
        logical_date=day,
        end_date=dt.date.fromisoformat(params["end_date"]) if params.get("end_date") else None,
        prefix=params.get("prefix") or None,
        preset=params["preset"],
        scale=int(params["scale"]),
        overrides=tuple(params.get("overrides") or ()),
        gate=tuple(params.get("gate") or ()),
        shard_size=int(params["shard_size"]),
        shard_bytes=int(params["shard_mb"] * 1024**2),
        force=bool(params["force"]),
        max_pixels=int(params["max_megapixels"] * 1_000_000),
        max_file_bytes=int(params["max_file_mb"] * 1024**2),
        max_images=int(params["max_images"]),
        # a backfill is about its own days, and its runs overlap: looking back would take the
        # images of a day whose own run is still on its way
        lookback_days=0 if context["dag_run"].run_type == "backfill" else int(params.get("lookback_days") or 0),
    )
    tasks.validate(cfg)
    stall_limit()  # a bad ENHANCE_STALL_S is refused here, not by every shard
    store(params["bucket"], checked=True)
    return {**cfg.as_dict(), "bucket": params["bucket"]}


def discover(cfg: dict[str, Any]) -> dict[str, Any]:
    return tasks.discover(store(cfg["bucket"]), catalog(), _config(cfg))


def plan_shards(cfg: dict[str, Any], discovered: dict[str, Any]) -> list[str]:
    keys = tasks.plan_shards(store(cfg["bucket"]), _config(cfg), discovered["listing"])
    return [f"{cfg['bucket']}/{key}" for key in keys]


def enhance_shard(manifest: str) -> dict[str, Any]:
    bucket, key = manifest.split("/", 1)
    return tasks.enhance_shard(store(bucket), catalog(), key, device=os.environ.get("ENHANCE_DEVICE", "cpu"),
                               stall_s=stall_limit())


def settle_shards(cfg: dict[str, Any] | None, manifests: list[str] | None,
                  shards: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The results of the shards that finished, and the manifests of those that failed past
    their retries: one shard's lasting storage fault had kept the whole night from being
    gated, published and reported. The run goes on with the rest; ``every_shard_enhanced``
    fails it at the end. Where the shards were never planned there is nothing to go on with."""
    from airflow.sdk.exceptions import AirflowFailException

    if cfg is None or manifests is None:
        raise AirflowFailException("the run's shards were never planned: configure, discover or plan_shards failed "
                                   "(its log says why)")
    results = sorted(shards, key=lambda s: s["shard"])
    finished = {s["shard"] for s in results}
    return {"shards": results, "planned": len(manifests),
            "failed": [key for n, key in enumerate(manifests) if n not in finished]}


def _parts(settled: dict[str, Any]) -> list[str]:
    return [s["part"] for s in settled["shards"]]


def quality_gate(cfg: dict[str, Any], settled: dict[str, Any]) -> dict[str, Any]:
    return tasks.quality_gate(store(cfg["bucket"]), _config(cfg), _parts(settled))


def publish(cfg: dict[str, Any], settled: dict[str, Any]) -> dict[str, int]:
    return tasks.publish(store(cfg["bucket"]), catalog(), _config(cfg), _parts(settled))


def write_ledger(cfg: dict[str, Any], settled: dict[str, Any]) -> list[str]:
    return tasks.write_ledger(store(cfg["bucket"]), _config(cfg), _parts(settled))


def write_report(cfg: dict[str, Any], settled: dict[str, Any], gate_summary: dict[str, Any]) -> str:
    failed = [key.split("/", 1)[1] for key in settled["failed"]]
    return tasks.write_report(store(cfg["bucket"]), catalog(), _config(cfg), _parts(settled), gate_summary,
                              failed_shards=(failed, settled["planned"]))


def every_shard_enhanced(settled: dict[str, Any]) -> None:
    """The run's last task: a run whose shards did not all finish is failed, though the rest of
    it was published and reported, so that it shows as failed and its failed shards get cleared."""
    from airflow.sdk.exceptions import AirflowFailException

    if settled["failed"]:
        names = ", ".join(key.rsplit("/", 1)[-1] for key in settled["failed"])
        raise AirflowFailException(
            f"{len(settled['failed'])} of {settled['planned']} shards failed past their retries ({names}): their "
            f"images were not enhanced; the other shards' were gated, published and reported. Once the cause is "
            f"fixed, clear the failed enhance_shard tasks with their downstream tasks to finish the run")


def expire_old_runs(cfg: dict[str, Any]) -> dict[str, int]:
    keep_days = int(os.environ.get("ENHANCE_KEEP_RUNS_DAYS", "14"))
    return tasks.expire_runs(store(cfg["bucket"]), _config(cfg), keep_days)


def fixity_ranges() -> list[dict[str, str | None]]:
    """The fixity DAG's first task: the runs of keys its mapped checks read, at most
    ``$ENHANCE_FIXITY_PARTS`` (8) of them."""
    from airflow.sdk import get_current_context

    from .. import fixity

    params = get_current_context()["params"]
    store(params["bucket"], checked=True)
    parts = int(os.environ.get("ENHANCE_FIXITY_PARTS", "8"))
    ranges = fixity.ranges(catalog(), params["prefix"], parts)
    return [{"after": after, "through": through} for after, through in ranges]


def check_fixity(keys: dict[str, str | None]) -> dict[str, Any]:
    """One mapped check: a run of keys read back; what it found, for ``report_fixity``."""
    from airflow.sdk import get_current_context

    from .. import fixity

    params = get_current_context()["params"]
    return fixity.part(store(params["bucket"]), catalog(), params["prefix"], keys["after"], keys["through"])


def report_fixity(parts: list[dict[str, Any]]) -> dict[str, int]:
    """The fixity DAG's last task: the checks' findings at ``reports/fixity/<date>/<run>.json``
    and ``.html``; it fails, unretried (reading again finds the same), when a derivative changed or is missing."""
    from airflow.sdk import get_current_context
    from airflow.sdk.exceptions import AirflowFailException

    from .. import fixity

    context = get_current_context()
    params = context["params"]
    day = (context.get("logical_date") or context["dag_run"].run_after).date()  # manual runs may have no logical date
    run_id = tasks.clean_run_id(context["run_id"])
    key = f"reports/fixity/{day.isoformat()}/{run_id}"
    found = fixity.record(store(params["bucket"]), params["prefix"], list(parts), key, title=f"Fixity check {run_id}")
    if found["failing"]:
        raise AirflowFailException(f"{found['summary']}; each one in s3://{params['bucket']}/{key}.html and .json")
    return found["counts"]


def review_decision() -> list[str | None]:
    """The review DAG's one task: its Params to ``review.release`` or ``review.reject``;
    returns each ledger row's new output key (None where rejected)."""
    from airflow.sdk import get_current_context

    from ..review import DECISIONS
    from .assets import ENHANCED, RELEASED

    context = get_current_context()
    params = context["params"]
    rows = DECISIONS[params["decision"]](store(params["bucket"], checked=True), catalog(), params["keys"] or [],
                                         by=params.get("by") or "", reason=params.get("reason") or "")
    if params["decision"] == "release":  # a rejection changes nothing that enhanced/'s consumers read
        context["outlet_events"][RELEASED].add(ENHANCED)
    return [row["output_key"] for row in rows]
