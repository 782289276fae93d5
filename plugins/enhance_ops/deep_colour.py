"""CMYK and CIELab samples to sRGB, at their own depth.

Pillow's CMYK and LAB modes are 8-bit, so a print shop's 16-bit CMYK master or a museum's
16-bit Lab one came out 8-bit, or was refused. LittleCMS, through imagecodecs, converts at
16 bits through the master's own profile (or a D50 Lab one, the white Photoshop and the
ICC write Lab against); 8-bit CMYK goes the same way. The rows are split among the strip
lanes (LittleCMS leaves Python's lock while it works): a press profile took 0.8–1.5 s of
a 20-megapixel CMYK scan's decoding on one core (docs/benchmarks.md). CMYK goes from its
integers to sRGB's in one call per lane, as building a press profile's transform costs
about 40 ms; Lab, whose values LittleCMS takes as floats, a band of rows at a time, so
that no float copy of a large scan is made whole.
"""
from __future__ import annotations

import functools

import imagecodecs
import numpy as np
import tifffile

from .chain import strips

_ICCLAB_L_TOP = 0xFF00  # ICCLab (TIFF photometric 9) keeps ICC v2's 16-bit Lab: L* 100 at 0xFF00


def cmyk_to_srgb(cmyk: np.ndarray, profile: bytes | None, srgb_icc: bytes) -> tuple[np.ndarray, str | None]:
    """(H, W, 4) uint8 or uint16 ink through ``profile`` to (H, W, 3) sRGB of the same type,
    and LittleCMS's words where it will not use the profile. Without one, (1 - C)(1 - K) and
    so on: Pillow's naive conversion, at the ink's depth (a refused profile had cost a 16-bit
    master its depth too)."""
    cmyk = np.ascontiguousarray(cmyk)
    height, width = cmyk.shape[:2]
    rgb, refused = np.empty((height, width, 3), cmyk.dtype), None
    if profile is not None:
        per_lane = max(1, -(-height // strips.lanes()))
        try:
            strips.in_lanes([functools.partial(_cmyk_through, cmyk, rgb, r0, r1, profile, srgb_icc)
                             for r0, r1 in strips.spans(height, per_lane)])
            return rgb, None
        except imagecodecs.CmsError as exc:
            refused = str(exc)
    strips.map_bands(height, width, functools.partial(_cmyk_naive, cmyk, rgb))
    return rgb, refused


def _cmyk_through(cmyk: np.ndarray, rgb: np.ndarray, r0: int, r1: int, profile: bytes, srgb_icc: bytes) -> None:
    imagecodecs.cms_transform(cmyk[r0:r1], profile, srgb_icc, colorspace="cmyk", outcolorspace="rgb", out=rgb[r0:r1])


def _cmyk_naive(cmyk: np.ndarray, rgb: np.ndarray, r0: int, r1: int) -> None:
    top = np.iinfo(cmyk.dtype).max  # (top - C)(top - K) fits 32 bits
    band = cmyk[r0:r1].astype(np.uint32)
    rgb[r0:r1] = ((top - band[..., :3]) * (top - band[..., 3:]) + top // 2) // top


def lab_to_srgb(samples: np.ndarray, photometric: int, profile: bytes | None,
                srgb_icc: bytes) -> tuple[np.ndarray, bool]:
    """(H, W, 3) uint16 or uint8 Lab as TIFF stores it (CIELab: L* over the type's range, a*
    and b* signed, at 16 bits in 256ths; ICCLab: ICC v2's encoding, a* and b* offset by 128)
    to (H, W, 3) sRGB of the same type, through ``profile``, or through a D50 Lab one where
    there is none or LittleCMS will not use it; and whether ``profile`` was used."""
    if profile is not None:
        try:
            return _lab_through(samples, photometric, profile, srgb_icc), True
        except imagecodecs.CmsError:
            pass
    return _lab_through(samples, photometric, imagecodecs.cms_profile("lab4"), srgb_icc), False


def _lab_through(samples: np.ndarray, photometric: int, profile: bytes, srgb_icc: bytes) -> np.ndarray:
    rgb = np.empty(samples.shape, samples.dtype)

    def band(r0: int, r1: int) -> None:
        imagecodecs.cms_transform(_lab_values(samples[r0:r1], photometric), profile, srgb_icc,
                                  colorspace="lab", outcolorspace="rgb", out=rgb[r0:r1])

    strips.map_bands(*samples.shape[:2], band)
    return rgb


def _lab_values(band: np.ndarray, photometric: int) -> np.ndarray:
    """L* in 0-100, a* and b* in about -128 to 128, as float32."""
    lab, deep = np.empty(band.shape, np.float32), band.dtype == np.uint16
    step = np.float32(256 if deep else 1)  # of a* and b*
    if photometric == tifffile.PHOTOMETRIC.ICCLAB:
        lab[..., 0] = band[..., 0] * np.float32(100 / (_ICCLAB_L_TOP if deep else 255))
        lab[..., 1:] = band[..., 1:] / step - 128
    else:
        lab[..., 0] = band[..., 0] * np.float32(100 / np.iinfo(band.dtype).max)
        lab[..., 1:] = np.ascontiguousarray(band[..., 1:]).view(np.int16 if deep else np.int8) / step
    return lab
