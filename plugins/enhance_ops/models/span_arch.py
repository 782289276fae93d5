"""SPAN (swift parameter-free attention network) in its inference form.

Upstream trains each 3x3 conv as a re-parameterisable ``Conv3XC`` and folds it into one
``eval_conv`` for inference; the published ncnn graphs hold only the folded convs, so this
module keeps the ``eval_conv`` names and nothing else.
"""
from __future__ import annotations

import torch
from torch import nn

from .registry import register_arch


class FoldedConv(nn.Module):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.eval_conv = nn.Conv2d(c_in, c_out, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.eval_conv(x)


class SPAB(nn.Module):
    """Conv-SiLU-conv-SiLU-conv, then attention from the sigmoid of the last conv."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.c1_r = FoldedConv(channels, channels)
        self.c2_r = FoldedConv(channels, channels)
        self.c3_r = FoldedConv(channels, channels)
        self.act1 = nn.SiLU(inplace=True)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # In place on the convolutions' fresh outputs (inference only): fewer passes and
        # allocations, about 6 % of SPAN's time on a 64² input, the same values.
        out1 = self.act1(self.c1_r(x))
        out3 = self.c3_r(self.act1(self.c2_r(out1)))
        attention = torch.sigmoid(out3).sub_(0.5)
        return out3.add_(x).mul_(attention), out1


@register_arch("span")
class SPAN(nn.Module):
    NCNN_CONSTANTS = ("mean",)  # the graph's MemoryData layer holds the input mean
    image_convolutions = ("conv_1.eval_conv", "upsampler.0")  # fp32 in a bf16 model (float_ends)

    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, feature_channels: int = 48, upscale: int = 4) -> None:
        super().__init__()
        self.scale = upscale
        self.register_buffer("mean", torch.zeros(1, num_in_ch, 1, 1))
        self.img_range = 255.0
        self.conv_1 = FoldedConv(num_in_ch, feature_channels)
        self.blocks = nn.ModuleList(SPAB(feature_channels) for _ in range(6))
        self.conv_2 = FoldedConv(feature_channels, feature_channels)
        self.conv_cat = nn.Conv2d(feature_channels * 4, feature_channels, 1, 1, 0)
        self.upsampler = nn.Sequential(
            nn.Conv2d(feature_channels, num_out_ch * upscale * upscale, 3, 1, 1), nn.PixelShuffle(upscale)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.conv_1((x - self.mean) * self.img_range)
        out = feat
        out_b1 = out_b5_1 = feat
        for i, block in enumerate(self.blocks):
            out, first = block(out)
            if i == 0:
                out_b1 = out
            if i == 5:
                out_b5_1 = first
        out = self.conv_cat(torch.cat([feat, self.conv_2(out), out_b1, out_b5_1], 1))
        return self.upsampler(out)
