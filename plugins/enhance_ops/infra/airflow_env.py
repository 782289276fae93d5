"""An Airflow installation of this project against a local S3 server: the environment and its set-up.

Shared by `make run`, `make standalone` and the tests, so that all three run the real DAG the
same way. The S3 credentials travel only in the ``AIRFLOW_CONN_ARCHIVE_S3`` variable of the
processes started with this environment (never on a command line, in a file or in a log).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .seaweedfs import S3Server

PROJECT = Path(__file__).resolve().parents[3]
CONN_ID = "archive_s3"


def airflow_bin() -> str:
    return str(Path(sys.executable).parent / "airflow")


def airflow_env(home: Path, s3: S3Server, *, base: dict[str, str], catalog_url: str | None = None) -> dict[str, str]:
    """``base`` (usually ``os.environ``) plus what Airflow needs to run the project's DAGs on ``s3``."""
    home.mkdir(parents=True, exist_ok=True)
    connection = {"conn_type": "aws", "login": s3.access_key, "password": s3.secret_key,
                  "extra": {"endpoint_url": s3.endpoint, "region_name": "us-east-1"}}
    return {
        **base,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT / "plugins"),
        f"AIRFLOW_CONN_{CONN_ID.upper()}": json.dumps(connection),
        "ENHANCE_S3_CONN_ID": CONN_ID,
        "ENHANCE_CATALOG_URL": catalog_url or f"sqlite:///{home / 'enhance_catalog.db'}",
        "PYTHONPATH": str(PROJECT / "plugins"),
        # `airflow standalone` starts its components as plain `airflow` from PATH: this installation's
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), base.get("PATH", "")]),
    }


def prepare(env: dict[str, str], gpu_slots: int = 1) -> None:
    """Create or upgrade the metadata database and the ``gpu`` pool the shard tasks run in."""
    for command in (["db", "migrate"], ["pools", "set", "gpu", str(gpu_slots), "GPU workers (one slot per GPU)"]):
        done = subprocess.run([airflow_bin(), *command], env=env, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(command)} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
