"""A bf16 network whose two ends stay fp32: the convolution that reads the image and the one that writes it.

bf16 keeps 8 significant bits. Run wholly in bf16, a network rounds the image to them on
the way in, so a 16-bit master's gradation is gone before the first layer, and rounds its
output to them on the way out, in steps of 1/256 in the highlights: an 8-bit staircase in
a 16-bit derivative. Those two convolutions are a small part of the arithmetic (RRDBNet:
3 → 64 and 64 → 3 channels against 349 convolutions of 32-192), so they run in fp32 and
only the network's inside in bf16. Against the fp32 network on a smooth 16-bit ramp that
took RRDBNet from 44.4 to 49.6 dB and the compact model from 46.9 to 53.4 dB, on photos
(median) from 53.5 to 57.1 and 56.8 to 67.3 dB, for 3 and 4.5 % more time on a 256² tile
(docs/benchmarks.md, *bf16 with fp32 ends*).

The compact model writes a residual that it adds to its input, enlarged: given fp32 input,
that sum is fp32 with its last convolution in bf16 (a residual's relative error is a small
part of a level), so it names no writing convolution: that convolution in fp32 as well
agreed no better and took 8.5 % more time where this takes 4.5 %.

A model's weights may name convolutions inside it to keep fp32 too (the manifest's
``fp32_inside``): SPAN x4's ``conv_cat`` sums four feature paths that nearly cancel on a
black frame, and in bf16 lifted black by 0.7 of an 8-bit level (fp32 0.1), enough to cost
a black-bordered page 0.07 of its consistency SSIM.
"""
from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

ENDS_ATTRIBUTE = "image_convolutions"  # an architecture's (reads the image, writes the output or None) names
FP32_INSIDE = "fp32_inside"  # set from the manifest on a loaded model: further convolutions to keep fp32


class Fp32Conv(nn.Module):
    """A convolution of a bf16 network computed in fp32, its result handed on in ``hands_on``
    (bf16 to the layers after it; fp32 from the one that writes the output)."""

    def __init__(self, conv: nn.Module, hands_on: torch.dtype) -> None:
        super().__init__()
        self.conv, self.hands_on = conv, hands_on

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x.float()).to(self.hands_on)


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, leaf, new)


def bf16_inside(model: nn.Module) -> nn.Module:
    """``model`` with its parameters in bf16 but for its two image convolutions and those its
    weights name, which stay fp32, where the architecture names its ends (all of it in bf16
    where it does not). Buffers (SPAN's input mean) keep fp32: the input they meet is fp32."""
    ends: tuple[str, str | None] | None = getattr(model, ENDS_ATTRIBUTE, None)
    if ends is None:
        return model.to(torch.bfloat16)
    reads, writes = ends
    kept = (reads, *getattr(model, FP32_INSIDE, ()), *([writes] if writes else []))
    originals = {name: copy.deepcopy(model.get_submodule(name)) for name in kept}
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.data = parameter.data.to(torch.bfloat16)
    for name, conv in originals.items():
        _replace(model, name, Fp32Conv(conv, torch.float32 if name == writes else torch.bfloat16))
    return model


def takes_float32(model: nn.Module) -> bool:
    """Whether ``model``, or a network it wraps, reads the image in fp32: it is given float32 input, and no autocast."""
    return any(isinstance(module, Fp32Conv) for module in model.modules())


def on_bf16_grid(out: np.ndarray) -> float:
    """The share of output values bf16 holds exactly: 1.0 where the output was rounded to it,
    the staircase these ends keep out of a 16-bit derivative."""
    values = torch.from_numpy(np.ascontiguousarray(out))
    return float((values.to(torch.bfloat16).float() == values).float().mean())
