"""What a tile stretched by up to an eighth saves: tiles, computed pixels and time.

``superres.Tiling.side`` lets the device's tile grow by up to ``superres.STRETCH`` of its
side where that takes one tile fewer along an axis. A tiling whose ``stretch`` is 0 lays its
tiles out as the chain did before. Both layouts are compared:
- over scan sizes, each model's tiles and the pixels its network computes (the tiles with
  their context) per input pixel, on the CPU's and on CUDA's tile side: exact counts;
- timed, the chain's ``upscale_rgb`` on real photos where a tile is saved, both layouts in
  each round, each first in every other one, with how far apart their outputs are (PSNR).

    .venv/bin/python bench/tile_stretch.py    # writes bench/results/tile_stretch.json
"""
from __future__ import annotations

import statistics
import sys
import time
from dataclasses import replace

import cv2
import numpy as np
import torch
from cpu_inference import cpu_name, psnr, save_results, without_options
from skimage import data as skdata

from enhance_ops.chain import superres
from enhance_ops.chain.superres import Inference, Tiling, upscale_rgb, with_context
from enhance_ops.models.manifest import get_entry
from enhance_ops.models.weights import load_model

MODELS = ("realesrgan-x4plus", "span-x2")
DEVICES = ("cpu", "cuda")
SCANS = [(512, 512), (600, 400), (640, 480), (800, 600), (1024, 768), (1200, 800), (1365, 915), (1600, 1200),
         (2048, 1536), (3000, 2000), (4000, 3000), (6000, 4000)]
SWEEP = range(256, 4097, 8)  # every side from one CPU tile to a large scan's, for the means
# (model, (width, height), rounds): sizes where a tile is saved along each axis
TIMED = [("realesrgan-x4plus", (512, 512), 2), ("span-x2", (560, 560), 15), ("span-x2", (1200, 800), 9)]


def computed(length: int, tiling: Tiling) -> tuple[int, int]:
    """Tiles along an axis, and the pixels along it that they send through the network."""
    spans = [(x0, x1) for _, _, x0, x1 in superres.tiles(1, length, tiling)]
    return len(spans), sum(b - a for a, b in (with_context(x0, x1, length, tiling.context) for x0, x1 in spans))


def layouts(width: int, height: int, tiling: Tiling) -> dict[str, float]:
    """Tiles and computed pixels per input pixel, before (no stretch) and after."""
    def layout(laid: Tiling) -> tuple[int, float]:
        (across, wide), (down, high) = computed(width, laid), computed(height, laid)
        return across * down, wide * high / (width * height)

    tiles_before, computed_before = layout(replace(tiling, stretch=0.0))
    tiles_after, computed_after = layout(tiling)
    return {"tiles_before": tiles_before, "tiles_after": tiles_after,
            "computed_before": computed_before, "computed_after": computed_after}


def counts() -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    rows, sweeps = [], []
    for name in MODELS:
        for device in DEVICES:
            tiling = Tiling().on(device).for_model(get_entry(name))
            for width, height in SCANS:
                rows.append({"model": name, "device": device, "tile": tiling.tile, "input": f"{width}x{height}",
                             **layouts(width, height, tiling)})
            unstretched = replace(tiling, stretch=0.0)
            old = np.array([computed(n, unstretched)[1] for n in SWEEP], float)
            along = np.array([computed(n, tiling)[1] for n in SWEEP]) / old  # the pixels computed scale per axis
            ratios = np.outer(along, along)
            sweeps.append({"model": name, "device": device, "tile": tiling.tile,
                           "sides": f"{SWEEP.start}-{SWEEP.stop - 1} px every {SWEEP.step}",
                           "mean_ratio": float(ratios.mean()), "least_ratio": float(ratios.min()),
                           "share_saving": float((ratios < 1).mean())})
            print(f"{name:18} {device:4} tile {tiling.tile:4}: computed pixels {sweeps[-1]['mean_ratio']:.3f} of "
                  f"before on average, {sweeps[-1]['least_ratio']:.3f} at best, "
                  f"{sweeps[-1]['share_saving']:.0%} of sizes saving", flush=True)
    return rows, sweeps


def photo(width: int, height: int) -> np.ndarray:
    rgb = cv2.resize(skdata.astronaut(), (width, height), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(rgb, dtype=np.float32) / 255


def timed() -> list[dict[str, object]]:
    inference, rows = Inference(precision="auto"), []
    for name, (width, height), rounds in TIMED:
        entry = get_entry(name)
        model, tiling = inference.prepare(load_model(name)), Tiling().on("cpu").for_model(entry)
        rgb = photo(width, height)
        both = {"before": replace(tiling, stretch=0.0), "after": tiling}
        times: dict[str, list[float]] = {label: [] for label in both}
        outputs = {label: upscale_rgb(rgb, model, entry.scale, tiling=laid, inference=inference)
                   for label, laid in both.items()}  # warm-up, and the outputs compared
        for round_ in range(rounds):
            for label, laid in sorted(both.items(), reverse=bool(round_ % 2)):  # each first in every other round
                start = time.perf_counter()
                upscale_rgb(rgb, model, entry.scale, tiling=laid, inference=inference)
                times[label].append(time.perf_counter() - start)
        rows.append({"model": name, "input": f"{width}x{height}", "rounds": rounds, "precision": inference.precision,
                     **layouts(width, height, tiling), "s_before": statistics.median(times["before"]), "s_after": statistics.median(times["after"]),
                     "psnr_between_db": psnr(outputs["after"], outputs["before"])})
        r = rows[-1]
        print(f"{name:18} {r['input']:9} tiles {r['tiles_before']} -> {r['tiles_after']}: "
              f"{r['s_before']:.2f} -> {r['s_after']:.2f} s, outputs {r['psnr_between_db']:.1f} dB apart", flush=True)
    return rows


def main() -> int:
    sizes, sweeps = counts()
    report = {"machine": {"cpu": cpu_name(), "threads": torch.get_num_threads(), "torch": torch.__version__},
              "stretch": superres.STRETCH, "photo": "scikit-image astronaut, area-resized to each input",
              "sizes": sizes, "sweeps": sweeps, "timed": timed()}
    print(f"wrote {save_results('tile_stretch', report)}")
    return 0


if __name__ == "__main__":
    without_options(__doc__)
    sys.exit(main())
