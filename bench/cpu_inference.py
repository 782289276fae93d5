"""CPU inference paths for the SR networks, measured side by side on one real photo crop.

Paths: fp32 eager (the reference); fp32 channels_last with oneDNN-packed convolution
weights; bf16 (weights cast once) channels_last, unpacked; bf16 channels_last packed with
each activation a pass of its own; and bf16 channels_last packed with the activations done
inside the convolutions, the chain's path on CPUs with native bf16.
Each repetition runs every path once (interleaved) so that load from other processes
affects them alike; the median of the repetitions is reported, with the output's PSNR
against the fp32 reference.

    .venv/bin/python bench/cpu_inference.py [--size 96] [--reps 3]
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from skimage import data as skdata

from enhance_ops.chain.superres import Inference, run_network
from enhance_ops.models.weights import load_model

ROOT = Path(__file__).resolve().parents[1]
PATHS = {
    "fp32 eager": Inference(precision="fp32", channels_last=False, prepack=False),
    "fp32 channels_last": Inference(precision="fp32", channels_last=True),
    "bf16 channels_last unpacked": Inference(precision="bf16", channels_last=True, prepack=False),
    "bf16 channels_last unfused": Inference(precision="bf16", channels_last=True, fuse_activations=False),
    "bf16 channels_last": Inference(precision="bf16", channels_last=True),
}
MODELS = ["realesrgan-x4plus", "realesr-animevideov3-x4", "span-x2", "span-x4"]


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def without_options(doc: str) -> None:
    """The command line of a benchmark that takes no options: ``--help`` shows ``doc``, and
    any other argument is refused. Such a script had run in full on any argument, ``--help``
    too, and written over its results."""
    argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()


def interleaved_medians(paths: dict[str, Callable[[], object]], reps: int) -> dict[str, float]:
    """Seconds per call of each path: one warm-up each, then ``reps`` rounds in which every
    path runs once in turn, so that the VM's drift falls on all of them alike; medians."""
    for run in paths.values():
        run()
    times: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(reps):
        for name, run in paths.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def save_results(name: str, report: object) -> Path:
    """Write a benchmark's report to bench/results/<name>.json, where docs/benchmarks.md reads it."""
    out = ROOT / "bench" / "results" / f"{name}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    return out


def save_and_show(name: str, report: dict[str, list[dict[str, object]]], parts: Sequence[str]) -> None:
    """Print the rows of ``report``'s ``parts``, then write it (``save_results``) and say where."""
    for part in parts:
        for row in report[part]:
            print(row)
    print(f"written to {save_results(name, report)}")


def peak_rss_of(statements: str) -> int:
    """Run ``statements`` in a fresh Python process (bench/ and plugins/ importable); its
    memory high-water mark in bytes. VmHWM, not ru_maxrss: Linux carries ru_maxrss over
    from the parent across fork and exec."""
    code = (f"import sys; sys.path[:0] = {[str(ROOT / 'bench'), str(ROOT / 'plugins')]!r}\n{statements}\n"
            "hwm = next(l for l in open('/proc/self/status') if l.startswith('VmHWM'))\n"
            "print(int(hwm.split()[1]) * 1024)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(done.stdout.strip().splitlines()[-1])


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((np.clip(a, 0, 1) - np.clip(b, 0, 1)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1 / mse)


def measure(size: int, reps: int) -> dict[str, object]:
    crop = skdata.chelsea()[40 : 40 + size, 120 : 120 + size].astype(np.float32) / 255
    results = []
    for name in MODELS:
        models = {path: inf.prepare(load_model(name)) for path, inf in PATHS.items()}
        outputs = {path: run_network(models[path], crop, inf) for path, inf in PATHS.items()}  # warm-up
        times: dict[str, list[float]] = {path: [] for path in PATHS}
        for _ in range(reps):
            for path, inf in PATHS.items():
                start = time.perf_counter()
                run_network(models[path], crop, inf)
                times[path].append(time.perf_counter() - start)
        for path in PATHS:
            seconds = statistics.median(times[path])
            out_mp = outputs[path].shape[0] * outputs[path].shape[1] / 1e6
            results.append({
                "model": name, "path": path, "input": f"{size}x{size}", "seconds": seconds,
                "output_mp_per_s": out_mp / seconds,
                "speedup_vs_fp32_eager": statistics.median(times["fp32 eager"]) / seconds,
                "psnr_vs_fp32_db": psnr(outputs[path], outputs["fp32 eager"]),
            })
    return {
        "machine": {"cpu": cpu_name(), "cores": torch.get_num_threads(),
                    "torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability()},
        "reps": reps,
        "results": results,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    report = measure(args.size, args.reps)
    out = save_results("cpu_inference", report)
    print(report["machine"])
    for r in report["results"]:
        print(f"{r['model']:26} {r['path']:20} {r['seconds']:7.3f} s  {r['output_mp_per_s']:6.3f} MP/s  "
              f"x{r['speedup_vs_fp32_eager']:.2f}  {r['psnr_vs_fp32_db']:.1f} dB")
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
