from __future__ import annotations

import io
import secrets
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from enhance_ops.airflow import tasks
from enhance_ops.catalog import Catalog
from enhance_ops.infra import seaweedfs
from enhance_ops.quality.ledger import from_parquet
from enhance_ops.storage import S3Store

PROJECT = Path(__file__).resolve().parents[1]
SHARED = PROJECT.parent / "shared"


def photo(name: str, size: int | None = None, top: int = 0, left: int = 0) -> np.ndarray:
    """A crop of a real photograph from scikit-image's bundled data, float32 RGB in [0, 1]."""
    rgb = getattr(skdata, name)().astype(np.float32) / 255.0
    if size is not None:
        rgb = rgb[top : top + size, left : left + size]
    return np.ascontiguousarray(rgb)


def shrink(rgb: np.ndarray, factor: int) -> np.ndarray:
    """Antialiased bicubic downscale (Pillow), the degradation PSNR-oriented SR models expect."""
    h, w = rgb.shape[:2]
    im = Image.fromarray((rgb * 255 + 0.5).astype(np.uint8)).resize((w // factor, h // factor), Image.BICUBIC)
    return np.asarray(im, dtype=np.float32) / 255.0


def enlarge_bicubic(rgb: np.ndarray, factor: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    im = Image.fromarray((rgb * 255 + 0.5).astype(np.uint8)).resize((w * factor, h * factor), Image.BICUBIC)
    return np.asarray(im, dtype=np.float32) / 255.0


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


def save(array: np.ndarray, fmt: str, **options: object) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, fmt, **options)
    return buf.getvalue()


@pytest.fixture(scope="session")
def cat() -> np.ndarray:
    return photo("chelsea", 64, top=60, left=150)


# A real S3 server (SeaweedFS) per test module, a bucket and a catalog per test, and a whole night
# run through the task functions as the DAG calls them (tests/test_dag.py runs the DAG itself).


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[seaweedfs.S3Server]:
    server = seaweedfs.start(tmp_path_factory.mktemp("s3"), access_key="archive", secret_key=secrets.token_urlsafe(16))
    yield server
    server.stop()


@pytest.fixture()
def store(s3: seaweedfs.S3Server, request: pytest.FixtureRequest) -> S3Store:
    bucket = f"t-{abs(hash(request.node.name)) % 10**10}"  # a bucket per test
    s3.client().create_bucket(Bucket=bucket)
    return S3Store(s3.client(), bucket)


@pytest.fixture()
def catalog(tmp_path: Path) -> Catalog:
    return Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")


def gate_night(store: S3Store, catalog: Catalog, cfg: tasks.RunConfig) -> tuple[list[str], dict]:
    """The DAG's tasks up to the gate: the run's ledger parts and the gate's summary, for publish."""
    listing = tasks.discover(store, catalog, cfg)
    shards = [tasks.enhance_shard(store, catalog, key) for key in tasks.plan_shards(store, cfg, listing["listing"])]
    parts = [s["part"] for s in shards]
    return parts, tasks.quality_gate(store, cfg, parts)


def run_night(store: S3Store, catalog: Catalog, cfg: tasks.RunConfig) -> list[dict]:
    """Every task of the DAG, in its order, on the real bucket; returns the run's ledger rows."""
    parts, summary = gate_night(store, catalog, cfg)
    tasks.publish(store, catalog, cfg, parts)
    tasks.write_ledger(store, cfg, parts)
    tasks.write_report(store, catalog, cfg, parts, summary)
    return [r for p in parts for r in from_parquet(store.get(p))]
