"""Full-reference image-quality metrics, each with its convention stated and calibrated.

Inputs are float arrays (H, W, C) in [0, 1], whatever the file's bit depth: 16-bit data is
measured at its own precision, never reduced to 8 bits first. tests/test_metrics.py checks
each function against the official values published for five TID2013 pairs
(../shared/calibration): PSNR to 0.01 dB, SSIM and LPIPS to 0.001.

| metric | convention |
|---|---|
| ``psnr`` | RGB (all channels pooled), peak 1.0, optional border crop |
| ``ssim`` | luma with MATLAB ``rgb2gray`` weights (0.2989, 0.5870, 0.1140) rounded to the data's integer levels (as MATLAB does for integer images; 16-bit data at 16-bit precision), on a 0-255 scale; 11x11 Gaussian window σ 1.5, "valid" filtering, K = (0.01, 0.03), L = 255, no downsampling: Wang et al.'s ``ssim_index.m``. (The calibration README names the YCbCr Y channel; the published values are reproduced exactly by this luma, not by YCbCr Y.) |
| ``lpips`` | LPIPS v0.1, AlexNet, RGB scaled to [-1, 1]; computed with this package's own network from the official weights (the ``lpips`` package cannot be imported on CPU-only hosts, see docs/quality.md); on a CPU with native bf16 its backbone runs in bf16, within 1.4e-4 of fp32 on the calibration pairs |
"""
from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import cv2
import numpy as np
import torch
from torch import nn

from ..chain import strips
from ..chain.colour_math import pixel_products
from ..chain.superres import Inference, image_tensor
from ..models.weights import load_model

Rows = Callable[[int, int], np.ndarray]
_WINDOW = 11
_GRAY_WEIGHTS = np.array([0.298936021293775, 0.587043074451121, 0.114020904255103], dtype=np.float64)


def _crop(image: np.ndarray, border: int) -> np.ndarray:
    return image[border:-border, border:-border] if border else image


def psnr(a: np.ndarray, b: np.ndarray, *, border: int = 0) -> float:
    a, b = _crop(a, border), _crop(b, border)
    return psnr_rows(lambda r0, r1: a[r0:r1], lambda r0, r1: b[r0:r1], *a.shape[:2])


def psnr_rows(a: Rows, b: Rows, height: int, width: int) -> float:
    """PSNR of two images given band by band (``a(r0, r1)``: rows r0:r1), so neither need exist whole."""
    def band(r0: int, r1: int) -> tuple[float, int]:
        diff = a(r0, r1).astype(np.float64) - b(r0, r1).astype(np.float64)
        return float(np.vdot(diff, diff)), diff.size

    squared, counts = zip(*strips.map_bands(height, width, band))
    mse = sum(squared) / sum(counts)
    return float("inf") if mse == 0 else float(10 * np.log10(1.0 / mse))


def luma_levels(rgb: np.ndarray, bit_depth: int = 8) -> np.ndarray:
    """MATLAB ``rgb2gray`` of an integer image, on a 0-255 scale: the official SSIM input."""
    top = 2**bit_depth - 1
    if rgb.shape[2] == 1:
        gray = rgb[..., 0].astype(np.float64)
    else:  # the same sums as ``@ _GRAY_WEIGHTS`` in double, several times faster
        gray = pixel_products(rgb.astype(np.float64), _GRAY_WEIGHTS[None])[..., 0]
    return np.round(gray * top) * (255.0 / top)


def _gaussian_window(size: int = _WINDOW, sigma: float = 1.5) -> np.ndarray:
    """The 1-D factor of the official 11 × 11 Gaussian window (it is separable)."""
    return cv2.getGaussianKernel(size, sigma, cv2.CV_64F)


def _filter_valid(image: np.ndarray, window: np.ndarray) -> np.ndarray:
    """The 2-D window's filtering where it fits ("valid"), as two 1-D passes (22 products a pixel, not 121)."""
    full = cv2.sepFilter2D(image, cv2.CV_64F, window, window, borderType=cv2.BORDER_CONSTANT)
    r = window.shape[0] // 2
    return full[r:-r, r:-r]


def ssim_map(a: np.ndarray, b: np.ndarray, *, bit_depth: int = 8) -> np.ndarray:
    x, y = luma_levels(a, bit_depth), luma_levels(b, bit_depth)
    window = _gaussian_window()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_x, mu_y = _filter_valid(x, window), _filter_valid(y, window)
    sxx = _filter_valid(x * x, window) - mu_x**2
    syy = _filter_valid(y * y, window) - mu_y**2
    sxy = _filter_valid(x * y, window) - mu_x * mu_y
    return ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))


def ssim(a: np.ndarray, b: np.ndarray, *, border: int = 0, bit_depth: int = 8) -> float:
    a, b = _crop(a, border), _crop(b, border)
    return ssim_rows(lambda r0, r1: a[r0:r1], lambda r0, r1: b[r0:r1], *a.shape[:2], bit_depth=bit_depth)


def ssim_rows(a: Rows, b: Rows, height: int, width: int, *, bit_depth: int = 8) -> float:
    """Mean SSIM of two images given band by band: each band of the map is computed from
    its rows plus the window's reach (5 rows) either side, as "valid" filtering needs."""
    reach = _WINDOW // 2

    def band(c0: int, c1: int) -> tuple[float, int]:
        part = ssim_map(a(c0, c1 + 2 * reach), b(c0, c1 + 2 * reach), bit_depth=bit_depth)
        return float(part.sum()), part.size

    parts = strips.map_bands(max(0, height - 2 * reach), width, band)
    count = sum(size for _, size in parts)
    return sum(total for total, _ in parts) / count if count else float("nan")


@lru_cache(maxsize=1)
def _lpips_inference() -> Inference:
    """The backbone in bf16 on a CPU with native bf16, else fp32 (models/lpips_arch.py); each
    image's size gets its own weight layout, without which bf16 was no faster (models/onednn.py)."""
    return Inference(precision="auto", layout_per_shape=True)


def lpips_precision() -> str:
    """What this worker's LPIPS backbone computes in ("bf16" or "fp32"), for the ledger: two
    workers' LPIPS can differ in the fourth decimal, and this tells which was which."""
    return _lpips_inference().precision


@lru_cache(maxsize=2)
def _lpips_net(backbone: str) -> nn.Module:
    return _lpips_inference().prepare(load_model(f"lpips-{backbone}"))


def _tensor(image: np.ndarray) -> torch.Tensor:
    return image_tensor(np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image, torch.float32)


def lpips(a: np.ndarray, b: np.ndarray, *, backbone: str = "alex") -> float:
    """Perceptual distance (lower is closer); grey images are compared as three equal channels."""
    with torch.inference_mode():
        return float(_lpips_net(backbone)(_tensor(a), _tensor(b))[0])
