"""Colour conversions the stages share: sRGB transfer curve, luma, CIE Lab."""
from __future__ import annotations

import cv2
import numpy as np

LUMA = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
# sRGB levels (luma) of an area's low frequencies at or below which a stage keeps its level
# (a photograph's black), fading to not at all above the second: Real-ESRGAN crushed an even
# 10/255 to 2.4, and CLAHE lifted a deep-sky black from L* 1.0 to 3.9
SHADOWS = (0.04, 0.12)


def above_shadows(levels: np.ndarray, bounds: tuple[float, float] = SHADOWS) -> np.ndarray:
    """How far above a photograph's black each low-passed level is: 0 at or below
    ``bounds[0]``, 1 from ``bounds[1]`` up, linear between (``bounds`` in the units of
    ``levels``); the colour guard and local contrast share this ramp."""
    dark, light = bounds
    return np.clip((levels - dark) / (light - dark), 0.0, 1.0)


def _srgb_to_linear_exact(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


_LINEAR_AT_16_BITS = _srgb_to_linear_exact(np.arange(65536, dtype=np.float32) / 65535)


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """The sRGB curve, looked up at 16-bit precision (within 2e-5 of the formula, several times
    faster; ``np.take`` gathers much faster than fancy indexing)."""
    index = np.clip(x * np.float32(65535) + np.float32(0.5), 0, 65535).astype(np.uint16)
    return np.take(_LINEAR_AT_16_BITS, index)


def _linear_to_srgb_exact(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * np.power(x, 1 / 2.4) - 0.055).astype(np.float32)


# Indexed by the square root of the linear value, in which the curve's slope is at most 1.45:
# the nearest of 65,536 steps is within 1.1e-5 of the formula. Indexed by the value itself it
# would be 2e-4 off near black, where the curve is steepest.
_SRGB_AT_16_BIT_ROOTS = _linear_to_srgb_exact((np.arange(65536, dtype=np.float64) / 65535) ** 2)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """The sRGB curve's inverse, looked up: within 1.1e-5 of the formula (0.7 of a 16-bit
    level) and faster than its power. Finite values; those below 0 come out black (their
    root is NaN, which OpenCV saturates to index 0), those above 1 white."""
    values = np.ascontiguousarray(x, dtype=np.float32)
    flat = values.reshape(-1, values.shape[-1] if values.ndim > 1 else 1)  # rows within OpenCV's int range
    if flat.size == 0:  # OpenCV's sqrt crashes the process on an empty array
        return np.zeros(np.shape(x), np.float32)
    index = cv2.multiply(cv2.sqrt(flat), 65535.0, dtype=cv2.CV_16U)  # rounded and saturated in one pass
    return np.take(_SRGB_AT_16_BIT_ROOTS, index).reshape(np.shape(x))


def pixel_products(pixels: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``pixels @ matrix.T`` for pixels (..., c) and a (k, c) matrix, in the pixels' precision,
    shape (..., k). By ``cv2.transform``: numpy's matmul handles an inner size of 3 poorly
    (luma 2.4x slower, within 1.2e-7 of this) and is a BLAS call (see threads.py)."""
    shape = pixels.shape[:-1] + (matrix.shape[0],)
    if pixels.size == 0:
        return np.zeros(shape, pixels.dtype)
    flat = np.ascontiguousarray(pixels).reshape(-1, 1, pixels.shape[-1])
    return cv2.transform(flat, matrix).reshape(shape)


def luma(rgb: np.ndarray) -> np.ndarray:
    """Rec. 709 weights on the encoded values; grey images are their own luma."""
    return rgb[..., 0] if rgb.shape[-1] == 1 else pixel_products(rgb, LUMA[None])[..., 0]


_RGB_TO_XYZ = np.array(
    [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]],
    dtype=np.float32,
)
_D65 = np.array([0.95047, 1.0, 1.08883], dtype=np.float32)


_XYZ_OVER_WHITE = (_RGB_TO_XYZ / _D65[:, None]).astype(np.float32)
_F_TO_LAB = np.array([[0, 116, 0, -16], [500, -500, 0, 0], [0, 200, -200, 0]], dtype=np.float32)
_LAB_DELTA = 6 / 29  # f where CIE Lab's cube root meets its linear segment near black
_LAB_EPSILON = _LAB_DELTA**3
# Lab → CIE Lab's (fx, fy, fz), undoing _F_TO_LAB: fy = (L* + 16) / 116, fx = fy + a* / 500, fz = fy - b* / 200
_LAB_TO_F = np.array(
    [[1 / 116, 1 / 500, 0, 16 / 116], [1 / 116, 0, 0, 16 / 116], [1 / 116, 0, -1 / 200, 16 / 116]], dtype=np.float32
)
_WHITE_RELATIVE_TO_RGB = np.linalg.inv(_XYZ_OVER_WHITE.astype(np.float64)).astype(np.float32)


def _linear_where_dark(x: np.ndarray, limit: float, slope: float, intercept: float, out: np.ndarray) -> np.ndarray:
    """``out`` with ``x * slope + intercept`` wherever ``x <= limit`` (Lab's linear segment near
    black), by OpenCV's masked copy: numpy's ``copyto(where=)`` slows as the share of dark
    pixels grows, and took 1.5x as long as this on a dark photo."""
    flat = x.reshape(-1, x.shape[-1])  # one row a pixel: within OpenCV's int range
    # OpenCV reads an array of four values or fewer as a scalar: a one-pixel image's lightness
    bound = np.full_like(flat, limit) if flat.size <= 4 else limit
    dark = cv2.compare(flat, bound, cv2.CMP_LE)
    return cv2.copyTo(flat * np.float32(slope) + np.float32(intercept), dark, out.reshape(flat.shape)).reshape(out.shape)


def _lab_f(t: np.ndarray) -> np.ndarray:
    """CIE Lab's f: the cube root of each relative tristimulus value, linear near black."""
    return _linear_where_dark(t, _LAB_EPSILON, 1 / (3 * _LAB_DELTA**2), 4 / 29, np.cbrt(t))


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIE Lab (D65) by the formula; the 3x3 products run in ``cv2.transform``, which is
    many times faster than a numpy matmul with an inner size of 3."""
    flat = np.ascontiguousarray(srgb_to_linear(rgb).reshape(-1, 1, 3))
    return cv2.transform(_lab_f(cv2.transform(flat, _XYZ_OVER_WHITE)), _F_TO_LAB).reshape(rgb.shape)


def lightness(rgb: np.ndarray) -> np.ndarray:
    """CIE L* / 100 alone, shape (...): it depends on luminance only, so one product and one
    cube root per pixel where ``srgb_to_lab`` takes three of each."""
    flat = np.ascontiguousarray(srgb_to_linear(rgb).reshape(-1, 1, 3))
    f = _lab_f(cv2.transform(flat, _XYZ_OVER_WHITE[1:2]))
    f *= np.float32(1.16)
    f -= np.float32(0.16)
    return f.reshape(rgb.shape[:-1])


def _lab_f_inverse(f: np.ndarray) -> np.ndarray:
    """The relative tristimulus values back from CIE Lab's f: cubes, linear near black."""
    slope = 3 * _LAB_DELTA**2
    return _linear_where_dark(f, _LAB_DELTA, slope, -slope * 4 / 29, cv2.pow(f, 3))


def lab_to_srgb(lab: np.ndarray) -> np.ndarray:
    """By the formula (D65, sRGB curve), within 2e-5 of it: OpenCV's float conversion is up
    to 1.2e-3 off (80 levels of 16 bits) and slower (docs/benchmarks.md, *Lab back to sRGB*)."""
    flat = np.ascontiguousarray(lab.reshape(-1, 1, 3), dtype=np.float32)
    relative = _lab_f_inverse(cv2.transform(flat, _LAB_TO_F))
    return linear_to_srgb(cv2.transform(relative, _WHITE_RELATIVE_TO_RGB)).reshape(lab.shape)
