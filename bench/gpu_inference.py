"""GPU inference paths for the SR networks, side by side on one real image, for a CUDA machine.

Every path runs the same photograph (960 × 540 by default: RRDBNet x4 to 3840 × 2160 is the
issue's GPU target) and is reported with seconds per image (median of synchronised
repetitions after a warm-up), output MP/s, effective TFLOP/s (the convolutions'
multiply-adds, counted by hooks, × 2), torch's peak device memory and PSNR against the
fp32 reference. Paths:

- fp32 eager, TF32 off: the reference;
- TF32 channels_last; fp16 under autocast, channels_last (the chain's CUDA path today);
  fp16 and bf16 weights, channels_last; the fp16 one replayed as a CUDA graph; the fp16 one
  through ``torch.compile`` (``--compile``, its compile time recorded);
- the network on the chain's 256-px tiles, one at a time and batched (edge tiles padded to
  the interior tiles' shape; network only);
- the chain's own ``upscale_rgb`` (host to host: copies, tiles, blending) at several tile sizes.

Then every preset's whole chain (``preset_throughput.CASES``) with its networks on the
device and the rest on the host's CPU, as a GPU worker runs it: seconds per image, each
stage's share (the network's time is what the GPU does), and the same images through two
chain threads at once, which would let one image's CPU stages overlap the other's network.

ONNX: each model is exported by ``enhance_ops.models.onnx_export`` (``export-onnx``), which
checks the export against torch in onnxruntime's CPU provider on a 45 × 71 photo crop; it
is timed where onnxruntime has a GPU provider (CUDA, TensorRT). Which providers there were,
and whether the ``tensorrt`` package was there, is recorded: a missing one is reported as
missing, not skipped silently.

    python3 bench/gpu_inference.py [--compile] [--out DIR]        # on a CUDA machine
    .venv/bin/python bench/gpu_inference.py --device cpu --width 64 --height 48 --reps 1  # a check of the script

Weights: the converted files where they are present and match the manifest; else they are
converted on the spot from the package files the manifest names (their sha256 checked),
which is all a device machine gets (docs/benchmarks.md says what to carry there); the
chains load theirs the same way.
"""
from __future__ import annotations

import argparse
import copy
import functools
import importlib.util
import json
import platform
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
import tables
from cpu_inference import cpu_name, psnr
from preset_throughput import CASES, SUPERRES_PARTS, stage_parts
from skimage import data as skdata
from torch import nn

from enhance_ops.chain import pipeline
from enhance_ops.chain.superres import Inference, Tiling, image_tensor, tiles, upscale_rgb, with_context
from enhance_ops.models import fetch, onnx_export
from enhance_ops.models.manifest import ModelEntry, get_entry
from enhance_ops.errors import WeightsError
from enhance_ops.models.weights import build_model, load_model
from enhance_ops.quality import metrics

ROOT = Path(__file__).resolve().parents[1]
MODELS = ["realesrgan-x4plus", "span-x2", "span-x4", "realesr-animevideov3-x4"]
CHAIN_TILES = (256, 512, 1024)
NETWORK_TILE = 256
Output = torch.Tensor | np.ndarray | None  # None: a path whose output is not one image (tiles, network only)
Run = Callable[[], Output]


class Skipped(Exception):
    """A path this machine or these options cannot run; the reason goes into the results."""


@dataclass
class Case:
    """One model on one image, and what its paths share."""

    name: str
    entry: ModelEntry
    model: nn.Module  # fp32, on the CPU; each path takes its own copy
    rgb: np.ndarray
    device: str
    args: argparse.Namespace
    notes: dict[str, object] = field(default_factory=dict)

    @property
    def cuda(self) -> bool:
        return torch.device(self.device).type == "cuda"

    def network(self, dtype: torch.dtype = torch.float32, channels_last: bool = True) -> nn.Module:
        model = copy.deepcopy(self.model).to(device=self.device, dtype=dtype)
        return model.to(memory_format=torch.channels_last) if channels_last else model

    def input(self, dtype: torch.dtype = torch.float32, channels_last: bool = True) -> torch.Tensor:
        return image_tensor(self.rgb, dtype, device=self.device, channels_last=channels_last)


def photo(width: int, height: int) -> np.ndarray:
    """Real photographs side by side at ``height`` (astronaut, coffee, cat), cut to ``width``."""
    parts, filled = [], 0
    for image in (skdata.astronaut(), skdata.coffee(), skdata.chelsea()):
        w = round(image.shape[1] * height / image.shape[0])
        parts.append(cv2.resize(image, (w, height), interpolation=cv2.INTER_AREA))
        filled += w
        if filled >= width:
            return np.ascontiguousarray(np.concatenate(parts, axis=1)[:, :width]).astype(np.float32) / 255
    raise ValueError(f"the photographs fill only {filled} px at height {height}; ask for a narrower image")


def load(entry: ModelEntry) -> tuple[nn.Module, str]:
    """fp32 network on the CPU, from the converted file or else from its verified package files."""
    try:
        return load_model(entry.name), f"{entry.path.name}, sha256 as in the manifest"
    except WeightsError:
        if not fetch.sources_ok(entry):
            missing = ", ".join(str(entry.source_path(f).relative_to(ROOT)) for f in entry.source.files)
            raise SystemExit(f"{entry.name}: no verified weights; run `make weights` here, or carry {missing}") from None
    origin = f"converted from {', '.join(entry.source.files)} (sha256 as in the manifest)"
    return build_model(entry, fetch.convert(entry)), origin


def macs_per_pixel(model: nn.Module, side: int = 64) -> float:
    """Multiply-adds of the convolutions per input pixel (elementwise work not counted)."""
    total = 0

    def count(module: nn.Conv2d, _inputs: object, output: torch.Tensor) -> None:
        nonlocal total
        kh, kw = module.kernel_size
        total += output.numel() * module.in_channels // module.groups * kh * kw

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.inference_mode():
            model(torch.rand(1, 3, side, side))
    finally:
        for hook in hooks:
            hook.remove()
    return total / side**2


def sync(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def median_seconds(run: Run, device: str, reps: int, warmup: int) -> float:
    for _ in range(warmup):
        run()
    times = []
    for _ in range(reps):
        sync(device)
        start = time.perf_counter()
        run()
        sync(device)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def as_image(output: Output) -> np.ndarray | None:
    """A path's output as an (h, w, 3) array on the host (``psnr`` clips it)."""
    if isinstance(output, torch.Tensor):
        return output[0].float().permute(1, 2, 0).cpu().numpy()
    return output


def forward(model: nn.Module, x: torch.Tensor, autocast: torch.dtype | None = None) -> Run:
    def run() -> torch.Tensor:
        with torch.inference_mode(), torch.autocast(x.device.type, dtype=autocast) if autocast else nullcontext():
            return model(x)

    return run


@contextmanager
def tf32(enabled: bool) -> Iterator[None]:
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def need_cuda(case: Case) -> None:
    if not case.cuda:
        raise Skipped("CUDA only")


def fp32_reference(case: Case) -> Run:
    run = forward(case.network(channels_last=False), case.input(channels_last=False))

    def without_tf32() -> torch.Tensor:
        with tf32(False):
            return run()

    return without_tf32


def tf32_channels_last(case: Case) -> Run:
    need_cuda(case)
    run = forward(case.network(), case.input())

    def with_tf32() -> torch.Tensor:
        with tf32(True):
            return run()

    return with_tf32


def fp16_autocast(case: Case) -> Run:
    return forward(case.network(), case.input(), autocast=torch.float16)


def weights_in(dtype: torch.dtype) -> Callable[[Case], Run]:
    return lambda case: forward(case.network(dtype), case.input(dtype))


def cuda_graph(case: Case) -> Run:
    """The fp16 network captured once and replayed: no per-kernel launch cost from Python."""
    need_cuda(case)
    model, x = case.network(torch.float16), case.input(torch.float16)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.inference_mode():
        with torch.cuda.stream(side):
            for _ in range(2):
                model(x)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            y = model(x)

    def replay() -> torch.Tensor:
        graph.replay()
        return y

    return replay


def compiled(case: Case) -> Run:
    model = torch.compile(case.network(torch.float16), mode=case.args.compile_mode, dynamic=False)
    run = forward(model, case.input(torch.float16))
    sync(case.device)
    start = time.perf_counter()
    run()
    sync(case.device)
    case.notes["compile_s"] = round(time.perf_counter() - start, 1)
    return run


def tile_windows(case: Case, *, same_shape: bool = False) -> list[torch.Tensor]:
    """The input windows (tile plus the model's context) the chain runs at ``NETWORK_TILE``;
    with ``same_shape``, edge windows padded (by repeating their last row and column) to the
    interior windows' shape, so that all of them can go in one batch."""
    tiling = Tiling(tile=NETWORK_TILE).for_model(case.entry)
    height, width = case.rgb.shape[:2]
    full_h, full_w = min(height, tiling.tile + 2 * tiling.context), min(width, tiling.tile + 2 * tiling.context)
    windows = []
    for y0, y1, x0, x1 in tiles(height, width, tiling):
        (cy0, cy1), (cx0, cx1) = with_context(y0, y1, height, tiling.context), with_context(x0, x1, width, tiling.context)
        window = case.rgb[cy0:cy1, cx0:cx1]
        if same_shape:
            window = np.pad(window, ((0, full_h - window.shape[0]), (0, full_w - window.shape[1]), (0, 0)), mode="edge")
        windows.append(image_tensor(window, torch.float16, device=case.device))
    case.notes["network_tiles"] = len(windows)
    case.notes["computed_pixels"] = round(sum(w.shape[2] * w.shape[3] for w in windows) / (height * width), 2)
    return windows


def tiles_one_by_one(case: Case) -> Run:
    model, windows = case.network(torch.float16), tile_windows(case)

    def run() -> None:
        with torch.inference_mode():
            for window in windows:
                model(window)

    return run


def tiles_batched(case: Case) -> Run:
    """All windows in batches of ``--tile-batch``, edge windows padded to the interior shape."""
    model, windows = case.network(torch.float16), tile_windows(case, same_shape=True)
    size = case.args.tile_batch
    batches = [torch.cat(windows[i : i + size]) for i in range(0, len(windows), size)]

    def run() -> None:
        with torch.inference_mode():
            for batch in batches:
                model(batch)

    return run


def chain_tiles(tile: int) -> Callable[[Case], Run]:
    def setup(case: Case) -> Run:
        inference = Inference(case.device, "auto")
        model = inference.prepare(copy.deepcopy(case.model))
        tiling = Tiling(tile=tile).for_model(case.entry)
        return lambda: upscale_rgb(case.rgb, model, case.entry.scale, tiling=tiling, inference=inference)

    return setup


REFERENCE = "fp32 eager (reference, TF32 off)"
PATHS: dict[str, Callable[[Case], Run]] = {
    REFERENCE: fp32_reference,
    "TF32 channels_last": tf32_channels_last,
    "fp16 autocast channels_last (the chain's CUDA path)": fp16_autocast,
    "fp16 weights channels_last": weights_in(torch.float16),
    "bf16 weights channels_last": weights_in(torch.bfloat16),
    "fp16 weights, CUDA graph": cuda_graph,
    f"fp16 network on {NETWORK_TILE}-px tiles, one at a time": tiles_one_by_one,
    f"fp16 network on {NETWORK_TILE}-px tiles, batched": tiles_batched,
    **{f"chain upscale_rgb, {t}-px tiles (host to host)": chain_tiles(t) for t in CHAIN_TILES},
}
# a pass of its own, after every other path of every model: its compiling can take minutes,
# and a run stopped by its time limit then loses only these rows
COMPILED = {REFERENCE: fp32_reference, "fp16 weights, torch.compile": compiled}


def measure_case(case: Case, macs: float, paths: dict[str, Callable[[Case], Run]]) -> Iterator[dict[str, object]]:
    """Each path's row; the first path's output is the reference the others' PSNR is against."""
    height, width = case.rgb.shape[:2]
    reference = None
    for label, setup in paths.items():
        row: dict[str, object] = {"model": case.name, "path": label, "input": f"{width}x{height}"}
        case.notes.clear()
        try:
            run = setup(case)
        except Skipped as why:
            yield {**row, "skipped": str(why)}
            continue
        if case.cuda:
            sync(case.device)
            torch.cuda.reset_peak_memory_stats()
        image = as_image(run())  # untimed: the output, and the peak memory of one run
        if case.cuda:
            row["peak_device_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
        seconds = median_seconds(run, case.device, case.args.reps, case.args.warmup)
        out_pixels = height * width * case.entry.scale**2
        row.update(seconds=round(seconds, 5), output_mp_s=round(out_pixels / seconds / 1e6, 3),
                   effective_tflop_s=round(2 * macs * height * width / seconds / 1e12, 2), **case.notes)
        if reference is None:
            reference = image
        elif image is not None:
            row["psnr_vs_reference_db"] = round(psnr(image, reference), 2)
        del run, image
        if case.cuda:
            torch.cuda.empty_cache()
        yield row


def onnx_paths(case: Case, folder: Path) -> dict[str, object]:
    """Export, check the export on the CPU, and time it on any GPU provider onnxruntime has."""
    result: dict[str, object] = {"model": case.name, "tensorrt_package": importlib.util.find_spec("tensorrt") is not None}
    if importlib.util.find_spec("onnx") is None or importlib.util.find_spec("onnxruntime") is None:
        return {**result, "skipped": "onnx or onnxruntime is not installed"}
    import onnxruntime as ort

    path = folder / f"{case.name}.onnx"
    done = onnx_export.export(case.name, path, copy.deepcopy(case.model))  # checked on the CPU against torch
    result["export_s"] = round(done.seconds, 1)
    result["providers"] = ort.get_available_providers()
    result["cpu_agreement_psnr_db"] = round(done.agreement_db, 2)
    gpu_providers = {
        "TensorrtExecutionProvider": [("TensorrtExecutionProvider", {"trt_fp16_enable": True}), "CUDAExecutionProvider"],
        "CUDAExecutionProvider": ["CUDAExecutionProvider"],
    }
    image = np.ascontiguousarray(case.rgb.transpose(2, 0, 1)[None])
    for provider, chain in gpu_providers.items():
        if provider not in result["providers"]:
            continue
        session = ort.InferenceSession(str(path), providers=chain)
        run = functools.partial(session.run, None, {"image": image})
        seconds = median_seconds(run, "cpu", case.args.reps, case.args.warmup)
        result[f"{provider}_seconds"] = round(seconds, 5)
    return result


def chain_rows(device: str, rgb: np.ndarray, count: int) -> Iterator[dict[str, object]]:
    """Each preset's chain on ``count`` grainy copies of the photo: serially, then two at a time."""
    def verified(name: str) -> nn.Module:  # from verified package files where a converted file is missing
        return load(get_entry(name))[0]

    pipeline.load_model = metrics.load_model = verified
    rng = np.random.default_rng(0)
    images = [np.clip(rgb + rng.normal(0, 3 / 255, rgb.shape), 0, 1).astype(np.float32) for _ in range(count)]
    height, width = rgb.shape[:2]
    for label, preset, overrides, _sizes in CASES:
        chain = pipeline.Chain(preset, overrides, inference=Inference(device, "auto"))
        chain.run(images[0].copy())  # warm-up: first calls, cuDNN's algorithm search
        sync(device)
        start = time.perf_counter()
        results = [chain.run(image.copy()) for image in images]
        serial = (time.perf_counter() - start) / count
        copies = [image.copy() for image in images]
        with ThreadPoolExecutor(2) as lanes:
            start = time.perf_counter()
            list(lanes.map(chain.run, copies))
            two_lanes = (time.perf_counter() - start) / count
        parts = [stage_parts(r.stages) for r in results]
        medians = {name: float(np.median([p.get(name, 0.0) for p in parts])) for name in parts[0]}
        total = sum(medians.values())
        others = {k: v for k, v in medians.items() if k != SUPERRES_PARTS[0]}
        largest = max(others, key=others.get)
        yield {"case": label, "input": f"{width}x{height}", "images": count, "precision": chain.inference.precision,
               "seconds_serial": round(serial, 4), "seconds_two_lanes": round(two_lanes, 4),
               "output_mp_s_serial": round(height * width * chain.scale**2 / serial / 1e6, 3),
               "network_share": round(medians[SUPERRES_PARTS[0]] / total, 3),
               "largest_other": largest, "largest_other_share": round(others[largest] / total, 3),
               "stage_seconds": {k: round(v, 4) for k, v in medians.items()}}
        if torch.device(device).type == "cuda":
            torch.cuda.empty_cache()


def machine(device: str) -> dict[str, object]:
    info: dict[str, object] = {"torch": torch.__version__, "python": platform.python_version(),
                               "host": cpu_name(), "cpu_threads": torch.get_num_threads()}
    if torch.device(device).type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(gpu=props.name, capability=f"{props.major}.{props.minor}", gpu_memory_gib=round(props.total_memory / 2**30, 1),
                    multiprocessors=props.multi_processor_count, cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version())
        try:
            info["driver_and_clocks"] = subprocess.run(
                ["nvidia-smi", "--query-gpu=driver_version,clocks.sm,clocks.max.sm,power.limit", "--format=csv,noheader"],
                capture_output=True, text=True, timeout=30, check=False).stdout.strip()
        except (OSError, subprocess.TimeoutExpired) as exc:
            info["driver_and_clocks"] = f"nvidia-smi: {exc}"
    return info


def record(report: dict[str, object], section: str, out: Path, rows: Iterable[dict[str, object]]) -> None:
    """Each row into the report's ``section``, and the report to disk at once: what is done survives a time limit."""
    for row in rows:
        report[section].append(row)
        print(json.dumps(row), flush=True)
        out.write_text(json.dumps(report, indent=2) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--models", nargs="+", default=MODELS, choices=MODELS)
    parser.add_argument("--width", type=int, default=960)
    parser.add_argument("--height", type=int, default=540)
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--tile-batch", type=int, default=16, help="tiles per batch in the batched-tiles path")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (minutes of compiling per model)")
    parser.add_argument("--compile-mode", default="default",
                        help="torch.compile's mode; max-autotune-no-cudagraphs searches longer for faster kernels")
    parser.add_argument("--no-onnx", dest="onnx", action="store_false")
    parser.add_argument("--chain-images", type=int, default=6, help="images per preset in the whole-chain pass (0: none)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="folder for gpu_inference.json")
    args = parser.parse_args()
    if torch.device(args.device).type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device here: this benchmark is for a GPU machine (--device cpu checks the script)")
    torch.backends.cudnn.benchmark = True  # fixed shapes per path: let cuDNN pick its fastest algorithms
    rgb = photo(args.width, args.height)
    report: dict[str, object] = {"machine": machine(args.device), "image": f"astronaut, coffee, cat side by side, {args.width}x{args.height}",
                                 "weights": {}, "results": [], "onnx": [], "chains": []}
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / "gpu_inference.json"
    cases = {}
    with tempfile.TemporaryDirectory() as folder:
        for name in args.models:
            entry = get_entry(name)
            model, origin = load(entry)
            macs = macs_per_pixel(model)
            cases[name] = Case(name, entry, model, rgb, args.device, args), macs
            print(f"{name}: weights {origin}; {macs / 1e6:.2f} M multiply-adds per input pixel", flush=True)
            report["weights"][name] = {"origin": origin, "macs_per_input_pixel": macs}
            record(report, "results", out, measure_case(*cases[name], PATHS))
            if args.onnx:
                record(report, "onnx", out, [onnx_paths(cases[name][0], Path(folder))])
    if args.chain_images:
        record(report, "chains", out, chain_rows(args.device, rgb, args.chain_images))
    for case, macs in cases.values() if args.compile else ():
        record(report, "results", out, measure_case(case, macs, COMPILED))
    print(tables.gpu_paths(report))
    print(tables.gpu_chains(report))
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
