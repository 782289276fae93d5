"""The consistency LPIPS with its AlexNet in fp32 and with a bf16 backbone, and the SR
integrity checks with each.

On light presets and small images the integrity checks that the gate reads are the largest
part of an image's time after the network, and the consistency LPIPS (AlexNet on both
reductions, at most 512 px a side) is most of them (docs/benchmarks.md). Paths, prepared as
the measure prepares its network (channels_last, packed convolutions, ReLU fused):
- fp32: the measure before 2026-12-06;
- bf16, one layout: the backbone in bf16 (its first convolution fp32), each convolution's
  weights in the layout oneDNN prefers for a 64² input, as the SR networks' are;
- bf16, a layout per shape: the same, with weights reordered for each input shape (the
  measure now, on a CPU with native bf16).

Timed, interleaved, medians: LPIPS on consistency pairs (SPAN x2's output of a photo against
the bicubic enlargement, the shapes the measure sees), and ``measures.sr_integrity`` whole at
256² → 512² (x2) and 256² → 1024² (x4) with either fp32 or the measure's own LPIPS. Agreement:
each path against the fp32 network on the five calibration pairs and the consistency pairs.

    .venv/bin/python bench/lpips_precision.py    # writes bench/results/lpips_precision.json
"""
from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date

import numpy as np
import torch
from cpu_inference import ROOT, cpu_name, interleaved_medians, save_results, without_options
from PIL import Image
from skimage import data as skdata
from torch import nn

from enhance_ops import allocator, threads
from enhance_ops.chain import strips
from enhance_ops.chain.superres import Inference, run_network
from enhance_ops.models.weights import load_model
from enhance_ops.quality import measures, metrics

REPS = 9
CALIBRATION = ROOT.parent / "shared" / "calibration" / "iqa"
PAIRS = ["I03", "I04", "I06", "I08", "I19"]
# SPAN x2 inputs (height, width): outputs of 512², 384 × 512, 384² and a 128 × 512 strip
INPUTS = [(256, 256), (192, 256), (192, 192), (64, 256)]
PATHS = {
    "fp32": Inference(precision="fp32"),
    "bf16, one layout": Inference(precision="bf16"),
    "bf16, a layout per shape": Inference(precision="bf16", layout_per_shape=True),
}


def _distance(net: nn.Module, a: np.ndarray, b: np.ndarray) -> float:
    with torch.inference_mode():
        return float(net(metrics._tensor(a), metrics._tensor(b))[0])


def consistency_pairs() -> list[tuple[np.ndarray, np.ndarray]]:
    """SPAN x2's output of an astronaut crop and the bicubic enlargement of that crop."""
    span = Inference(precision="auto")
    model = span.prepare(load_model("span-x2"))
    pairs = []
    for height, width in INPUTS:
        crop = np.ascontiguousarray(skdata.astronaut()[:height, :width]).astype(np.float32) / 255
        output = np.clip(run_network(model, crop, span), 0, 1)
        pairs.append((output, measures.enlarge_to(crop, (output.shape[1], output.shape[0]))))
    return pairs


def calibration_pairs() -> list[tuple[np.ndarray, np.ndarray]]:
    read = lambda kind, name: np.asarray(Image.open(CALIBRATION / kind / f"{name}.bmp").convert("RGB"),  # noqa: E731
                                         np.float32) / 255
    return [(read("dist", name), read("ref", name)) for name in PAIRS]


def lpips_rows(nets: dict[str, nn.Module], pairs: list[tuple[np.ndarray, np.ndarray]]) -> list[dict[str, object]]:
    rows = []
    for output, bicubic in pairs:
        times = interleaved_medians({name: lambda net=net: _distance(net, output, bicubic) for name, net in nets.items()},
                                    REPS)
        values = {name: _distance(net, output, bicubic) for name, net in nets.items()}
        rows.append({"shape": list(output.shape[:2]), **{f"ms {name}": times[name] * 1e3 for name in nets},
                     **{f"value {name}": values[name] for name in nets}})
        print(rows[-1], flush=True)
    return rows


def agreement(nets: dict[str, nn.Module], pairs: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    """Each path's largest distance from the fp32 network's value over ``pairs``."""
    reference = [_distance(nets["fp32"], a, b) for a, b in pairs]
    return {name: max(abs(_distance(net, a, b) - r) for (a, b), r in zip(pairs, reference)) for name, net in nets.items()}


@contextmanager
def measuring_lpips_with(net: nn.Module) -> Iterator[None]:
    saved = metrics._lpips_net
    metrics._lpips_net = lambda backbone: net
    try:
        yield
    finally:
        metrics._lpips_net = saved


def integrity_rows(nets: dict[str, nn.Module]) -> list[dict[str, object]]:
    inference = Inference(precision="auto")
    crop = np.ascontiguousarray(skdata.astronaut()[128:384, 128:384]).astype(np.float32) / 255
    chosen = {name: nets[name] for name in ("fp32", "bf16, a layout per shape")}
    rows = []
    for model, scale in (("span-x2", 2), ("span-x4", 4)):
        output = np.clip(run_network(inference.prepare(load_model(model)), crop, inference), 0, 1)

        def checks(net: nn.Module) -> None:
            with measuring_lpips_with(net):
                measures.sr_integrity(crop, output)

        times = interleaved_medians({name: lambda net=net: checks(net) for name, net in chosen.items()}, REPS)
        rows.append({"case": f"256² x{scale} ({model})", **{f"ms {name}": times[name] * 1e3 for name in chosen}})
        print(rows[-1], flush=True)
    return rows


def main() -> int:
    allocator.keep_freed_memory()  # as a Chain does, and numpy's BLAS on one thread, whose idle
    threads.single_threaded_blas()  # spinning after PSNR's vdot slowed the next LPIPS (docs/benchmarks.md)
    nets = {name: inference.prepare(load_model("lpips-alex")) for name, inference in PATHS.items()}
    consistency = consistency_pairs()
    report = {
        "machine": f"{cpu_name()}, {torch.get_num_threads()} threads, torch {torch.__version__}",
        "date": date.today().isoformat(), "reps": REPS, "strip_lanes": strips.lanes(),
        "lpips": lpips_rows(nets, consistency),
        "calibration_max_from_fp32": agreement(nets, calibration_pairs()),
        "consistency_max_from_fp32": agreement(nets, consistency),
        "integrity_checks": integrity_rows(nets),
    }
    print(f"wrote {save_results('lpips_precision', report)}")
    return 0


if __name__ == "__main__":
    without_options(__doc__)
    sys.exit(main())
