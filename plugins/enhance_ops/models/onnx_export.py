"""A super-resolution network of the manifest as an ONNX file, checked against torch.

ONNX is the way into TensorRT (``trtexec --onnx=… --fp16``) and other runtimes, which the
chain does not run itself. The network is exported in fp32 with the image's height and width
left free, so that one file serves every tile size and an engine builder picks its own
precision. The file's metadata names the weights it holds (the manifest's name, sha256,
scale and licence), so that an engine built from it can be traced back to them. Before the
file is kept, onnxruntime runs it on the CPU on a photograph of another size than the one
traced, and its output must agree with torch's; a file that does not is not kept.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .manifest import get_entry
from .weights import load_model

OPSET = 17
INPUT, OUTPUT = "image", "upscaled"  # (1, 3, H, W) RGB in [0, 1]; (1, 3, H*s, W*s)
MIN_AGREEMENT_DB = 100.0  # fp32 against fp32: onnxruntime and torch agreed to 138-151 dB on an H200's host
TRACE_SIDE = 64
CHECK_SIZE = (45, 71)  # odd, and neither side the traced one: a size baked into the graph shows


@dataclass(frozen=True)
class Exported:
    path: Path
    agreement_db: float  # PSNR of onnxruntime's output against torch's on the check photograph
    seconds: float


def export(name: str, path: Path, model: torch.nn.Module | None = None) -> Exported:
    """``name``'s network, with its verified weights (or ``model``, the same network loaded
    otherwise, fp32 on the CPU), written to ``path`` once checked."""
    import onnx  # the export's own dependencies, needed by nothing else

    entry = get_entry(name)
    if entry.task != "super-resolution":
        raise ValueError(f"{name} is a {entry.task} model: only super-resolution networks are exported")
    start = time.perf_counter()
    model = load_model(name) if model is None else model
    unchecked = path.with_name(path.name + ".unchecked")
    try:
        torch.onnx.export(model, (torch.rand(1, 3, TRACE_SIDE, TRACE_SIDE),), str(unchecked), dynamo=False,
                          opset_version=OPSET, input_names=[INPUT], output_names=[OUTPUT],
                          dynamic_axes={INPUT: {2: "height", 3: "width"}, OUTPUT: {2: "out_height", 3: "out_width"}})
        graph = onnx.load(str(unchecked))
        onnx.helper.set_model_props(graph, {
            "model": name, "weights_sha256": entry.sha256, "scale": str(entry.scale),
            "weights_licence": entry.licence["weights"], "upstream": entry.upstream,
            "input": f"{INPUT}: 1 x 3 x H x W, RGB in [0, 1], fp32",
        })
        onnx.checker.check_model(graph)
        onnx.save(graph, str(unchecked))
        agreement = agreement_db(model, unchecked)
        if agreement < MIN_AGREEMENT_DB:
            raise RuntimeError(f"the ONNX export of {name} agrees with torch to {agreement:.1f} dB, under "
                               f"{MIN_AGREEMENT_DB:.0f}: not kept")
        unchecked.replace(path)
    finally:
        unchecked.unlink(missing_ok=True)
    return Exported(path, agreement, time.perf_counter() - start)


def check_photo() -> np.ndarray:
    """A (1, 3, h, w) float32 crop of a real photograph, at ``CHECK_SIZE``."""
    from skimage import data

    height, width = CHECK_SIZE
    crop = data.astronaut()[180:180 + height, 200:200 + width].astype(np.float32) / 255
    return np.ascontiguousarray(crop.transpose(2, 0, 1)[None])


def agreement_db(model: torch.nn.Module, path: Path) -> float:
    """PSNR of the ONNX file's output (onnxruntime, CPU) against ``model``'s on ``check_photo``."""
    import onnxruntime

    from ..quality.metrics import psnr  # read here: the quality package loads the models

    image = check_photo()
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    exported = session.run([OUTPUT], {INPUT: image})[0]
    with torch.inference_mode():
        expected = model(torch.from_numpy(image)).numpy()
    if exported.shape != expected.shape:
        raise RuntimeError(f"the ONNX export gives {exported.shape} where torch gives {expected.shape}")
    return psnr(exported[0].transpose(1, 2, 0), expected[0].transpose(1, 2, 0))
