"""FFDNet (Zhang et al. 2018): a denoiser that takes the noise level as an input map.

Layout and parameter names follow KAIR's ``network_ffdnet``; ``sigma`` is on the [0, 1]
intensity scale (σ/255 for 8-bit noise levels) and may be a scalar per image or a full map.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .registry import register_arch


@register_arch("ffdnet")
class FFDNet(nn.Module):
    def __init__(self, in_nc: int = 3, out_nc: int = 3, nc: int = 96, nb: int = 12) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_nc * 4 + 1, nc, 3, 1, 1), nn.ReLU(inplace=True)]
        for _ in range(nb - 2):
            layers += [nn.Conv2d(nc, nc, 3, 1, 1), nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(nc, out_nc * 4, 3, 1, 1))
        self.model = nn.Sequential(*layers)
        self.image_convolutions = ("model.0", f"model.{len(layers) - 1}")  # fp32 in a bf16 model (float_ends)
        self.down = nn.PixelUnshuffle(2)
        self.up = nn.PixelShuffle(2)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        x = F.pad(x, (0, w % 2, 0, h % 2), mode="replicate")
        x = self.down(x)
        if sigma.shape[-2:] != x.shape[-2:]:
            sigma = F.interpolate(sigma, size=x.shape[-2:], mode="bilinear", align_corners=False)
        x = self.up(self.model(torch.cat((x, sigma), 1)))
        return x[..., :h, :w]
