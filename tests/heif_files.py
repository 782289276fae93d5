"""Real HEIC files made by x265 (pillow-heif's encoder) from a real photograph, for the HEIF reader's tests; and
property boxes no encoder here writes (a clean aperture) added to a HEIF file, AVIF or HEIC."""
from __future__ import annotations

import io
import struct

import numpy as np
import piexif
import pillow_heif
from PIL import Image
from skimage import data as skdata

from enhance_ops import jp2_boxes
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



def clean_aperture(width: int, height: int, across: tuple[int, int] = (0, 1), down: tuple[int, int] = (0, 1)) -> bytes:
    """A ``clap`` box: ``width`` × ``height`` kept, its centre ``across`` and ``down`` (fractions)
    off the coded image's."""
    return _box(b"clap", struct.pack(">IIIIiIiI", width, 1, height, 1, *across, *down))


def with_property(data: bytes, box: bytes, ahead: bool = True, item: int | None = None) -> bytes:
    """The HEIF file with ``box`` added to its property container and associated, as essential
    and ahead of the others (else after them), with ``item`` (its primary item where None); the
    media data's offsets moved to match.
    No encoder here writes a clean aperture, so a test's file gets one this way."""
    meta, meta_body, meta_end = _child(data, 0, len(data), b"meta")
    primary = struct.unpack_from(">H", data, _child(data, meta_body + 4, meta_end, b"pitm")[1] + 4)[0]
    item = primary if item is None else item
    _, iprp_body, iprp_end = _child(data, meta_body + 4, meta_end, b"iprp")
    _, ipco_body, ipco_end = _child(data, iprp_body, iprp_end, b"ipco")
    _, ipma_body, ipma_end = _child(data, iprp_body, iprp_end, b"ipma")
    index = 1 + sum(1 for _ in jp2_boxes.boxes(data, ipco_body, ipco_end))
    rebuilt = {b"ipco": _box(b"ipco", data[ipco_body:ipco_end] + box),
               b"ipma": _box(b"ipma", _associated(data[ipma_body:ipma_end], item, index, ahead))}
    iprp = _box(b"iprp", b"".join(rebuilt.get(kind, data[start:end]) for kind, start, end in
                                  _spans(data, iprp_body, iprp_end)))
    inner = b"".join(iprp if kind == b"iprp" else data[start:end] for kind, start, end in
                     _spans(data, meta_body + 4, meta_end))
    new_meta = bytearray(_box(b"meta", data[meta_body:meta_body + 4] + inner))
    _moved(new_meta, len(new_meta) - (meta_end - meta), meta_end)
    return data[:meta] + bytes(new_meta) + data[meta_end:]


def _box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(body), kind) + body


def _spans(data: bytes, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """Each box's type and its whole extent, header included (files here use 32-bit sizes)."""
    return [(kind, body - 8, body_end) for kind, body, body_end in jp2_boxes.boxes(data, start, end)]


def _child(data: bytes, start: int, end: int, kind: bytes) -> tuple[int, int, int]:
    """The box of type ``kind`` among those from ``start``: its start, body start and end."""
    return next((body - 8, body, body_end) for found, body, body_end in jp2_boxes.boxes(data, start, end)
                if found == kind)


def _associated(ipma: bytes, item: int, index: int, ahead: bool) -> bytes:
    """An item property association body with property ``index`` given, essential, to ``item``."""
    version, wide = ipma[0], ipma[3] & 1
    out, at = bytearray(ipma[:8]), 8
    for _ in range(struct.unpack_from(">I", ipma, 4)[0]):
        item_size = 2 if version < 1 else 4
        found, count = int.from_bytes(ipma[at:at + item_size], "big"), ipma[at + item_size]
        entries = ipma[at + item_size + 1:at + item_size + 1 + count * (1 + wide)]
        at += item_size + 1 + count * (1 + wide)
        if found == item:
            added = (0x8000 | index).to_bytes(2, "big") if wide else bytes([0x80 | index])
            entries = added + entries if ahead else entries + added
            count += 1
        out += found.to_bytes(item_size, "big") + bytes([count]) + entries
    return bytes(out)


def _moved(meta: bytearray, by: int, past: int) -> None:
    """The item locations' file offsets at or past ``past`` moved ``by`` bytes, in place."""
    _, iloc, _ = _child(bytes(meta), 12, len(meta), b"iloc")
    version, at = meta[iloc], iloc + 4
    offset_size, length_size, base_size = meta[at] >> 4, meta[at] & 15, meta[at + 1] >> 4
    index_size = meta[at + 1] & 15 if version in (1, 2) else 0
    count_size = 2 if version < 2 else 4
    count, at = int.from_bytes(meta[at + 2:at + 2 + count_size], "big"), at + 2 + count_size

    def move(where: int, size: int) -> None:
        value = int.from_bytes(meta[where:where + size], "big")
        if size and value >= past:
            meta[where:where + size] = (value + by).to_bytes(size, "big")

    for _ in range(count):
        at += count_size
        in_file = True
        if version in (1, 2):
            in_file, at = int.from_bytes(meta[at:at + 2], "big") & 15 == 0, at + 2
        base, at = at, at + 2 + base_size  # the data reference index, then the base offset
        base += 2
        extents, at = int.from_bytes(meta[at:at + 2], "big"), at + 2
        if in_file:
            move(base, base_size)
        for _ in range(extents):
            if in_file:
                move(at + index_size, offset_size)
            at += index_size + offset_size + length_size


def thumbnailed() -> bytes:
    """The photograph with a 32-px thumbnail beside it."""
    heif = pillow_heif.from_pillow(Image.fromarray(PHOTO))
    heif.info["thumbnails"] = [32]
    return _saved(heif, quality=90)


def with_companion(kind: bytes) -> bytes:
    """The photograph with a second image beside it, as a phone writes a gain map, depth map or
    matte: the thumbnail becomes an auxiliary image of type ``kind`` (a URN)."""
    aux = thumbnailed().replace(b"thmb", b"auxl", 1)  # the thumbnail reference, now an auxiliary one
    assert b"auxl" in aux
    return with_property(aux, _box(b"auxC", bytes(4) + kind + b"\0"), item=2)
