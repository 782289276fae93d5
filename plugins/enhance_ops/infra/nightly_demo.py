"""`make run`: one real night of the pipeline on this machine, from a fresh start.

Starts SeaweedFS on loopback, uploads a batch of scans to ``incoming/<day>/`` (the sample
batch unless a folder is given), runs the nightly DAG for that logical date with
``airflow dags test`` on SQLite, copies what the run published (derivatives, ledger, report)
out of the bucket into ``<out>/archive/`` so it can be opened, and stops what it started.
Each call starts from an empty bucket and metadata database, so it always shows a full night.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import shutil
import subprocess
import tempfile
from collections import Counter
from pathlib import Path

from ..batch import find_images
from ..samples import write_samples
from ..storage import S3Store, download
from . import seaweedfs
from .airflow_env import airflow_bin, airflow_env, prepare

BUCKET = "archive"


def seed(store: S3Store, day: dt.date, scans: Path | None, long_side: int) -> list[str]:
    """Upload the night's scans to ``incoming/<day>/``: ``scans`` or the generated sample batch."""
    if scans is None:
        with tempfile.TemporaryDirectory(prefix="enhance-samples-") as folder:
            write_samples(Path(folder), long_side)
            return seed(store, day, Path(folder), long_side)
    keys = []
    for path in find_images(scans):
        relative = path.relative_to(scans).as_posix() if scans.is_dir() else path.name
        key = f"incoming/{day.isoformat()}/{relative}"
        store.put(key, path.read_bytes())
        keys.append(key)
    return keys


def run_nightly(out: Path, day: dt.date, *, preset: str, scale: int, scans: Path | None = None,
                long_side: int = 128) -> int:
    """Run one night end to end; returns the `airflow dags test` exit status."""
    out = out.resolve()
    for stale in ("airflow", "s3-data", BUCKET):
        shutil.rmtree(out / stale, ignore_errors=True)
    server = seaweedfs.start(out / "s3-data", access_key="archive", secret_key=secrets.token_urlsafe(24))
    try:
        server.client().create_bucket(Bucket=BUCKET)
        store = S3Store(server.client(), BUCKET)
        keys = seed(store, day, scans, long_side)
        print(f"S3 server {server.endpoint}: {len(keys)} scans uploaded to s3://{BUCKET}/incoming/{day}/")
        env = airflow_env(out / "airflow", server, base=dict(os.environ))
        env["ENHANCE_TASK_RETRIES"] = "0"  # a demo should show a failure at once, not after 15 minutes
        prepare(env)
        conf = {"preset": preset, "scale": scale, "shard_size": 4}
        log = out / "airflow" / "dags-test.log"
        print(f"running the nightly DAG for {day} (preset {preset}, x{scale}); Airflow's log: {log}")
        with log.open("w") as sink:
            code = subprocess.run([airflow_bin(), "dags", "test", "enhance_daily", day.isoformat(), "-c", json.dumps(conf)],
                                  env=env, stdout=sink, stderr=subprocess.STDOUT).returncode
        for prefix in ("enhanced/", "quarantine/", "ledger/", "reports/"):
            download(store, prefix, out / BUCKET)
        _summarise(out / BUCKET, day)
        if code != 0:
            print(f"the DAG run failed (exit status {code}); the end of {log}:\n" + log.read_text()[-3000:])
        return code
    finally:
        server.stop()


def _summarise(root: Path, day: dt.date) -> None:
    from ..quality.ledger import read_ledger

    ledger_root = root / "ledger"
    rows = read_ledger(ledger_root).to_pylist() if ledger_root.is_dir() else []
    verdicts = Counter(r["verdict"] for r in rows)
    print("verdicts: " + (", ".join(f"{n} {v}" for v, n in sorted(verdicts.items())) or "no images"))
    for label, folder in (("published", root / "enhanced" / day.isoformat()),
                          ("quarantined for review", root / "quarantine" / day.isoformat())):
        count = sum(1 for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0
        print(f"{label:24} {count:3}  {folder}")
    print(f"{'quality ledger (Parquet)':24}      {ledger_root}")
    for report in sorted((root / "reports").rglob("*.html")):
        print(f"{'report for archivists':24}      {report}")
