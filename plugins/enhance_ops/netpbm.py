"""Netpbm files (PBM, PGM, PPM: what SANE's ``scanimage`` writes by default).

Pillow parses the header (it calls every kind PPM) but keeps no 16-bit colour; OpenCV
decodes the samples, but scales a plain (ASCII) file's by its maxval only below 256 and a
binary one's never, so a PGM of maxval 4095 (a 12-bit scan) came back sixteen times too
dark. The raster is read here, as stored, and ``codecs`` spreads it over its type's range.
"""
from __future__ import annotations

import re
import warnings

import numpy as np
from PIL import Image

from .errors import CorruptImageError, TruncatedImageError

_COMMENT = re.compile(rb"#[^\r\n]*")


def maxval(im: Image.Image) -> int | None:
    """The header's largest sample value; None for a bitmap (PBM), which has none.

    Pillow reads the two commonest binary kinds with its raw codec, whose arguments are a
    raw mode and hold no maxval: 255, and a grey file's 65535 ("I;16B"), as SANE's
    ``scanimage --depth 16`` writes one."""
    if im.mode == "1":
        return None
    tile = im.tile[0]
    if tile.codec_name in ("ppm", "ppm_plain"):
        return int(tile.args[1])
    return 65535 if tile.args == "I;16B" else 255


def bits(im: Image.Image) -> int:
    return 16 if (maxval(im) or 1) > 255 else 8


def header_cut_off(data: bytes) -> bool:
    """Whether the file ends inside its header: the magic number, width, height and, but for
    a bitmap, maxval, each followed by white space (comments aside)."""
    wanted = 3 if data[1:2] in (b"1", b"4") else 4
    tokens = _COMMENT.sub(b" ", data[:4096]).split()
    complete = len(tokens) > wanted or len(tokens) == wanted and data[-1:].isspace()
    return not complete and len(data) < 4096


def samples(data: bytes, im: Image.Image) -> np.ndarray:
    """The raster as stored, (H, W, C) uint8 or uint16; a bitmap's bits as 0 (black) and 255."""
    width, height = im.size
    channels = len(im.getbands())
    tile, count = im.tile[0], width * height * channels
    if im.mode == "1":
        if tile.codec_name == "ppm_plain":
            ink = _plain(data[tile.offset:], count, bitmap=True)
        else:
            row = -(-width // 8)
            ink = np.unpackbits(_raster(data, tile.offset, row * height, "u1").reshape(height, row), axis=1)[:, :width]
        return ((1 - ink) * 255).astype(np.uint8).reshape(height, width, 1)
    wide = bits(im) == 16
    if tile.codec_name == "ppm_plain":
        values = _plain(data[tile.offset:], count, bitmap=False)
        if values.max(initial=0) > 65535:
            raise CorruptImageError("PPM sample past 65535: the file is damaged")
        stored = values.astype(np.uint16 if wide else np.uint8)
    else:
        stored = _raster(data, tile.offset, count, ">u2" if wide else "u1").astype(np.uint16 if wide else np.uint8)
    return stored.reshape(height, width, channels)


def _raster(data: bytes, offset: int, count: int, dtype: str) -> np.ndarray:
    if len(data) < offset + count * np.dtype(dtype).itemsize:
        raise TruncatedImageError.in_pixels("PPM")
    return np.frombuffer(data, dtype, count, offset)


def _plain(text: bytes, count: int, *, bitmap: bool) -> np.ndarray:
    """A plain raster's numbers (a plain bitmap's digits may run together), parsed by NumPy:
    a list of Python integers took 1.5 GB and a minute for a 10-Mpx plain PPM."""
    text = _COMMENT.sub(b" ", text)
    if bitmap:
        found = np.frombuffer(re.sub(rb"\s", b"", text), np.uint8)[:count] - ord("0")
        bad = bool((found > 1).any())
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # NumPy warns, and stops, at text that is no number
            try:
                found, bad = np.fromstring(text, dtype=np.int64, sep=" ")[:count], False
            except (ValueError, DeprecationWarning):
                found, bad = np.zeros(0, np.int64), True
        bad = bad or bool((found < 0).any())
    if bad:
        raise CorruptImageError("PPM plain raster holds something other than sample values: the file is damaged")
    if found.size < count:
        raise TruncatedImageError.in_pixels("PPM")
    return found
