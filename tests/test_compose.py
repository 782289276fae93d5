"""docker-compose.yaml cannot run here (no Docker engine); its structure is checked instead."""
from __future__ import annotations

from pathlib import Path

import yaml

COMPOSE = Path(__file__).resolve().parents[1] / "docker-compose.yaml"


def test_compose_has_the_airflow3_celery_shape_and_a_gpu_worker() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    for name in ("postgres", "redis", "seaweedfs", "airflow-apiserver", "airflow-scheduler",
                 "airflow-dag-processor", "airflow-triggerer", "airflow-worker", "airflow-worker-gpu"):
        assert name in services, name
    assert services["airflow-scheduler"]["environment"]["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    gpu = services["airflow-worker-gpu"]
    assert "--queues gpu" in gpu["command"]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert "--queues gpu" not in services["airflow-worker"]["command"]


def test_s3_credentials_come_from_the_environment() -> None:
    text = COMPOSE.read_text()
    assert "${S3_SECRET_KEY" in text and "${S3_ACCESS_KEY" in text
