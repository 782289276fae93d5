"""16-bit CMYK and CIELab samples to 16-bit sRGB.

Pillow's CMYK and LAB modes are 8-bit, so a print shop's 16-bit CMYK master or a museum's
16-bit Lab one came out 8-bit, or was refused. LittleCMS, through imagecodecs, converts at
16 bits through the master's own profile (or a D50 Lab one, the white Photoshop and the
ICC write Lab against), a band of rows at a time so that no float copy of a large scan is
made whole.
"""
from __future__ import annotations

import imagecodecs
import numpy as np
import tifffile

from .chain import strips

_ICCLAB_L_TOP = 0xFF00  # ICCLab (TIFF photometric 9) keeps ICC v2's 16-bit Lab: L* 100 at 0xFF00


def cmyk_to_srgb(cmyk: np.ndarray, profile: bytes | None, srgb_icc: bytes) -> tuple[np.ndarray, str | None]:
    """(H, W, 4) uint16 ink through ``profile`` to (H, W, 3) uint16 sRGB, and LittleCMS's
    words where it will not use the profile. Without one, (1 - C)(1 - K) and so on: Pillow's
    naive conversion, at 16 bits (a refused profile had cost the master its depth too)."""
    rgb = np.empty((*cmyk.shape[:2], 3), np.uint16)
    for r0, r1 in strips.bands(*cmyk.shape[:2]):
        if profile is None:  # (65535 - C)(65535 - K) fits 32 bits
            band = cmyk[r0:r1].astype(np.uint32)
            rgb[r0:r1] = ((65535 - band[..., :3]) * (65535 - band[..., 3:]) + 32767) // 65535
            continue
        try:
            rgb[r0:r1] = imagecodecs.cms_transform(np.ascontiguousarray(cmyk[r0:r1]), profile, srgb_icc,
                                                   colorspace="cmyk", outcolorspace="rgb", outdtype=np.uint16)
        except imagecodecs.CmsError as exc:
            return cmyk_to_srgb(cmyk, None, srgb_icc)[0], str(exc)
    return rgb, None


def lab_to_srgb(samples: np.ndarray, photometric: int, profile: bytes | None,
                srgb_icc: bytes) -> tuple[np.ndarray, bool]:
    """(H, W, 3) uint16 Lab as TIFF stores it (CIELab: L* over 0-65535, a* and b* signed, in
    256ths; ICCLab: ICC v2's encoding) to (H, W, 3) uint16 sRGB, through ``profile``, or
    through a D50 Lab one where there is none or LittleCMS will not use it; and whether
    ``profile`` was used."""
    if profile is not None:
        try:
            return _lab_through(samples, photometric, profile, srgb_icc), True
        except imagecodecs.CmsError:
            pass
    return _lab_through(samples, photometric, imagecodecs.cms_profile("lab4"), srgb_icc), False


def _lab_through(samples: np.ndarray, photometric: int, profile: bytes, srgb_icc: bytes) -> np.ndarray:
    rgb = np.empty(samples.shape, np.uint16)
    for r0, r1 in strips.bands(*samples.shape[:2]):
        rgb[r0:r1] = imagecodecs.cms_transform(_lab_values(samples[r0:r1], photometric), profile, srgb_icc,
                                               colorspace="lab", outcolorspace="rgb", outdtype=np.uint16)
    return rgb


def _lab_values(band: np.ndarray, photometric: int) -> np.ndarray:
    """L* in 0-100, a* and b* in about -128 to 128, as float32."""
    lab = np.empty(band.shape, np.float32)
    if photometric == tifffile.PHOTOMETRIC.ICCLAB:
        lab[..., 0] = band[..., 0] * np.float32(100 / _ICCLAB_L_TOP)
        lab[..., 1:] = band[..., 1:] / np.float32(256) - 128
    else:
        lab[..., 0] = band[..., 0] * np.float32(100 / 65535)
        lab[..., 1:] = np.ascontiguousarray(band[..., 1:]).view(np.int16) / np.float32(256)
    return lab
