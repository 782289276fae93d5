"""Real HEIC files made by x265 (pillow-heif's encoder) from a real photograph, for the HEIF reader's tests."""
from __future__ import annotations

import io

import numpy as np
import piexif
import pillow_heif
from PIL import Image
from skimage import data as skdata

from enhance_ops.chain import icc

PHOTO = np.ascontiguousarray(skdata.astronaut()[40:104, 160:256])  # 96 × 64
EXIF = piexif.dump({"0th": {piexif.ImageIFD.Make: b"Apple", piexif.ImageIFD.Model: b"iPhone 12",
                            piexif.ImageIFD.Orientation: 6},
                    "Exif": {piexif.ExifIFD.DateTimeOriginal: b"2021:06:05 14:03:11"}})
XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
       b'<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title><rdf:Alt>'
       b'<rdf:li xml:lang="x-default">Moon suit, donated 2021</rdf:li></rdf:Alt></dc:title></rdf:Description>'
       b"</rdf:RDF></x:xmpmeta>")
TEN_BIT = PHOTO.astype(np.uint16) << 2 | PHOTO >> 6


def _saved(heif: pillow_heif.HeifFile, **options: object) -> bytes:
    buffer = io.BytesIO()
    heif.save(buffer, **options)
    return buffer.getvalue()


def phone() -> bytes:
    """As a phone stores a photograph: 8-bit 4:2:0, a Display P3 profile, EXIF and XMP, and
    turned by its rotation box (the EXIF's orientation 6, which the encoder writes as one)."""
    return _saved(pillow_heif.from_pillow(Image.fromarray(PHOTO)), quality=90, exif=EXIF, xmp=XMP,
                  icc_profile=icc.build_profile(icc.SPACES["Display P3"]))


def ten_bit(primaries: int, transfer: int, matrix: int) -> bytes:
    """10-bit 4:4:4, lossless, its colour told by an nclx box's code points."""
    heif = pillow_heif.from_bytes(mode="RGB;16", size=(96, 64), data=(TEN_BIT << 6).tobytes())  # in the high bits
    return _saved(heif, quality=-1, chroma=444, color_primaries=primaries, transfer_characteristics=transfer,
                  matrix_coefficients=matrix, full_range_flag=1)


def burst(primary: int = 0) -> bytes:
    """Two top-level images, the photograph and then it upside down, ``primary`` the primary one."""
    heif = pillow_heif.from_pillow(Image.fromarray(PHOTO))
    heif.add_from_pillow(Image.fromarray(PHOTO[::-1]))
    return _saved(heif, quality=90, primary_index=primary)
