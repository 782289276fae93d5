"""Where the time goes in each preset: per-stage seconds for one real photo at x4.

After a warm-up run at the full size (first-touch memory and oneDNN's primitive set-up are
not a stage's cost), each preset runs ``--reps`` times; every stage's time is its median.
The superres stage is split into its network (tiles, blending included), its colour guard
and the output's integrity checks (PSNR/SSIM/LPIPS consistency, halo, seams).

    .venv/bin/python bench/chain_stages.py [--size 192] [--reps 5]   # writes bench/results/chain_stages.json
"""
from __future__ import annotations

import argparse
import statistics
import sys

import numpy as np
from cpu_inference import cpu_name, save_results
from skimage import data as skdata

from enhance_ops.chain.pipeline import Chain
from enhance_ops.chain.presets import PRESETS
from enhance_ops.degrade import fade

SR_PARTS = ("network", "colour_guard", "integrity_checks")


def measure(size: int, reps: int) -> dict[str, object]:
    photo = skdata.astronaut()[:size, 100 : 100 + size].astype(np.float32) / 255
    rng = np.random.default_rng(0)
    scan = np.clip(fade(photo, 0.8) + rng.normal(0, 6 / 255, photo.shape), 0, 1).astype(np.float32)
    presets = {}
    for name in PRESETS:
        chain = Chain(name)
        chain.run(scan)  # warm-up
        runs = [chain.run(scan).stages for _ in range(reps)]
        seconds = {r.stage: statistics.median(run[i].seconds for run in runs) for i, r in enumerate(runs[0])}
        total = sum(seconds.values())
        parts = {part: statistics.median(next(r.details.get(f"{part}_s", 0.0) for r in run if r.stage == "superres")
                                         for run in runs) for part in SR_PARTS}
        presets[name] = {
            "models": list(chain.model_names), "precision": chain.inference.precision, "total_s": total,
            "superres_parts": {part: {"seconds": v, "share": v / total} for part, v in parts.items()},
            "stages": {r.stage: {"seconds": seconds[r.stage], "share": seconds[r.stage] / total, "decision": r.decision}
                       for r in runs[0]},
        }
    return {"machine": {"cpu": cpu_name()}, "input": f"{size}x{size} faded, noisy", "scale": 4, "reps": reps,
            "presets": presets}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=192)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    report = measure(args.size, args.reps)
    out = save_results("chain_stages", report)
    for name, p in report["presets"].items():
        print(f"{name}: {p['total_s']:.2f} s ({', '.join(p['models'])}, {p['precision']})")
        for stage, s in p["stages"].items():
            print(f"    {stage:15} {s['seconds']:7.3f} s {100 * s['share']:5.1f} %  {s['decision']}")
            if stage == "superres":
                for part, v in p["superres_parts"].items():
                    print(f"      {part:19} {v['seconds']:7.3f} s {100 * v['share']:5.1f} %")
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
