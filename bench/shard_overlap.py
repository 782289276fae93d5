"""How much of a shard's time is spent outside the enhancement chain, on a real S3 server.

A shard of 64 real-photo crops goes through ``tasks.enhance_shard`` against SeaweedFS on
loopback: downloads, hashing, decoding, encoding, uploads and checkpoints overlap the chain
(fetch and write threads). Reported per preset: the shard's wall time, the time inside the
chain and inside its super-resolution stage (from the ledger rows), and the share of the
wall time outside each; the superres stage also holds the colour guard and the output's
integrity measures, so the SR networks' own time (``network_s`` in the stage record) is
reported apart.

    .venv/bin/python bench/shard_overlap.py [--images 64] [--side 96]   # writes bench/results/shard_overlap_<side>.json
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import secrets
import sys
import tempfile
from pathlib import Path

import torch
from cpu_inference import cpu_name, save_results

from enhance_ops.airflow import tasks
from enhance_ops.catalog import Catalog
from enhance_ops.infra import seaweedfs
from enhance_ops.quality.ledger import from_parquet
from enhance_ops.samples import photo_crops
from enhance_ops.storage import S3Store

PRESETS = [("archive-photo", 4), ("fidelity", 2)]


def measure(count: int, side: int) -> list[dict[str, object]]:
    results = []
    with tempfile.TemporaryDirectory() as folder:
        server = seaweedfs.start(Path(folder) / "s3", access_key="bench", secret_key=secrets.token_urlsafe(16))
        try:
            server.client().create_bucket(Bucket="bench")
            store = S3Store(server.client(), "bench")
            day = dt.date(2026, 11, 20)
            for n, data in enumerate(photo_crops(count, side, "JPEG")):
                store.put(f"incoming/{day}/scan-{n:03d}.jpg", data)
            for preset, scale in PRESETS:
                catalog = Catalog(f"sqlite:///{Path(folder) / f'{preset}.db'}")
                cfg = tasks.RunConfig(f"bench-{preset}", day, preset=preset, scale=scale, shard_size=count)
                manifest = tasks.plan_shards(store, cfg, tasks.discover(store, catalog, cfg)["listing"])[0]
                summary = tasks.enhance_shard(store, catalog, manifest)
                rows = from_parquet(store.get(summary["part"]))
                network = sum(dict(r["stage_seconds"]).get("superres", 0.0) for r in rows)
                sr_nets = sum(s["details"]["network_s"] for r in rows for s in json.loads(r["stages_json"])
                              if s["stage"] == "superres")
                wall, chain = summary["seconds"], summary["chain_seconds"]
                results.append({
                    "preset": preset, "scale": scale, "images": len(rows), "input": f"{side}x{side} JPEG",
                    "wall_s": wall, "chain_s": chain, "superres_s": network, "sr_network_s": sr_nets,
                    "outside_chain_share": (wall - chain) / wall, "outside_superres_share": (wall - network) / wall,
                    "outside_sr_network_share": (wall - sr_nets) / wall,
                })
                print(f"{preset:14} x{scale}: {wall:6.1f} s wall, chain {chain:6.1f} s, SR {network:6.1f} s; "
                      f"outside the chain {100 * (wall - chain) / wall:.1f} %, outside SR {100 * (wall - network) / wall:.1f} %, "
                      f"outside the SR network {100 * (wall - sr_nets) / wall:.1f} %",
                      flush=True)
        finally:
            server.stop()
    return results


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--side", type=int, default=96)
    args = parser.parse_args()
    report = {"machine": {"cpu": cpu_name(), "threads": torch.get_num_threads(), "torch": torch.__version__},
              "results": measure(args.images, args.side)}
    out = save_results(f"shard_overlap_{args.side}", report)
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
