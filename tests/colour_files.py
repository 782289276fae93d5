"""Colour data for tests that no library here writes: ICC profiles built on lookup tables
(a press's CMYK, a scanner's RGB), and 16-bit Lab as TIFF stores it.

The CMYK profile is a small ICC v2 output profile (Pillow's ImageCms creates none, and a
print shop's own cannot be shipped). Its A2B0 is a grid of 2 points a side (or ``grid``)
from CMYK to the Lab of (1 - C)(1 - K), (1 - M)(1 - K), (1 - Y)(1 - K) as sRGB, so
LittleCMS interpolates between the sixteen corners as it would in a real press profile's
finer grid; a grid of 17 is as large and as slow to build a transform from as a press
profile's (17⁴ points, about 0.5 MB)."""
from __future__ import annotations

import itertools
import struct

import imagecodecs
import numpy as np
from skimage import color

_D50 = (0.9642, 1.0, 0.8249)


def _s15(values: tuple[float, ...]) -> bytes:
    return b"".join(struct.pack(">i", round(v * 65536)) for v in values)


def _description(text: str) -> bytes:  # textDescriptionType: ASCII, then empty Unicode and ScriptCode parts
    ascii_ = text.encode() + b"\0"
    return b"desc" + bytes(4) + struct.pack(">I", len(ascii_)) + ascii_ + bytes(8) + bytes(3 + 67)


def _lut16(inputs: int, lab: np.ndarray, points: int) -> bytes:
    """lut16Type: ``inputs`` channels to Lab (a grid of ``points`` a side, the last input
    fastest), linear input and output tables."""
    encoded = np.stack([lab[:, 0] / 100 * 0xFF00, (lab[:, 1] + 128) * 256, (lab[:, 2] + 128) * 256], 1)
    grid = np.clip(np.rint(encoded), 0, 65535).astype(">u2").tobytes()
    linear = struct.pack(">HH", 0, 65535)
    return (b"mft2" + bytes(4) + struct.pack(">BBBB", inputs, 3, points, 0) + _s15((1, 0, 0, 0, 1, 0, 0, 0, 1))
            + struct.pack(">HH", 2, 2) + linear * inputs + grid + linear * 3)


def _corners(inputs: int, points: int) -> np.ndarray:
    return np.array(list(itertools.product(np.linspace(0, 1, points), repeat=inputs)), float)


def _lut_profile(kind: bytes, name: str, a2b0: bytes) -> bytes:
    """An ICC v2 profile of ``kind`` (device class, colour space and connection space) whose
    A2B0 is ``a2b0``."""
    tags = [(b"desc", _description(name)), (b"wtpt", b"XYZ " + bytes(4) + _s15(_D50)),
            (b"cprt", b"text" + bytes(4) + b"none\0"), (b"A2B0", a2b0)]
    offset, table, body = 128 + 4 + 12 * len(tags), b"", b""
    for signature, data in tags:
        data += bytes(-len(data) % 4)
        table += signature + struct.pack(">II", offset + len(body), len(data))
        body += data
    header = (struct.pack(">I", offset + len(body)) + b"lcms" + struct.pack(">I", 0x02100000) + kind
              + bytes(12) + b"acspAPPL" + bytes(20) + struct.pack(">I", 0) + _s15(_D50) + b"lcms" + bytes(44))
    return header + struct.pack(">I", len(tags)) + table + body


def cmyk_profile(grid: int = 2) -> bytes:
    corners = _corners(4, grid)  # C, M, Y, K; K fastest
    rgb = (1 - corners[:, :3]) * (1 - corners[:, 3:])
    lab = color.rgb2lab(rgb.reshape(1, -1, 3), illuminant="D50").reshape(-1, 3)
    return _lut_profile(b"prtrCMYKLab ", "Test CMYK", _lut16(4, lab, grid))


def scanner_profile(points: int = 33, describes: str = "srgb") -> bytes:
    """An RGB input profile built on lookup tables, as a scanner's own made against a target
    is: its A2B0 a grid from ``describes`` (sRGB, or "adobergb") to Lab through LittleCMS,
    so it describes that space to within the grid's interpolation."""
    corners = _corners(3, points).astype(np.float32)
    lab = imagecodecs.cms_transform(corners.reshape(1, -1, 3), imagecodecs.cms_profile(describes),
                                    imagecodecs.cms_profile("lab4"), colorspace="rgb", outcolorspace="lab",
                                    outdtype=np.float32).reshape(-1, 3)
    return _lut_profile(b"scnrRGB Lab ", "Test scanner RGB", _lut16(3, lab, points))


def lab16(rgb: np.ndarray, photometric: str) -> np.ndarray:
    """8-bit sRGB as 16-bit Lab (D50, through LittleCMS), stored as TIFF stores ``photometric``."""
    lab = imagecodecs.cms_transform(rgb, imagecodecs.cms_profile("srgb"), imagecodecs.cms_profile("lab4"),
                                    colorspace="rgb", outcolorspace="lab", outdtype=np.float32)
    if photometric == "icclab":  # ICC v2's encoding: L* 100 at 0xFF00, a* and b* offset by 128
        return np.rint(np.dstack([lab[..., 0] / 100 * 0xFF00, (lab[..., 1:] + 128) * 256])).astype(np.uint16)
    signed = np.rint(lab[..., 1:] * 256).astype(np.int16).view(np.uint16)
    return np.dstack([np.rint(lab[..., 0] / 100 * 65535).astype(np.uint16), signed])
