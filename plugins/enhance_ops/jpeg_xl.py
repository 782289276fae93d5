"""A JPEG XL that holds a JPEG recompressed without loss, read as that JPEG.

cjxl recompresses a JPEG without loss by default (about a fifth smaller, and the JPEG
restorable bit for bit), and an archive may store its JPEG masters so. Such a file carries
the JPEG's reconstruction data in a ``jbrd`` box: it is restored to the JPEG it was, its
EXIF, ICC profile and XMP with it, and read as that JPEG. A JPEG XL encoded as such is
refused by name: libjxl, as imagecodecs binds it, decodes the pixels but gives neither the
ICC profile nor the colour encoding, so their colours could not be told.
"""
from __future__ import annotations

import functools

import imagecodecs

from .errors import CorruptImageError
from .jp2_boxes import boxes

CONTAINER = b"\x00\x00\x00\x0cJXL \r\n\x87\n"
NOTE = "a JPEG XL holding a JPEG recompressed without loss: read as that JPEG, restored bit for bit"


def holds_jpeg(data: bytes) -> bool:
    """Whether ``data`` is a JPEG XL container with a JPEG's reconstruction data."""
    if not data.startswith(CONTAINER):
        return False
    try:
        return any(kind == b"jbrd" for kind, _, _ in boxes(data, 0, len(data)))
    except ValueError:  # a box that declares less than its own header, before any jbrd box
        return False


@functools.lru_cache(maxsize=1)
def restored(data: bytes) -> bytes:
    """The JPEG a ``holds_jpeg`` file was made from, bit for bit. A master's size, its pages and
    its pixels are each read from the same bytes (``codecs``): it is restored once for all
    three (0.3 s for 24 Mpx on the 2-core EPYC VM), and the last one restored is kept."""
    try:
        return imagecodecs.jpegxl_decode_jpeg(data)
    except Exception as exc:  # imagecodecs raises JpegxlError or ValueError, with libjxl's words
        raise CorruptImageError(f"JPEG XL holding a recompressed JPEG cannot be restored to it: {exc}") from None
