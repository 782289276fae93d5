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

    .venv/bin/python bench/large_scan_memory.py [--presets fidelity,archive-photo] [--scale 2]
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


def large_scan(path: Path) -> None:
    """A 3 × 2 mosaic of real photos, Lanczos-enlarged, faded (strength 0.6) and grainy, as an 8-bit PNG."""
    cells = []
    cell_w, cell_h = -(-WIDTH // 3), -(-HEIGHT // 2)
    for name in PHOTOS:
        im = Image.fromarray(getattr(skdata, name)()).convert("RGB").resize((cell_w, cell_h), Image.LANCZOS)
        cells.append(np.asarray(im))
    mosaic = np.concatenate([np.concatenate(cells[:3], axis=1), np.concatenate(cells[3:], axis=1)])[:HEIGHT, :WIDTH]
    faded = fade(mosaic.astype(np.float32) / 255, 0.6) * 255
    faded += np.random.default_rng(0).normal(0, 5, mosaic.shape).astype(np.float32)
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


def measure(scan: Path, preset: str, scale: int) -> dict[str, object]:
    code = _RUN.format(plugins=str(ROOT / "plugins"), preset=preset, scale=scale, scan=str(scan),
                       overrides=OVERRIDES.get(preset, []))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    width, height = result["output_size"]
    float_output = width * height * 3 * 4
    return {
        "preset": preset, "overrides": OVERRIDES.get(preset, []), "scale": scale, "input": [WIDTH, HEIGHT], **result,
        "output_float32_bytes": float_output, "output_uint8_bytes": width * height * 3,
        "target_bytes": float_output + 1.5 * GB,
        "meets_target": result["peak_rss_bytes"] <= float_output + 1.5 * GB,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--presets", default="fidelity,archive-photo")
    parser.add_argument("--scale", type=int, default=2)
    args = parser.parse_args()
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
