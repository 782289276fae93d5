"""bf16 throughout against bf16 with fp32 ends (models/float_ends.py), each against fp32.

Inputs: 96² crops of the five reference photos in ../shared/calibration and four of
scikit-image's, as 8-bit scans are, and a smooth 16-bit ramp, as a sky or a studio backdrop
is where bf16's 8 significant bits show. Per network and path: the PSNR against the fp32
network (median and worst over the photos, and on the ramp), the share of output values
that lie on bf16's grid (1.0: rounded to it), the mean shift on a black frame in 8-bit
levels, and the median time on one crop and on one 256² tile (the CPU's tile side), the paths
interleaved.

    .venv/bin/python bench/bf16_ends.py [--reps 5]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from cpu_inference import cpu_name, psnr, save_results
from skimage import data as skdata

from enhance_ops.chain.superres import Inference, run_network
from enhance_ops.models import onednn
from enhance_ops.models.float_ends import on_bf16_grid
from enhance_ops.models.weights import load_model
from enhance_ops.samples import smooth_ramp

ROOT = Path(__file__).resolve().parents[1]
CALIBRATION = ROOT.parent / "shared" / "calibration" / "iqa" / "ref"
MODELS = ["realesrgan-x4plus", "realesr-animevideov3-x4", "span-x4", "span-x2"]
FP32, BF16 = Inference(precision="fp32"), Inference(precision="bf16")


def photos(side: int = 96) -> dict[str, np.ndarray]:
    crops = {}
    for path in sorted(CALIBRATION.glob("*.bmp")):
        rgb = cv2.imread(str(path))[..., ::-1]
        top, left = (rgb.shape[0] - side) // 2, (rgb.shape[1] - side) // 2
        crops[path.stem] = rgb[top : top + side, left : left + side]
    for name in ("astronaut", "chelsea", "coffee", "rocket"):
        rgb = getattr(skdata, name)()
        left = (rgb.shape[1] - side) // 2
        crops[name] = rgb[:side, left : left + side]  # the top: sky, wall or backdrop
    return {name: np.ascontiguousarray(rgb, dtype=np.float32) / 255 for name, rgb in crops.items()}


def bf16_throughout(name: str) -> torch.nn.Module:
    """The chain's CPU path before the ends stayed fp32: every weight, the image and the output in bf16."""
    model = load_model(name).to(memory_format=torch.channels_last).to(torch.bfloat16)
    return onednn.fuse_activations(onednn.pack_convolutions(model))


def measure(reps: int) -> dict[str, object]:
    crops, smooth, black = photos(), smooth_ramp(96), np.zeros((64, 64, 3), np.float32)
    results = []
    for name in MODELS:
        reference = FP32.prepare(load_model(name))
        paths = {"bf16 throughout": bf16_throughout(name), "bf16, fp32 ends": BF16.prepare(load_model(name))}
        times: dict[tuple[str, int], list[float]] = {(path, side): [] for path in paths for side in (96, 256)}
        timed = {96: crops["astronaut"], 256: np.ascontiguousarray(skdata.astronaut()[:256, 128:384], np.float32) / 255}
        for _ in range(reps):
            for path, side in times:
                start = time.perf_counter()
                run_network(paths[path], timed[side], BF16)
                times[path, side].append(time.perf_counter() - start)
        expected = {key: run_network(reference, rgb, FP32) for key, rgb in {**crops, "ramp": smooth}.items()}
        for path, model in paths.items():
            agreement = {key: psnr(run_network(model, rgb, BF16), expected[key]) for key, rgb in crops.items()}
            on_ramp = run_network(model, smooth, BF16)
            results.append({
                "model": name, "path": path, "seconds_96px": statistics.median(times[path, 96]),
                "seconds_256px": statistics.median(times[path, 256]),
                "psnr_photos_median_db": statistics.median(agreement.values()),
                "psnr_photos_worst_db": min(agreement.values()), "worst_photo": min(agreement, key=agreement.get),
                "psnr_ramp_16bit_db": psnr(on_ramp, expected["ramp"]), "on_bf16_grid": on_bf16_grid(on_ramp),
                "black_shift_8bit": float(run_network(model, black, BF16).mean() * 255),
                "black_shift_8bit_fp32": float(run_network(reference, black, FP32).mean() * 255),
            })
    return {
        "machine": {"cpu": cpu_name(), "cores": torch.get_num_threads(), "torch": torch.__version__,
                    "cpu_capability": torch.backends.cpu.get_cpu_capability()},
        "reps": reps, "photos": sorted(crops), "results": results,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=5)
    report = measure(parser.parse_args().reps)
    out = save_results("bf16_ends", report)
    print(report["machine"])
    for r in report["results"]:
        print(f"{r['model']:24} {r['path']:16} {r['seconds_96px']:.3f} / {r['seconds_256px']:.3f} s  "
              f"photos {r['psnr_photos_median_db']:.1f} dB, worst {r['psnr_photos_worst_db']:.1f} {r['worst_photo']}  "
              f"ramp {r['psnr_ramp_16bit_db']:.1f} dB  on grid {r['on_bf16_grid']:.2f}  "
              f"black {r['black_shift_8bit']:+.2f} (fp32 {r['black_shift_8bit_fp32']:+.2f})")
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
