"""JPEG 2000 test files written box by box: no encoder at hand writes a JP2's ICC profile,
resolution, XMP, EXIF or IPTC, nor a palette or sYCC layout, so the codestream comes from
OpenJPEG (through imagecodecs) and the boxes around it are built here, per ISO/IEC 15444-1."""
from __future__ import annotations

import struct

import imagecodecs
import numpy as np

SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
XMP_UUID = bytes.fromhex("be7acfcb97a942e89c71999491e3afac")
EXIF_UUID = b"JpgTiffExif->JP2"
IPTC_UUID = bytes.fromhex("33c7a4d2b81d4723a0baf1a3e097ad38")


def box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", 8 + len(body)) + kind + body


def uuid(which: bytes, payload: bytes) -> bytes:
    return box(b"uuid", which + payload)


def capture_resolution(dpi: tuple[float, float]) -> bytes:
    """A ``res `` box holding ``resc``: pixels per metre as numerator/denominator × 10^exponent, vertical first."""
    h, v = (round(d * 50) for d in dpi)  # d / 0.0254 = d · 50 / 127 · 10²
    return box(b"res ", box(b"resc", struct.pack(">HHHHbb", v, 127, h, 127, 2, 2)))


def codestream(samples: np.ndarray, bits: int | None = None, **options: object) -> bytes:
    """A lossless J2K codestream of ``samples`` (H×W grey or H×W×C, unsigned or signed)."""
    return imagecodecs.jpeg2k_encode(samples, level=0, codecformat="j2k", bitspersample=bits, **options)


def jp2(
    samples: np.ndarray,
    *,
    bits: int | None = None,
    icc: bytes | None = None,
    colour: int | None = None,
    header: bytes = b"",
    after: bytes = b"",
    stream: bytes | None = None,
    **options: object,
) -> bytes:
    """A JP2 file: signature, file type, header (size, colour: an ICC profile or the enumerated
    space ``colour``, then ``header``'s boxes), ``after``'s boxes, then the codestream."""
    height, width = samples.shape[:2]
    count = 1 if samples.ndim == 2 else samples.shape[2]
    depth = bits or samples.dtype.itemsize * 8
    ihdr = box(b"ihdr", struct.pack(">IIHBBBB", height, width, count, depth - 1, 7, 0, 0))
    if icc is not None:
        colr = box(b"colr", bytes([2, 0, 0]) + icc)
    else:
        colr = box(b"colr", struct.pack(">BBBI", 1, 0, 0, colour or (17 if count < 3 else 16)))
    return (SIGNATURE + box(b"ftyp", b"jp2 \x00\x00\x00\x00jp2 ") + box(b"jp2h", ihdr + colr + header)
            + after + box(b"jp2c", stream if stream is not None else codestream(samples, bits, **options)))


def palette_jp2(indices: np.ndarray, palette: np.ndarray) -> bytes:
    """One 8-bit component of indices into an RGB ``palette`` (pclr and cmap boxes)."""
    entries, columns = palette.shape
    depths = bytes([7] * columns)  # 8 bits per palette column
    pclr = box(b"pclr", struct.pack(">HB", entries, columns) + depths + palette.astype(np.uint8).tobytes())
    cmap = box(b"cmap", b"".join(struct.pack(">HBB", 0, 1, column) for column in range(columns)))
    return jp2(indices, colour=16, header=pclr + cmap)


def sycc(rgb: np.ndarray) -> np.ndarray:
    """8-bit RGB as sYCC (full-range BT.601 YCbCr), the samples of an sYCC JP2."""
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = -0.168736 * r - 0.331264 * g + 0.5 * b + 128
    cr = 0.5 * r - 0.418688 * g - 0.081312 * b + 128
    return np.clip(np.dstack([y, cb, cr]).round(), 0, 255).astype(np.uint8)
