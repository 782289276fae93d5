"""Convolutions with their weights reordered once into oneDNN's blocked layout (CPU only).

A plain ``nn.Conv2d`` on CPU hands oneDNN its weights in PyTorch's layout, and oneDNN
reorders them on every call: for RRDBNet, 351 convolutions per tile. On small tiles that
reorder is several per cent of the network's time (bench/reference_paths.py). Reordering
once at load time, as inductor's freezing pass does, removes it; the arithmetic is the same
convolution, so results agree with ``nn.Conv2d`` to rounding (tests/test_onednn.py).

The activation that follows a convolution (RRDBNet's LeakyReLU after 279 of its 351, SPAN's
SiLU, AlexNet's ReLU in the LPIPS measure) is then applied by oneDNN as the convolution's
results are written, instead of in a second pass over them: 8-9 % of RRDBNet's and SPAN's
time in bf16 on the development VM with AMX, and, as the activation is applied before the
result is rounded to bf16 rather than after, no further from the fp32 reference
(docs/benchmarks.md, *Precision and layout per model*).

Which layout oneDNN prefers can depend on the input's size. For the 3 × 3 convolutions of
the SR networks it did not matter on the development VM, so one layout, chosen for a 64²
input, serves every tile. For AlexNet's 5 × 5 convolution in bf16 (the LPIPS measure) the
layout chosen for one size took 2-3× the time on inputs of another, either way round, and
LPIPS's input changes size with each image: its convolutions choose a layout per input
shape (``per_shape``).
"""
from __future__ import annotations

import torch
from torch import fx, nn

from .float_ends import Fp32Conv

# The activations oneDNN applies inside a convolution, by the name its fused kernel takes, with their parameters.
_FUSED: dict[type[nn.Module], tuple[str, list[float]]] = {nn.ReLU: ("relu", []), nn.SiLU: ("swish", [])}


def available() -> bool:
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_convolution_pointwise")


class PackedConv2d(nn.Module):
    """Stands in for one CPU ``nn.Conv2d`` (zero padding, integer padding) in inference.
    ``per_shape``: its weights reordered for the shape of each input that differs from the last one's."""

    def __init__(self, conv: nn.Conv2d, *, per_shape: bool = False) -> None:
        super().__init__()
        if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            raise ValueError(f"cannot pack {conv}: only zero, integer padding")
        self.padding, self.stride = list(conv.padding), list(conv.stride)
        self.dilation, self.groups = list(conv.dilation), conv.groups
        self.bias = None if conv.bias is None else nn.Parameter(conv.bias.detach(), requires_grad=False)
        self.weight = conv.weight.detach() if per_shape else None
        # The size only picks oneDNN's preferred layout; any input size runs, with the same result.
        self.packed = None if per_shape else self._reordered(conv.weight.detach(), [1, conv.in_channels, 64, 64])
        self._last: tuple[torch.Size, torch.Tensor] | None = None  # per_shape: the last input's shape, its layout
        self.activation: str = "none"  # set by fuse_activations
        self.activation_scalars: list[float] = []

    def _reordered(self, weight: torch.Tensor, example: list[int]) -> torch.Tensor:
        return torch.ops.mkldnn._reorder_convolution_weight(
            weight, self.padding, self.stride, self.dilation, self.groups, example
        )

    def _layout_for(self, shape: torch.Size) -> torch.Tensor:
        last = self._last  # read once: a lane replacing it meanwhile leaves this one a consistent pair
        if last is None or last[0] != shape:
            last = self._last = shape, self._reordered(self.weight, list(shape))
        return last[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        packed = self.packed if self.weight is None else self._layout_for(x.shape)
        return torch.ops.mkldnn._convolution_pointwise(
            x, packed, self.bias, self.padding, self.stride, self.dilation, self.groups,
            self.activation, self.activation_scalars, ""
        )


def pack_convolutions(model: nn.Module, *, per_shape: bool = False) -> nn.Module:
    """Every ``nn.Conv2d`` in ``model`` (already in its final dtype, on CPU) swapped for a packed one, in place."""
    for name, child in model.named_children():
        if type(child) is nn.Conv2d:
            setattr(model, name, PackedConv2d(child, per_shape=per_shape))
        else:
            pack_convolutions(child, per_shape=per_shape)
    return model


class _PackedLeaves(fx.Tracer):
    """Packed convolutions are called as they are; so are a bf16 network's fp32 ends, kept whole (and unfused)."""

    def is_leaf_module(self, module: nn.Module, name: str) -> bool:
        return isinstance(module, (PackedConv2d, Fp32Conv)) or super().is_leaf_module(module, name)


def fuse_activations(model: nn.Module) -> nn.Module:
    """``model`` (packed) with each activation that only follows one packed convolution's
    output done inside that convolution. Where its forward cannot be traced (FFDNet's
    branches on the input's size), its parts are fused each on its own."""
    try:
        graph = _PackedLeaves().trace(model)
    except fx.proxy.TraceError:
        for name, child in model.named_children():
            setattr(model, name, fuse_activations(child))
        return model
    modules = dict(model.named_modules())
    calls = [node.target for node in graph.nodes if node.op == "call_module"]
    fused = 0
    for node in list(graph.nodes):
        if node.op != "call_module" or node.kwargs or len(node.args) != 1:
            continue
        activation, source = modules[node.target], node.args[0]
        kind = _activation(activation)
        if kind is None or not isinstance(source, fx.Node) or source.op != "call_module" or len(source.users) != 1:
            continue
        conv = modules[source.target]
        conv = conv.conv if isinstance(conv, Fp32Conv) else conv  # done in fp32, before its output is cast
        if not isinstance(conv, PackedConv2d) or conv.activation != "none" or calls.count(source.target) != 1:
            continue
        conv.activation, conv.activation_scalars = kind
        node.replace_all_uses_with(source)
        graph.erase_node(node)
        fused += 1
    return fx.GraphModule(model, graph) if fused else model


def _activation(module: nn.Module) -> tuple[str, list[float]] | None:
    if isinstance(module, nn.LeakyReLU):
        return "leaky_relu", [module.negative_slope]
    return _FUSED.get(type(module))
