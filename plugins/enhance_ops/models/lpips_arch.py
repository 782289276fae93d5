"""LPIPS v0.1 (Zhang et al. 2018) built directly in torch.

The ``lpips`` package imports torchvision, whose registry build needs CUDA, so the network
is defined here and fed the same ImageNet backbone weights and linear heads.

In a bf16 model (models/float_ends.py) only the backbone is bf16: the convolution that reads
the image stays fp32, and each layer's features are normalised and compared in fp32 with
heads that stay fp32. That keeps LPIPS within 1.4e-4 of the fp32 network on the
calibration pairs (docs/quality.md).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .registry import register_arch

_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)


def _alexnet() -> tuple[nn.ModuleList, list[int]]:
    stages = nn.ModuleList(
        [
            nn.Sequential(nn.Conv2d(3, 64, 11, 4, 2), nn.ReLU()),
            nn.Sequential(nn.MaxPool2d(3, 2), nn.Conv2d(64, 192, 5, 1, 2), nn.ReLU()),
            nn.Sequential(nn.MaxPool2d(3, 2), nn.Conv2d(192, 384, 3, 1, 1), nn.ReLU()),
            nn.Sequential(nn.Conv2d(384, 256, 3, 1, 1), nn.ReLU()),
            nn.Sequential(nn.Conv2d(256, 256, 3, 1, 1), nn.ReLU()),
        ]
    )
    return stages, [64, 192, 384, 256, 256]


def _vgg16() -> tuple[nn.ModuleList, list[int]]:
    plan = [[64, 64], ["M", 128, 128], ["M", 256, 256, 256], ["M", 512, 512, 512], ["M", 512, 512, 512]]
    stages = nn.ModuleList()
    c_in = 3
    for stage_plan in plan:
        layers: list[nn.Module] = []
        for item in stage_plan:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c_in, int(item), 3, 1, 1), nn.ReLU()]
                c_in = int(item)
        stages.append(nn.Sequential(*layers))
    return stages, [64, 128, 256, 512, 512]


class LinearHead(nn.Module):
    """A learned weight per channel (a 1 × 1 convolution to one channel, no bias), held as a
    buffer, which a bf16 model leaves fp32 (float_ends casts parameters): the features'
    differences are weighed and summed in fp32."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.register_buffer("weight", torch.zeros(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight)


@register_arch("lpips")
class LPIPS(nn.Module):
    """Distance between two RGB images in [0, 1], shape (N, 3, H, W) → (N,)."""

    image_convolutions = ("stages.0.0", None)  # fp32 in a bf16 model (float_ends)

    def __init__(self, backbone: str = "alex") -> None:
        super().__init__()
        builders = {"alex": _alexnet, "vgg": _vgg16}
        if backbone not in builders:
            raise ValueError(f"LPIPS backbone must be one of {sorted(builders)}")
        self.stages, channels = builders[backbone]()
        self.lins = nn.ModuleList(LinearHead(c) for c in channels)
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1))

    def _features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Each stage's features, unit length over channels. The scaling to [-1, 1] and the
        shift and scale after it in one pass, the norms in one: 6-8 % less time than one pass
        for each step, with the backbone in bf16 (docs/benchmarks.md)."""
        x = torch.addcmul((-1 - self.shift) / self.scale, x, 2 / self.scale)
        feats = []
        for stage in self.stages:
            x = stage(x)
            f = x.float()
            feats.append(f / (torch.linalg.vector_norm(f, dim=1, keepdim=True) + 1e-10))
        return feats

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Both images go through the backbone as one batch: one pass, about 1.7x faster than two."""
        n = a.shape[0]
        total = torch.zeros(n, device=a.device, dtype=a.dtype)
        for lin, f in zip(self.lins, self._features(torch.cat((a, b)))):
            total = total + lin((f[:n] - f[n:]).square_()).mean(dim=(1, 2, 3))
        return total
