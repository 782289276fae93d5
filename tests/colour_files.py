"""Colour data for tests that no library here writes: a CMYK ICC profile, and 16-bit Lab as TIFF stores it.

The profile is a small ICC v2 CMYK output profile (Pillow's ImageCms creates none, and a
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


def _a2b0(points: int) -> bytes:
    """lut16Type: 4 inputs, 3 outputs, ``points`` a side, linear input and output tables."""
    corners = np.array(list(itertools.product(np.linspace(0, 1, points), repeat=4)), float)  # C, M, Y, K; K fastest
    rgb = (1 - corners[:, :3]) * (1 - corners[:, 3:])
    lab = color.rgb2lab(rgb.reshape(1, -1, 3), illuminant="D50").reshape(-1, 3)
    encoded = np.stack([lab[:, 0] / 100 * 0xFF00, (lab[:, 1] + 128) * 256, (lab[:, 2] + 128) * 256], 1)
    grid = np.clip(np.rint(encoded), 0, 65535).astype(">u2").tobytes()
    linear = struct.pack(">HH", 0, 65535)
    return (b"mft2" + bytes(4) + struct.pack(">BBBB", 4, 3, points, 0) + _s15((1, 0, 0, 0, 1, 0, 0, 0, 1))
            + struct.pack(">HH", 2, 2) + linear * 4 + grid + linear * 3)


def cmyk_profile(grid: int = 2) -> bytes:
    tags = [(b"desc", _description("Test CMYK")), (b"wtpt", b"XYZ " + bytes(4) + _s15(_D50)),
            (b"cprt", b"text" + bytes(4) + b"none\0"), (b"A2B0", _a2b0(grid))]
    offset, table, body = 128 + 4 + 12 * len(tags), b"", b""
    for signature, data in tags:
        data += bytes(-len(data) % 4)
        table += signature + struct.pack(">II", offset + len(body), len(data))
        body += data
    header = (struct.pack(">I", offset + len(body)) + b"lcms" + struct.pack(">I", 0x02100000) + b"prtrCMYKLab "
              + bytes(12) + b"acspAPPL" + bytes(20) + struct.pack(">I", 0) + _s15(_D50) + b"lcms" + bytes(44))
    return header + struct.pack(">I", len(tags)) + table + body


def lab16(rgb: np.ndarray, photometric: str) -> np.ndarray:
    """8-bit sRGB as 16-bit Lab (D50, through LittleCMS), stored as TIFF stores ``photometric``."""
    lab = imagecodecs.cms_transform(rgb, imagecodecs.cms_profile("srgb"), imagecodecs.cms_profile("lab4"),
                                    colorspace="rgb", outcolorspace="lab", outdtype=np.float32)
    if photometric == "icclab":  # ICC v2's encoding: L* 100 at 0xFF00, a* and b* offset by 128
        return np.rint(np.dstack([lab[..., 0] / 100 * 0xFF00, (lab[..., 1:] + 128) * 256])).astype(np.uint16)
    signed = np.rint(lab[..., 1:] * 256).astype(np.int16).view(np.uint16)
    return np.dstack([np.rint(lab[..., 0] / 100 * 65535).astype(np.uint16), signed])
