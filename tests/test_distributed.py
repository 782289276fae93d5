"""The DAG on a real distributed Airflow: CeleryExecutor, PostgreSQL, Redis, two workers, SeaweedFS.

Everything docker-compose.yaml runs in containers, run here as processes on loopback: the
API server, scheduler, DAG processor and two `airflow celery worker`s serving the default
and ``gpu`` queues. The test drives it the way operators do: unpausing the DAG and
triggering a run through the REST API, and `airflow backfill create` over two dates; then it
checks that shards ran on both workers and that the catalog lives in PostgreSQL.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import requests
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


def test_celery_workers_share_the_shards_of_api_triggered_and_backfilled_runs(tmp_path: Path) -> None:
    yesterday = (dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)).isoformat()  # the scheduled night
    # (prefix, how many samples, their size): each batch's bytes differ, so none is a duplicate of another
    batches = {f"incoming/{BACKFILL_DAYS[0]}/": (4, 24), f"incoming/{BACKFILL_DAYS[1]}/": (4, 26),
               f"incoming/{yesterday}/": (2, 22), "special/box-1/": (2, 20)}
    with postgres(("airflow", "catalog")) as pg, redis() as broker:
        s3 = seaweedfs.start(tmp_path / "s3", access_key="archive", secret_key=secrets.token_urlsafe(16))
        try:
            s3.client().create_bucket(Bucket="archive")
            store = S3Store(s3.client(), "archive")
            for prefix, (count, side) in batches.items():
                for path in write_samples(tmp_path / f"samples-{side}", long_side=side)[:count]:
                    store.put(prefix + path.name, path.read_bytes())

            port, password = free_port(), secrets.token_urlsafe(12)
            (tmp_path / "passwords.json").write_text(json.dumps({"admin": password}))
            env = airflow_env(tmp_path / "airflow", s3, base=dict(os.environ), catalog_url=f"{pg}/catalog")
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
                "ENHANCE_TASK_RETRIES": "0",
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

            states = {r["dag_run_id"]: r["state"] for r in runs}
            assert set(states.values()) == {"success"}, (states, (logs / "scheduler.log").read_text()[-3000:])
            assert {r["run_type"] for r in runs} >= {"scheduled", "manual", "backfill"}

            rows = [row for o in store.list("ledger/") for row in from_parquet(store.get(o.key))]
            days = {str(r["logical_date"]) for r in rows}
            assert days == {*BACKFILL_DAYS, yesterday, "2026-11-17"}
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
            s3.stop()
