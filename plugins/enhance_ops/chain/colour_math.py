"""Colour conversions the stages share: sRGB transfer curve, luma, CIE Lab."""
from __future__ import annotations

import cv2
import numpy as np

LUMA = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)


def _srgb_to_linear_exact(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


_LINEAR_AT_16_BITS = _srgb_to_linear_exact(np.arange(65536, dtype=np.float32) / 65535)


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """The sRGB curve, looked up at 16-bit precision (within 2e-5 of the formula, twice as fast)."""
    index = np.clip(x, 0.0, 1.0) * 65535 + 0.5
    return _LINEAR_AT_16_BITS[index.astype(np.uint16)]


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * np.power(x, 1 / 2.4) - 0.055).astype(np.float32)


def luma(rgb: np.ndarray) -> np.ndarray:
    """Rec. 709 weights on the encoded values; grey images are their own luma."""
    return rgb[..., 0] if rgb.shape[-1] == 1 else rgb @ LUMA


_RGB_TO_XYZ = np.array(
    [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]],
    dtype=np.float32,
)
_D65 = np.array([0.95047, 1.0, 1.08883], dtype=np.float32)


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    xyz = (srgb_to_linear(rgb) @ _RGB_TO_XYZ.T) / _D65
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1).astype(
        np.float32
    )


def lab_to_srgb(lab: np.ndarray) -> np.ndarray:
    """OpenCV's float conversion: within 4e-4 of the formula (D65, sRGB curve) and ~20x faster."""
    flat = np.ascontiguousarray(lab.reshape(-1, 1, 3), dtype=np.float32)
    return np.clip(cv2.cvtColor(flat, cv2.COLOR_Lab2RGB), 0.0, 1.0).reshape(lab.shape)
