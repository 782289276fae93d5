"""A night of 504 small scans over 8 shards through the real DAG: everything processed once, memory flat.

Each ledger row records its process's memory high-water mark after the image; a shard's peak
is the largest of its rows. `dags test` runs each task in a process of its own, forked from
one parent: memory kept across images (results cached, buffers never freed) raises a shard's
peak with its length, and memory the parent gathers raises every later shard's.
"""
from __future__ import annotations

import json
import os
import secrets
import subprocess
from pathlib import Path

from enhance_ops.infra import seaweedfs
from enhance_ops.infra.airflow_env import airflow_bin, airflow_env, prepare
from enhance_ops.quality.ledger import from_parquet
from enhance_ops.samples import photo_crops
from enhance_ops.storage import S3Store

DAY = "2026-11-19"
IMAGES, SHARDS, SIDE = 504, 8, 16
GROWTH_IN_SHARD = 32 * 1024**2  # from the second image of a shard (models loaded) to its last
SPREAD = 128 * 1024**2  # between the lowest and highest shard peak (measured: 600–665 MiB)


def test_five_hundred_scans_over_eight_shards_with_flat_memory(tmp_path: Path) -> None:
    server = seaweedfs.start(tmp_path / "s3", access_key="archive", secret_key=secrets.token_urlsafe(16))
    try:
        server.client().create_bucket(Bucket="archive")
        store = S3Store(server.client(), "archive")
        crops = photo_crops(IMAGES, SIDE, numbered=True)
        assert len(set(crops)) == IMAGES  # all different: none is skipped as a duplicate
        for n, data in enumerate(crops):
            store.put(f"incoming/{DAY}/box-{n // 100}/scan-{n:04d}.png", data)
        env = airflow_env(tmp_path / "airflow", server, base=dict(os.environ))
        env["ENHANCE_TASK_RETRIES"] = "0"
        prepare(env)
        conf = {"preset": "fidelity", "scale": 2, "shard_size": IMAGES // SHARDS}
        run = subprocess.run([airflow_bin(), "dags", "test", "enhance_daily", DAY, "-c", json.dumps(conf)],
                             env=env, capture_output=True, text=True, timeout=1500)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

        rows = [r for o in store.list(f"ledger/date={DAY}/") for r in from_parquet(store.get(o.key))]
        assert len(rows) == IMAGES and len({r["source_key"] for r in rows}) == IMAGES
        assert {r["status"] for r in rows} == {"ok"}
        published = store.list(f"enhanced/{DAY}/") + store.list(f"quarantine/{DAY}/")
        assert len(published) == IMAGES
        peaks = [max(r["peak_rss_bytes"] for r in rows if r["shard"] == s) for s in range(SHARDS)]
        assert max(peaks) - min(peaks) <= SPREAD, [round(p / 2**20) for p in peaks]
        for s in range(SHARDS):  # within a shard, 63 images later, the high-water mark has barely moved
            own = sorted((r for r in rows if r["shard"] == s), key=lambda r: r["processed_at"])
            assert own[-1]["peak_rss_bytes"] - own[1]["peak_rss_bytes"] <= GROWTH_IN_SHARD, s
    finally:
        server.stop()
