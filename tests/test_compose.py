"""docker-compose.yaml cannot run here (no Docker engine); its structure is checked instead.

tests/test_distributed.py runs the same services as processes, with the same settings.
"""
from __future__ import annotations

import re
from pathlib import Path

import yaml

PROJECT = Path(__file__).resolve().parents[1]
COMPOSE = PROJECT / "docker-compose.yaml"
AIRFLOW = ("airflow-init", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer",
           "airflow-worker", "airflow-worker-gpu")


def _services() -> dict:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def test_compose_has_the_airflow3_celery_shape_and_a_gpu_worker() -> None:
    services = _services()
    assert {"postgres", "redis", "seaweedfs", *AIRFLOW} <= set(services)
    for name in AIRFLOW:
        env = services[name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
        # SQLAlchemy 2.1 maps plain postgresql:// to psycopg 3, which is not installed: name the driver
        assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql+psycopg2://")
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:")
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
        assert env["ENHANCE_CATALOG_URL"].startswith("postgresql+psycopg2://") and "@postgres/" in env["ENHANCE_CATALOG_URL"]
    gpu = services["airflow-worker-gpu"]
    assert "--queues gpu" in gpu["command"] and gpu["environment"]["ENHANCE_DEVICE"] == "cuda"
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert "gpu" not in services["airflow-worker"]["command"]
    assert "pools set gpu" in " ".join(services["airflow-init"]["command"])


def test_the_catalog_database_is_created_and_seaweedfs_is_configured_like_the_tests() -> None:
    services = _services()
    init = next(v for v in services["postgres"]["volumes"] if "docker-entrypoint-initdb.d" in v)
    script = PROJECT / init.split(":")[0]
    catalog_db = services["airflow-worker"]["environment"]["ENHANCE_CATALOG_URL"].rsplit("/", 1)[1]
    assert f"CREATE DATABASE {catalog_db}" in script.read_text()
    flags = services["seaweedfs"]["command"]
    assert {"-s3.allowDeleteBucketNotEmpty=false", "-s3.autoCreateBucket=false", "-s3.port=8333"} <= set(flags)
    assert all(p.startswith("127.0.0.1:") for s in services.values() for p in s.get("ports", []))


def test_secrets_come_from_the_environment_and_are_required() -> None:
    text = COMPOSE.read_text()
    for name in ("S3_ACCESS_KEY", "S3_SECRET_KEY", "AIRFLOW_JWT_SECRET", "AIRFLOW_ADMIN_PASSWORD"):
        assert re.search(r"\$\{" + name + r":\?", text), name  # compose refuses to start without it
    assert "change-me" not in text
