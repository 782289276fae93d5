"""JPEGs of other than 8 bits per sample: 12-bit lossy ones (medicine, microscopy, some
scientific and archival cameras) and lossless ones of 2 to 16 bits, grey or colour.

Pillow's JPEG reader takes 8-bit frames only and OpenCV decodes none of these, but
libjpeg-turbo 3, in imagecodecs, decodes both. Pillow's refusal is of the precision alone,
so the header is opened from a copy of it whose frame header says 8 bits: the application
segments (EXIF, ICC profile, XMP, JFIF density, Adobe) are read as any JPEG's. The image
holds no pixels (``load`` fails), so nothing can decode it as 8-bit; ``samples`` reads them.
"""
from __future__ import annotations

import io

import imagecodecs
import numpy as np
from PIL import JpegImagePlugin

from .errors import CorruptImageError, UnsupportedImageError
from .jpeg_segments import first_scan, frame

_COMPONENTS = (1, 3)  # grey, and colour as RGB or YCbCr; libjpeg converts no deep CMYK
# The processes libjpeg decodes at these precisions: extended and progressive (12 bits), and
# lossless (2 to 16), each Huffman- or arithmetic-coded; not the hierarchical ones
_TWELVE_BIT, _LOSSLESS = {0xC1, 0xC2, 0xC9, 0xCA}, {0xC3, 0xCB}


class DeepJpeg(JpegImagePlugin.JpegImageFile):
    """A JPEG's header, with ``precision`` the bits per sample its frame header declares."""

    precision: int

    def load(self) -> None:  # type: ignore[override]
        raise OSError(f"a JPEG of {self.precision}-bit samples is read by deep_jpeg.samples, not by Pillow")


def readable(data: bytes) -> bool:
    """A JPEG of a layout ``samples`` reads and Pillow does not."""
    found = frame(data)
    if found is None or found.components not in _COMPONENTS:
        return False
    if found.process in _LOSSLESS:
        return 2 <= found.precision <= 16 and found.precision != 8
    return found.process in _TWELVE_BIT and found.precision == 12


def open_header(data: bytes) -> DeepJpeg:
    """The header of a JPEG that is ``readable``; raises as Pillow does where it cannot be read."""
    found = frame(data)
    if found is None:
        raise ValueError("no frame header")
    scan = first_scan(data)
    if scan is None:
        raise ValueError("no scan")
    # The header up to the scan's first byte, which is all Pillow reads in opening a JPEG
    scan_header = scan + 2 + int.from_bytes(data[scan + 2 : scan + 4], "big")
    header = bytearray(data[:scan_header])
    header[found.start + 4] = 8
    im = DeepJpeg(io.BytesIO(bytes(header) + b"\xff\xd9"))
    im.precision = found.precision
    return im


def samples(data: bytes) -> np.ndarray:
    """The samples, (height, width, channels), uint8 up to 8 bits and uint16 past that, as
    stored (a 12-bit sample's top is 4095); colour as RGB."""
    try:
        raw = imagecodecs.jpeg8_decode(data)
    except imagecodecs.Jpeg8Error as exc:
        if "Unsupported color conversion" in str(exc):  # lossless YCbCr: libjpeg converts nothing losslessly
            raise UnsupportedImageError(f"lossless JPEG in this colour space is not processed (libjpeg: {exc}); "
                                        "convert it to a 16-bit TIFF") from None
        raise CorruptImageError(f"JPEG pixel data cannot be decoded (libjpeg: {exc})") from None
    return raw[:, :, np.newaxis] if raw.ndim == 2 else raw
