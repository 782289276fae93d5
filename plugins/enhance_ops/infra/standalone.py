"""`make standalone`: the Airflow UI over the project's DAG and a local S3 server, for trying it by hand.

Unlike `make run` it keeps its state (``<out>/standalone/``) between starts: the bucket, the
metadata database and the catalog, as a real installation would. The sample batch is
uploaded to ``incoming/<day>/`` once; unpause ``enhance_daily`` in the UI and trigger it with that date.
Ctrl-C stops Airflow and the S3 server.
"""
from __future__ import annotations

import datetime as dt
import os
import secrets
import subprocess
from pathlib import Path

from ..storage import S3Store
from . import seaweedfs
from .airflow_env import airflow_bin, airflow_env, prepare
from .nightly_demo import BUCKET, seed


def run_standalone(out: Path, day: dt.date, *, port: int = 8080) -> int:
    root = (out / "standalone").resolve()
    secret_file = root / "s3-secret"  # the local server's key, kept so its data stays readable
    root.mkdir(parents=True, exist_ok=True)
    if not secret_file.exists():
        secret_file.write_text(secrets.token_urlsafe(24))
        secret_file.chmod(0o600)
    server = seaweedfs.start(root / "s3-data", access_key="archive", secret_key=secret_file.read_text().strip())
    try:
        client = server.client()
        if BUCKET not in {b["Name"] for b in client.list_buckets().get("Buckets", [])}:
            client.create_bucket(Bucket=BUCKET)
        store = S3Store(client, BUCKET)
        if not store.list(f"incoming/{day.isoformat()}/"):
            seed(store, day, None, 128)
        env = airflow_env(root / "airflow", server, base=dict(os.environ))
        env.update({"AIRFLOW__API__HOST": "127.0.0.1", "AIRFLOW__API__PORT": str(port),
                    "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
                    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/"})
        prepare(env)
        print(f"S3 server: {server.endpoint} (bucket {BUCKET}; scans in incoming/{day}/)\n"
              f"Airflow UI: http://127.0.0.1:{port}  (user admin; password in "
              f"{root / 'airflow' / 'simple_auth_manager_passwords.json.generated'})\n"
              f"Unpause enhance_daily, then trigger it with date={day}; Ctrl-C stops everything.", flush=True)
        airflow = subprocess.Popen([airflow_bin(), "standalone"], env=env)
        try:
            return airflow.wait()
        except KeyboardInterrupt:
            return 0
        finally:
            airflow.terminate()
            airflow.wait(timeout=60)
    finally:
        server.stop()
