"""A bf16 network whose two ends stay fp32: the convolution that reads the image and the one that writes it.

bf16 keeps 8 significant bits. Run wholly in bf16, a network rounds the image to them on
the way in, so a 16-bit master's gradation is gone before the first layer, and rounds its
output to them on the way out, in steps of 1/256 in the highlights: an 8-bit staircase in
a 16-bit derivative. Those two convolutions are a fraction of a per cent of the arithmetic
(RRDBNet: 3 → 64 and 64 → 3 channels against 349 convolutions of 32-192), so they run
in fp32 and only the network's inside in bf16. Against the fp32 network on a smooth 16-bit
ramp that took RRDBNet from 44.4 to 49.6 dB and SPAN x4 from 54.0 to 66.8 dB, and on photos
(median) from 53.5 to 57.1 and 52.9 to 56.1 dB, in the same time (docs/benchmarks.md,
*bf16 with fp32 ends*).
"""
from __future__ import annotations

import copy

import torch
from torch import nn

ENDS_ATTRIBUTE = "image_convolutions"  # an architecture's (reads the image, writes the output) module names


class Fp32End(nn.Module):
    """One end of a bf16 network, computed in fp32 and handed on in ``hands_on`` (bf16 inward, fp32 outward)."""

    def __init__(self, conv: nn.Module, hands_on: torch.dtype) -> None:
        super().__init__()
        self.conv, self.hands_on = conv, hands_on

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x.float()).to(self.hands_on)


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, leaf, new)


def bf16_inside(model: nn.Module) -> nn.Module:
    """``model`` with its parameters in bf16 but for its two image convolutions, which stay
    fp32 where the architecture names them (all of it in bf16 where it does not). Buffers
    (SPAN's input mean) keep fp32: the input they meet is fp32."""
    ends: tuple[str, str] | None = getattr(model, ENDS_ATTRIBUTE, None)
    if ends is None:
        return model.to(torch.bfloat16)
    reads, writes = ends
    originals = {name: copy.deepcopy(model.get_submodule(name)) for name in ends}
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.data = parameter.data.to(torch.bfloat16)
    _replace(model, reads, Fp32End(originals[reads], torch.bfloat16))
    _replace(model, writes, Fp32End(originals[writes], torch.float32))
    return model


def takes_float32(model: nn.Module) -> bool:
    """Whether ``model``, or a network it wraps, has fp32 ends: it is given float32 input, and no autocast."""
    return any(isinstance(module, Fp32End) for module in model.modules())
