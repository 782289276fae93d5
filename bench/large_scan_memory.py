"""Peak memory of one large scan through the whole chain, against the size of its output.

The scan is a 40-megapixel PNG (7300 × 5480) made of real photographs from scikit-image,
each enlarged to fill its cell, faded like an old print and given film grain (σ = 5/255), so
that every stage of ``archive-photo`` has work to do (denoising; colour restoration, which
is forced on because its automatic detection misses this moderate fading). Each
preset runs in a fresh process (``Enhancer.enhance``: decode, chain, encode), whose
high-water mark (VmHWM) is read at the end; the process's RSS after loading the models and
before the image is reported as the baseline.

Target (docs/benchmarks.md): peak ≤ the output's float image + 1.5 GB, i.e. the float32
output materialised once and everything else within 1.5 GB.

With ``--shard N``, N such scans (each its own grain, so no two are the same file) go as
one shard through ``tasks.enhance_shard`` against SeaweedFS on loopback, in a fresh process:
its fetch thread reads ahead and its write thread encodes the previous image while the
chain runs the next, and the shard's peak is set against one scan's through the Enhancer.

With ``--pages N``, N such scans are the pages of one TIFF (a register scanned into one file),
through the Enhancer in a fresh process, against a TIFF of its first page alone: the pages
are enhanced one after the other, each compressed into the derivative by a helper thread
while the chain runs the next, so the peak should not grow with the pages beyond the
derivative itself, and little of the time should be outside the chain.

    .venv/bin/python bench/large_scan_memory.py [--presets fidelity,archive-photo] [--scale 2]
    .venv/bin/python bench/large_scan_memory.py --shard 3 --megapixels 20 --presets fidelity
    .venv/bin/python bench/large_scan_memory.py --pages 4 --megapixels 10 --presets fidelity
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from cpu_inference import cpu_name, save_results
from PIL import Image
from skimage import data as skdata

from enhance_ops.degrade import fade

ROOT = Path(__file__).resolve().parents[1]
WIDTH, HEIGHT = 7300, 5480
PHOTOS = ["astronaut", "coffee", "chelsea", "rocket", "coins", "camera"]
GB = 1e9
OVERRIDES = {"archive-photo": ["colour_restore.mode=on"]}


def large_scan(path: Path, width: int = WIDTH, height: int = HEIGHT, seed: int = 0) -> None:
    """A 3 × 2 mosaic of real photos, Lanczos-enlarged, faded (strength 0.6) and grainy, as an 8-bit PNG."""
    cells = []
    cell_w, cell_h = -(-width // 3), -(-height // 2)
    for name in PHOTOS:
        im = Image.fromarray(getattr(skdata, name)()).convert("RGB").resize((cell_w, cell_h), Image.LANCZOS)
        cells.append(np.asarray(im))
    mosaic = np.concatenate([np.concatenate(cells[:3], axis=1), np.concatenate(cells[3:], axis=1)])[:height, :width]
    faded = fade(mosaic.astype(np.float32) / 255, 0.6) * 255
    faded += np.random.default_rng(seed).normal(0, 5, mosaic.shape).astype(np.float32)
    Image.fromarray(np.clip(faded + 0.5, 0, 255).astype(np.uint8)).save(path, compress_level=1)


_RUN = """
import json, sys, time
sys.path.insert(0, {plugins!r})
from enhance_ops.chain.presets import scale_overrides
from enhance_ops.enhance import EnhanceOptions, Enhancer

def rss(field):
    return next(int(l.split()[1]) * 1024 for l in open('/proc/self/status') if l.startswith(field))

enhancer = Enhancer(EnhanceOptions(preset={preset!r}, overrides=(*scale_overrides({scale}), *{overrides!r})))
data = open({scan!r}, 'rb').read()
baseline = rss('VmRSS')
start = time.perf_counter()
result = enhancer.enhance(data)
seconds = time.perf_counter() - start
width, height = result.record['output_size']
print(json.dumps({{'baseline_rss_bytes': baseline, 'peak_rss_bytes': rss('VmHWM'), 'seconds': seconds,
                  'output_size': [width, height], 'output_bytes': len(result.data),
                  'chain_s': result.record['chain_s'], 'encode_s': result.record['encode_s'],
                  'stages': {{s['stage']: s['decision'] for s in result.record['stages']}}}}))
"""


_SHARD = """
import json, sys, time
sys.path.insert(0, {plugins!r})
import boto3
from enhance_ops.airflow import tasks
from enhance_ops.catalog import Catalog
from enhance_ops.storage import S3Store, client_config

def rss(field):
    return next(int(l.split()[1]) * 1024 for l in open('/proc/self/status') if l.startswith(field))

client = boto3.client('s3', endpoint_url={endpoint!r}, aws_access_key_id={access!r}, aws_secret_access_key={secret!r},
                      region_name='us-east-1', config=client_config())
baseline = rss('VmRSS')
start = time.perf_counter()
summary = tasks.enhance_shard(S3Store(client, 'bench'), Catalog({catalog!r}), {manifest!r})
print(json.dumps({{'baseline_rss_bytes': baseline, 'peak_rss_bytes': rss('VmHWM'), 'seconds': time.perf_counter() - start,
                  'images': summary['images'], 'failed': summary['failed'], 'chain_s': summary['chain_seconds']}}))
"""


def _last_json(code: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(scan: Path, preset: str, scale: int, size: tuple[int, int] = (WIDTH, HEIGHT)) -> dict[str, object]:
    code = _RUN.format(plugins=str(ROOT / "plugins"), preset=preset, scale=scale, scan=str(scan),
                       overrides=OVERRIDES.get(preset, []))
    result = _last_json(code)
    width, height = result["output_size"]
    float_output = width * height * 3 * 4
    return {
        "preset": preset, "overrides": OVERRIDES.get(preset, []), "scale": scale, "input": list(size), **result,
        "output_float32_bytes": float_output, "output_uint8_bytes": width * height * 3,
        "target_bytes": float_output + 1.5 * GB,
        "meets_target": result["peak_rss_bytes"] <= float_output + 1.5 * GB,
    }


def measure_shard(scans: list[Path], preset: str, scale: int, folder: Path) -> dict[str, object]:
    """The scans as one shard through enhance_shard, on SeaweedFS, in a process of its own."""
    import datetime as dt
    import secrets

    from enhance_ops.airflow import tasks
    from enhance_ops.catalog import Catalog
    from enhance_ops.infra import seaweedfs
    from enhance_ops.storage import S3Store

    server = seaweedfs.start(folder / f"s3-{preset}", access_key="bench", secret_key=secrets.token_urlsafe(16))
    try:
        server.client().create_bucket(Bucket="bench")
        store, day = S3Store(server.client(), "bench"), dt.date(2026, 11, 20)
        for n, scan in enumerate(scans):
            store.put(f"incoming/{day}/scan-{n:03d}.png", scan.read_bytes())
        catalog_url = f"sqlite:///{folder / f'{preset}.db'}"
        cfg = tasks.RunConfig(f"bench-{preset}", day, preset=preset, scale=scale, shard_size=len(scans),
                              overrides=tuple(OVERRIDES.get(preset, [])))
        manifest = tasks.plan_shards(store, cfg, tasks.discover(store, Catalog(catalog_url), cfg)["listing"])[0]
        return _last_json(_SHARD.format(plugins=str(ROOT / "plugins"), endpoint=server.endpoint, access=server.access_key,
                                        secret=server.secret_key, catalog=catalog_url, manifest=manifest))
    finally:
        server.stop()


def _size(megapixels: float) -> tuple[int, int]:
    width = int(round((megapixels * 1e6 * WIDTH / HEIGHT) ** 0.5))
    return width, int(round(megapixels * 1e6 / width))


def pages_main(args: argparse.Namespace) -> int:
    import tifffile

    width, height = _size(args.megapixels)
    results = []
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        register, first = folder / "register.tif", folder / "first-page.tif"
        with tifffile.TiffWriter(register) as tif:
            for n in range(args.pages):
                large_scan(folder / "page.png", width, height, seed=n)
                page = np.asarray(Image.open(folder / "page.png"))
                tif.write(page, photometric="rgb", compression="zlib", metadata=None)
                if n == 0:
                    tifffile.imwrite(first, page, photometric="rgb", compression="zlib", metadata=None)
        for preset in args.presets.split(","):
            one = measure(first, preset, args.scale, (width, height))
            all_pages = measure(register, preset, args.scale, (width, height))
            results.append({"preset": preset, "scale": args.scale, "input": [width, height], "pages": args.pages,
                            "master_bytes": register.stat().st_size, "one_page": one, "all_pages": all_pages})
            print(f"{preset:14} x{args.scale}, {args.pages} pages of {width}x{height} in one TIFF: peak "
                  f"{all_pages['peak_rss_bytes'] / GB:5.2f} GB in {all_pages['seconds']:.0f} s; its first page "
                  f"alone {one['peak_rss_bytes'] / GB:5.2f} GB in {one['seconds']:.0f} s", flush=True)
    out = save_results("large_scan_pages", {"machine": {"cpu": cpu_name()}, "results": results})
    print(f"written to {out}")
    return 0


def shard_main(args: argparse.Namespace) -> int:
    width, height = _size(args.megapixels)
    results = []
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        scans = [folder / f"scan-{n}.png" for n in range(args.shard)]
        for n, scan in enumerate(scans):
            large_scan(scan, width, height, seed=n)
        for preset in args.presets.split(","):
            one = measure(scans[0], preset, args.scale, (width, height))
            shard = measure_shard(scans, preset, args.scale, folder)
            results.append({"preset": preset, "scale": args.scale, "input": [width, height], "images": args.shard,
                            "one_image": one, "shard": shard,
                            "shard_over_one_image_bytes": shard["peak_rss_bytes"] - one["peak_rss_bytes"]})
            print(f"{preset:14} x{args.scale}, {args.shard} scans of {width}x{height}: shard peak "
                  f"{shard['peak_rss_bytes'] / GB:5.2f} GB in {shard['seconds']:.0f} s; one scan alone "
                  f"{one['peak_rss_bytes'] / GB:5.2f} GB (target {one['target_bytes'] / GB:4.2f} GB)", flush=True)
    out = save_results("large_scan_shard", {"machine": {"cpu": cpu_name()}, "results": results})
    print(f"written to {out}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--presets", default="fidelity,archive-photo")
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--shard", type=int, default=0, help="this many scans as one shard on S3")
    parser.add_argument("--pages", type=int, default=0, help="this many scans as the pages of one TIFF")
    parser.add_argument("--megapixels", type=float, default=WIDTH * HEIGHT / 1e6)
    args = parser.parse_args()
    if args.shard:
        return shard_main(args)
    if args.pages:
        return pages_main(args)
    results = []
    with tempfile.TemporaryDirectory() as folder:
        scan = Path(folder) / "scan-40mpx.png"
        large_scan(scan)
        for preset in args.presets.split(","):
            started = time.perf_counter()
            row = measure(scan, preset, args.scale)
            results.append(row)
            print(f"{preset:14} x{args.scale}: peak RSS {row['peak_rss_bytes'] / GB:5.2f} GB (baseline "
                  f"{row['baseline_rss_bytes'] / GB:4.2f} GB), "
                  f"float output {row['output_float32_bytes'] / GB:4.2f} GB, "
                  f"target {row['target_bytes'] / GB:4.2f} GB: {'met' if row['meets_target'] else 'MISSED'}; "
                  f"{row['seconds']:.0f} s ({time.perf_counter() - started:.0f} s with start-up)", flush=True)
        report = {"machine": {"cpu": cpu_name()}, "scan_bytes": scan.stat().st_size, "results": results}
    out = save_results("large_scan_memory", report)
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
