"""The DAG on a real distributed Airflow: CeleryExecutor, PostgreSQL, Redis, two workers, SeaweedFS.

Everything docker-compose.yaml runs in containers, run here as processes on loopback: the
API server, scheduler, DAG processor and two `airflow celery worker`s serving the default
and ``gpu`` queues. The test drives it the way operators do: unpausing the DAG and
triggering a run through the REST API, and `airflow backfill create` over two dates; then it
checks that shards ran on both workers and that the catalog lives in PostgreSQL. Last, a
run whose shard fails past its retries (a real proxy in front of SeaweedFS refuses its
writes) is resumed as README tells operators to: the failed map index cleared with its
downstream tasks through the REST API, once the fault is gone.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import html
import json
import os
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import requests
from faults import FaultyProxy
from services import free_port, postgres, redis

from enhance_ops.catalog import Catalog
from enhance_ops.infra import seaweedfs
from enhance_ops.infra.airflow_env import airflow_bin, airflow_env, prepare
from enhance_ops.quality.ledger import from_parquet
from enhance_ops.samples import write_samples
from enhance_ops.storage import S3Store

WORKERS = ("worker-a", "worker-b")
BACKFILL_DAYS = ("2026-11-18", "2026-11-19")
TIMEOUT_S = 900
CLEARED = "box-2-resumed"  # the run whose failed shard is cleared


@contextlib.contextmanager
def _processes(env: dict[str, str], logs: Path) -> Iterator[Callable[[], None]]:
    commands = {
        "api-server": ["api-server", "--port", env["AIRFLOW__API__PORT"]],
        "scheduler": ["scheduler", "--skip-serve-logs"],
        "dag-processor": ["dag-processor"],
        **{name: ["celery", "worker", "--queues", "default,gpu", "--concurrency", "1", "--skip-serve-logs",
                  "--celery-hostname", f"{name}@%h"] for name in WORKERS},
    }
    running = []
    try:
        for name, args in commands.items():
            own = {**env, "ENHANCE_WORKER_NAME": name} if name in WORKERS else env
            with (logs / f"{name}.log").open("wb") as log:
                running.append(subprocess.Popen([airflow_bin(), *args], env=own, stdout=log, stderr=subprocess.STDOUT,
                                                start_new_session=True))

        def alive() -> None:
            for name, process in zip(commands, running):
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited: " + (logs / f"{name}.log").read_text()[-3000:])

        yield alive
    finally:
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, 15)
        for process in running:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, 9)
                process.wait()


class Api:
    """The Airflow REST API (v2) with a token from the simple auth manager, as README shows with curl."""

    def __init__(self, base: str, password: str) -> None:
        self.base, self.password, self.token = base, password, ""

    def login(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(requests.ConnectionError):
                reply = requests.post(f"{self.base}/auth/token", json={"username": "admin", "password": self.password},
                                      timeout=10)
                if reply.status_code == 201:
                    self.token = reply.json()["access_token"]
                    return
            if time.monotonic() > deadline:
                raise TimeoutError("the API server did not come up")
            time.sleep(2)

    def call(self, method: str, path: str, **kwargs: object) -> dict:
        reply = requests.request(method, f"{self.base}/api/v2{path}", headers={"Authorization": f"Bearer {self.token}"},
                                 timeout=30, **kwargs)  # type: ignore[arg-type]
        assert reply.ok, f"{method} {path}: {reply.status_code} {reply.text[:500]}"
        return reply.json()


def _wait_for_dag(api: Api, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reply = requests.get(f"{api.base}/api/v2/dags/enhance_daily", headers={"Authorization": f"Bearer {api.token}"},
                             timeout=30)
        if reply.status_code == 200:
            return
        time.sleep(3)
    raise TimeoutError("the DAG processor did not register enhance_daily")


def _wait_for_runs(api: Api, expected: int, alive: Callable[[], None], timeout: float = TIMEOUT_S) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive()
        runs = api.call("GET", "/dags/enhance_daily/dagRuns", params={"limit": 50})["dag_runs"]
        if len(runs) >= expected and all(r["state"] in ("success", "failed") for r in runs):
            return runs
        time.sleep(5)
    raise TimeoutError(f"runs did not finish: {[(r['dag_run_id'], r['state']) for r in runs]}")


def _state_once_finished(api: Api, run_id: str, alive: Callable[[], None]) -> str:
    """The run's state once it and every other run have finished (``_wait_for_runs``)."""
    runs = _wait_for_runs(api, expected=5, alive=alive)
    return next(r["state"] for r in runs if r["dag_run_id"] == run_id)


def _shard_tries(api: Api, run_id: str) -> dict[int, int]:
    found = api.call("GET", f"/dags/enhance_daily/dagRuns/{run_id}/taskInstances", params={"limit": 100})
    return {ti["map_index"]: ti["try_number"] for ti in found["task_instances"] if ti["task_id"] == "enhance_shard"}


def _resume_a_failed_shard(api: Api, proxy: FaultyProxy, store: S3Store, alive: Callable[[], None]) -> None:
    """A shard failing past its retries fails the run, its images held back; clearing its map
    index with the tasks downstream, as an operator does once the fault is gone, re-runs that
    shard alone, then gates, publishes, files and reports the whole run again."""
    proxy.inject("PUT", "slowdown", times=10_000, path=f"runs/{CLEARED}/attempts/shard-00001")
    api.call("POST", "/dags/enhance_daily/dagRuns", json={
        "dag_run_id": CLEARED, "logical_date": None,
        "conf": {"prefix": "special/box-2/", "date": "2026-11-16", "scale": 2, "preset": "fidelity", "shard_size": 2}})
    assert _state_once_finished(api, CLEARED, alive) == "failed"
    [manifest] = [o.key for o in store.list(f"runs/{CLEARED}/shards/") if o.key.endswith("shard-00001.json")]
    held_back = sorted(obj["key"] for obj in json.loads(store.get(manifest))["objects"])
    before = [r for o in store.list("ledger/") for r in from_parquet(store.get(o.key)) if r["run_id"] == CLEARED]
    assert len(held_back) == 2 and len(before) == 4 and not set(held_back) & {r["source_key"] for r in before}
    report_key = f"reports/2026-11-16/{CLEARED}.html"
    assert "1 of this run's 3 shards failed past their retries" in html.unescape(store.get(report_key).decode())

    proxy.faults.clear()
    api.call("POST", "/dags/enhance_daily/clearTaskInstances", json={
        "dag_run_id": CLEARED, "task_ids": [["enhance_shard", 1]], "include_downstream": True, "only_failed": False,
        "dry_run": False})
    assert _state_once_finished(api, CLEARED, alive) == "success"
    assert _shard_tries(api, CLEARED) == {0: 1, 1: 2, 2: 1}  # the two sound shards were not run again
    rows = [r for o in store.list("ledger/") for r in from_parquet(store.get(o.key)) if r["run_id"] == CLEARED]
    assert sorted(r["source_key"] for r in rows) == sorted(o.key for o in store.list("special/box-2/"))  # each once
    assert all(r["status"] == "ok" and r["verdict"] for r in rows)
    published = {o.key for prefix in ("enhanced/2026-11-16/", "quarantine/2026-11-16/") for o in store.list(prefix)}
    assert {r["output_key"] for r in rows} == published
    assert "failed past their retries" not in html.unescape(store.get(report_key).decode())


def test_celery_workers_share_the_shards_of_api_triggered_and_backfilled_runs(tmp_path: Path) -> None:
    yesterday = (dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)).isoformat()  # the scheduled night
    # (prefix, how many samples, their size): each batch's bytes differ, so none is a duplicate of another
    batches = {f"incoming/{BACKFILL_DAYS[0]}/": (4, 24), f"incoming/{BACKFILL_DAYS[1]}/": (4, 26),
               f"incoming/{yesterday}/": (2, 22), "special/box-1/": (2, 20), "special/box-2/": (6, 28)}
    with postgres(("airflow", "catalog")) as pg, redis() as broker:
        s3 = seaweedfs.start(tmp_path / "s3", access_key="archive", secret_key=secrets.token_urlsafe(16))
        proxy = FaultyProxy(s3.endpoint)  # every process's way to the bucket, faultless until told
        try:
            s3.client().create_bucket(Bucket="archive")
            store = S3Store(s3.client(), "archive")
            for prefix, (count, side) in batches.items():
                for path in write_samples(tmp_path / f"samples-{side}", long_side=side)[:count]:
                    store.put(prefix + path.name, path.read_bytes())

            port, password = free_port(), secrets.token_urlsafe(12)
            (tmp_path / "passwords.json").write_text(json.dumps({"admin": password}))
            env = airflow_env(tmp_path / "airflow", dataclasses.replace(s3, endpoint=proxy.endpoint),
                              base=dict(os.environ), catalog_url=f"{pg}/catalog")
            env.update({
                "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"{pg}/airflow",
                "AIRFLOW__CELERY__BROKER_URL": broker,
                "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{pg}/airflow",
                "AIRFLOW__API__HOST": "127.0.0.1", "AIRFLOW__API__PORT": str(port),
                "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(tmp_path / "passwords.json"),
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "ENHANCE_TASK_RETRIES": "0", "ENHANCE_S3_MAX_ATTEMPTS": "2",
            })
            prepare(env, gpu_slots=len(WORKERS))
            logs = tmp_path / "logs"
            logs.mkdir()
            with _processes(env, logs) as alive:
                api = Api(f"http://127.0.0.1:{port}", password)
                api.login()
                _wait_for_dag(api)
                api.call("PATCH", "/dags/enhance_daily", json={"is_paused": False})  # the nightly schedule starts
                api.call("POST", "/dags/enhance_daily/dagRuns", json={
                    "logical_date": None, "conf": {"prefix": "special/box-1/", "date": "2026-11-17", "scale": 2,
                                                   "preset": "fidelity", "shard_size": 1}})
                backfill = subprocess.run(
                    [airflow_bin(), "backfill", "create", "--dag-id", "enhance_daily", "--from-date", BACKFILL_DAYS[0],
                     "--to-date", BACKFILL_DAYS[1], "--dag-run-conf",
                     json.dumps({"preset": "fidelity", "scale": 2, "shard_size": 2})],
                    env=env, capture_output=True, text=True, timeout=300)
                assert backfill.returncode == 0, backfill.stdout[-2000:] + backfill.stderr[-2000:]
                runs = _wait_for_runs(api, expected=4, alive=alive)
                _resume_a_failed_shard(api, proxy, store, alive)

            states = {r["dag_run_id"]: r["state"] for r in runs}
            assert set(states.values()) == {"success"}, (states, (logs / "scheduler.log").read_text()[-3000:])
            assert {r["run_type"] for r in runs} >= {"scheduled", "manual", "backfill"}

            rows = [row for o in store.list("ledger/") for row in from_parquet(store.get(o.key))]
            days = {str(r["logical_date"]) for r in rows}
            assert days == {*BACKFILL_DAYS, yesterday, "2026-11-17", "2026-11-16"}
            assert all(r["status"] == "ok" for r in rows), [r["error_message"] for r in rows if r["status"] != "ok"]
            for day in BACKFILL_DAYS:
                assert sum(str(r["logical_date"]) == day for r in rows) == 4
                published = store.list(f"enhanced/{day}/") + store.list(f"quarantine/{day}/")
                assert len(published) == 4
            assert {r["worker"] for r in rows} == set(WORKERS)  # both workers enhanced shards

            catalog = Catalog(f"{pg}/catalog").rows()  # the catalog lives in PostgreSQL
            assert {(c["source_key"], c["source_sha256"]) for c in catalog} == \
                {(r["source_key"], r["source_sha256"]) for r in rows}
        finally:
            proxy.close()
            s3.stop()
