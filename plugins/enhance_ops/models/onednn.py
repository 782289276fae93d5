"""Convolutions with their weights reordered once into oneDNN's blocked layout (CPU only).

A plain ``nn.Conv2d`` on CPU hands oneDNN its weights in PyTorch's layout, and oneDNN
reorders them on every call: for RRDBNet, 351 convolutions per tile. On small tiles that
reorder is several per cent of the network's time (bench/reference_paths.py). Reordering
once at load time, as inductor's freezing pass does, removes it; the arithmetic is the same
convolution, so results agree with ``nn.Conv2d`` to rounding (tests/test_onednn.py).
"""
from __future__ import annotations

import torch
from torch import nn


def available() -> bool:
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_convolution_pointwise")


class PackedConv2d(nn.Module):
    """Stands in for one CPU ``nn.Conv2d`` (zero padding, integer padding) in inference."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            raise ValueError(f"cannot pack {conv}: only zero, integer padding")
        self.padding, self.stride = list(conv.padding), list(conv.stride)
        self.dilation, self.groups = list(conv.dilation), conv.groups
        self.bias = None if conv.bias is None else nn.Parameter(conv.bias.detach(), requires_grad=False)
        # The size only picks oneDNN's preferred layout; any input size runs, with the same result.
        example = [1, conv.in_channels, 64, 64]
        self.packed = torch.ops.mkldnn._reorder_convolution_weight(
            conv.weight.detach(), self.padding, self.stride, self.dilation, self.groups, example
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.mkldnn._convolution_pointwise(
            x, self.packed, self.bias, self.padding, self.stride, self.dilation, self.groups, "none", [], ""
        )


def pack_convolutions(model: nn.Module) -> nn.Module:
    """Every ``nn.Conv2d`` in ``model`` (already in its final dtype, on CPU) swapped for a packed one, in place."""
    for name, child in model.named_children():
        if type(child) is nn.Conv2d:
            setattr(model, name, PackedConv2d(child))
        else:
            pack_convolutions(child)
    return model
