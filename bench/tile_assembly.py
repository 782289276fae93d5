"""What the chain's tiled upscale costs on the host besides its network.

``superres.upscale_rgb`` runs a free stand-in network (nearest-neighbour x4, timed inside
each run) on a 960 × 540 photo, at several tile sides, with RRDBNet's context and cross-fade
(32 and 16 px) and with a light model's (12 px, none). Its assembly (cutting, cropping,
casting, blending and normalising the tiles) is each run's total less the stand-in's time
in it. The floor next to it is one clipped copy of the output, which any assembly must
write. On a
GPU worker this host work sits between a fast network and the CPU stages (see *GPU paths*
in docs/benchmarks.md); here it is timed on the CPU, where the network is the stand-in.

    .venv/bin/python bench/tile_assembly.py    # writes bench/results/tile_assembly.json
"""
from __future__ import annotations

import statistics
import sys
import time

import cv2
import numpy as np
import torch
from cpu_inference import cpu_name, save_results, without_options
from skimage import data as skdata
from torch import nn

from enhance_ops import allocator
from enhance_ops.chain.superres import Inference, Tiling, tiles, upscale_rgb

SCALE = 4
TILES = (256, 512, 1024)
MODELS = {"RRDBNet's (32 px context, 16 px cross-fade)": (32, 16), "a light model's (12 px context, none)": (12, 0)}
REPS = 7


class Nearest(nn.Module):
    """A stand-in network whose own cost is small and timed from inside: ``seconds`` adds up
    its forward passes, so each run's assembly is that run's total less them."""

    seconds = 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        start = time.perf_counter()
        y = nn.functional.interpolate(x, scale_factor=SCALE, mode="nearest")
        self.seconds += time.perf_counter() - start
        return y


def photo() -> np.ndarray:
    rgb = cv2.resize(skdata.coffee(), (960, 540), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(rgb, dtype=np.float32) / 255


def measure() -> list[dict[str, object]]:
    allocator.keep_freed_memory()  # as a Chain does: the output's pages are reused, not faulted in anew
    rgb, model, inference = photo(), Nearest().eval(), Inference(precision="fp32")
    buffer = np.empty((rgb.shape[0] * SCALE, rgb.shape[1] * SCALE, 3), np.float32)
    whole = np.repeat(np.repeat(rgb, SCALE, axis=0), SCALE, axis=1)
    cases = [(label, Tiling(tile, pad, fade)) for label, (pad, fade) in MODELS.items() for tile in TILES]
    paths = {"floor": lambda: np.clip(whole, 0.0, 1.0, out=buffer)}
    for label, tiling in cases:
        paths[(label, tiling.tile)] = lambda t=tiling: upscale_rgb(rgb, model, SCALE, tiling=t, inference=inference)
    times: dict[object, list[tuple[float, float]]] = {path: [] for path in paths}
    for run in paths.values():  # warm-up: first touch of the output's pages
        run()
    for _ in range(REPS):  # interleaved
        for path, run in paths.items():
            model.seconds = 0.0
            start = time.perf_counter()
            run()
            times[path].append((time.perf_counter() - start, model.seconds))
    floor = statistics.median(total for total, _ in times["floor"])
    rows = []
    for label, tiling in cases:
        runs = times[(label, tiling.tile)]
        total, network = statistics.median(t for t, _ in runs), statistics.median(n for _, n in runs)
        assembly = statistics.median(t - n for t, n in runs)
        rows.append({"tiling": label, "tile": tiling.tile, "tiles": sum(1 for _ in tiles(*rgb.shape[:2], tiling)),
                     "total_s": total, "network_s": network, "assembly_s": assembly, "floor_s": floor})
        print(f"{label:46} {tiling.tile:5} px  {rows[-1]['tiles']:3} tiles  total {total * 1e3:6.1f} ms  "
              f"stand-in {network * 1e3:6.1f} ms  assembly {assembly * 1e3:6.1f} ms  "
              f"(one clipped copy {floor * 1e3:.1f} ms)", flush=True)
    return rows


def main() -> int:
    report = {"machine": {"cpu": cpu_name(), "threads": torch.get_num_threads(), "torch": torch.__version__},
              "input": "960x540 photo (scikit-image coffee), x4", "repetitions": REPS, "rows": measure()}
    print(f"wrote {save_results('tile_assembly', report)}")
    return 0


if __name__ == "__main__":
    without_options(__doc__)
    sys.exit(main())
