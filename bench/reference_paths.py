"""Our super-resolution path against what a user would otherwise run, side by side on real photos.

Paths, for each model and input size:
- reference, whole image: torch fp32 eager on the whole input (what `inference_realesrgan.py`
  does on CPU without `--tile`);
- reference, plain tiles: the same in 128-px tiles with 10 px of context, pasted without
  blending (its `--tile 128` mode);
- ncnn: the original `.param/.bin` files in the ncnn CPU runtime, its default options;
- ours: the chain's path (precision `auto`: bf16 weights with oneDNN-packed convolutions on
  CPUs with native bf16; channels_last; 256-px tiles with each model's context and
  cross-fade from the manifest: 32 and 16 px for RRDBNet, 12 and none for the light models).

Every repetition runs every path once (interleaved), so other load on the machine affects them
alike, with a short pause before each path (ncnn's OpenMP threads spin for 20 ms after a call
and would otherwise take cores from whichever path runs next). Each size gets at least
``--reps`` repetitions and as many more as fit in about MIN_SECONDS (at most MAX_ROUNDS), so
the fast small inputs are not judged on three noisy samples. Medians are reported with the
output's PSNR against the whole-image fp32 reference.
Peak RSS is measured for each path in a fresh process on the largest size.

    .venv/bin/python bench/reference_paths.py [--sizes 64,128,256] [--reps 3] [--models ...]
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np
import torch
from cpu_inference import cpu_name, peak_rss_of, psnr, save_results
from skimage import data as skdata

from enhance_ops.chain.superres import Inference, Tiling, run_network, upscale_rgb
from enhance_ops.models.manifest import get_entry
from enhance_ops.models.weights import load_model

MODELS = ["realesrgan-x4plus", "realesr-animevideov3-x4", "span-x2", "span-x4"]
PATHS = ["reference fp32 whole", "reference fp32 plain tiles", "ncnn", "ours"]
MIN_SECONDS, MAX_ROUNDS = 20.0, 25  # small inputs get more rounds: their medians are noisier
PAUSE_S = 0.03  # longer than ncnn's default openmp_blocktime (20 ms); longer pauses let the VM's cores idle down
Runner = Callable[[np.ndarray], np.ndarray]


def photo(size: int) -> np.ndarray:
    """A size × size crop of a real photograph (the astronaut: face, fabric, flag, text)."""
    image = skdata.astronaut()
    return np.ascontiguousarray(image[:size, 100 : 100 + size]).astype(np.float32) / 255


def plain_tiles(model: torch.nn.Module, rgb: np.ndarray, scale: int, tile: int = 128, pad: int = 10) -> np.ndarray:
    """Tiles with a little context, pasted side by side: the reference tool's tile mode."""
    height, width = rgb.shape[:2]
    out = np.zeros((height * scale, width * scale, 3), np.float32)
    fp32 = Inference(precision="fp32", channels_last=False)
    for y0 in range(0, height, tile):
        for x0 in range(0, width, tile):
            y1, x1 = min(y0 + tile, height), min(x0 + tile, width)
            cy0, cx0 = max(0, y0 - pad), max(0, x0 - pad)
            result = run_network(model, rgb[cy0 : min(height, y1 + pad), cx0 : min(width, x1 + pad)], fp32)
            out[y0 * scale : y1 * scale, x0 * scale : x1 * scale] = \
                result[(y0 - cy0) * scale : (y1 - cy0) * scale, (x0 - cx0) * scale : (x1 - cx0) * scale]
    return np.clip(out, 0, 1)


def ncnn_runner(name: str) -> Runner:
    import ncnn

    entry = get_entry(name)
    net = ncnn.Net()
    net.opt.use_vulkan_compute = False
    net.opt.num_threads = torch.get_num_threads()
    net.load_param(str(entry.source_path(next(f for f in entry.source.files if f.endswith(".param")))))
    net.load_model(str(entry.source_path(next(f for f in entry.source.files if f.endswith(".bin")))))

    def run(rgb: np.ndarray) -> np.ndarray:
        planar = np.ascontiguousarray(rgb.transpose(2, 0, 1))  # ncnn.Mat borrows it: keep it alive
        extractor = net.create_extractor()
        extractor.input("data", ncnn.Mat(planar))
        status, out = extractor.extract("output")
        assert status == 0, status
        return np.clip(np.array(out).transpose(1, 2, 0), 0, 1)

    return run


def runner(name: str, path: str) -> Runner:
    scale = get_entry(name).scale
    if path == "ncnn":
        return ncnn_runner(name)
    if path == "ours":
        ours = Inference(precision="auto")
        fast = ours.prepare(load_model(name))
        tiling = Tiling().on("cpu").for_model(get_entry(name))
        return lambda rgb: upscale_rgb(rgb, fast, scale, tiling=tiling, inference=ours)
    reference = Inference(precision="fp32", channels_last=False, prepack=False)
    plain = reference.prepare(load_model(name))
    if path == "reference fp32 plain tiles":
        return lambda rgb: plain_tiles(plain, rgb, scale)
    return lambda rgb: np.clip(run_network(plain, rgb, reference), 0, 1)


def measure(models: list[str], sizes: list[int], reps: int) -> list[dict[str, object]]:
    results = []
    for name in models:
        run = {path: runner(name, path) for path in PATHS}
        for size in sizes:
            rgb = photo(size)
            start = time.perf_counter()
            outputs = {path: run[path](rgb) for path in PATHS}  # warm-up, and the outputs compared
            rounds = max(reps, min(MAX_ROUNDS, math.ceil(MIN_SECONDS / (time.perf_counter() - start))))
            times: dict[str, list[float]] = {path: [] for path in PATHS}
            for _ in range(rounds):
                for path in PATHS:
                    time.sleep(PAUSE_S)
                    start = time.perf_counter()
                    run[path](rgb)
                    times[path].append(time.perf_counter() - start)
            medians = {path: statistics.median(t) for path, t in times.items()}
            for path in PATHS:
                out_mp = outputs[path].shape[0] * outputs[path].shape[1] / 1e6
                results.append({
                    "model": name, "path": path, "input": f"{size}x{size}", "rounds": rounds, "seconds": medians[path],
                    "output_mp_per_s": out_mp / medians[path],
                    "speedup_vs_reference": medians["reference fp32 whole"] / medians[path],
                    "speedup_vs_ncnn": medians["ncnn"] / medians[path],
                    "psnr_vs_reference_db": psnr(outputs[path], outputs["reference fp32 whole"]),
                })
                print(f"{name:24} {size:4} {path:27} {medians[path]:7.3f} s  {out_mp / medians[path]:6.3f} MP/s  "
                      f"x{results[-1]['speedup_vs_reference']:.2f} ref  x{results[-1]['speedup_vs_ncnn']:.2f} ncnn  "
                      f"{results[-1]['psnr_vs_reference_db']:.1f} dB", flush=True)
    return results


def peak_rss(name: str, path: str, size: int) -> int:
    """The path's memory high-water mark in a process of its own, in bytes."""
    return peak_rss_of(f"import reference_paths as r\nr.runner({name!r}, {path!r})(r.photo({size}))")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="64,128,256")
    parser.add_argument("--reps", type=int, default=3, help="at least; small inputs run more (MIN_SECONDS)")
    parser.add_argument("--models", default=",".join(MODELS))
    args = parser.parse_args()
    models, sizes = args.models.split(","), [int(s) for s in args.sizes.split(",")]
    results = measure(models, sizes, args.reps)
    memory = [{"model": m, "path": p, "input": f"{sizes[-1]}x{sizes[-1]}", "peak_rss_bytes": peak_rss(m, p, sizes[-1])}
              for m in models for p in PATHS]
    report = {
        "machine": {"cpu": cpu_name(), "threads": torch.get_num_threads(), "torch": torch.__version__,
                    "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                    "ours_precision": Inference(precision="auto").precision},
        "reps": args.reps, "results": results, "memory": memory,
    }
    out = save_results("reference_paths", report)
    for m in memory:
        print(f"{m['model']:24} {m['path']:27} peak RSS {m['peak_rss_bytes'] / 2**20:7.0f} MiB")
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
