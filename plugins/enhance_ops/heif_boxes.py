"""What a HEIF file's boxes (ISO/IEC 23008-12: an AVIF's, a HEIC's) say that its decoders do not.

Pillow reads an AVIF's profile, EXIF and XMP but decodes its pixels at 8 bits, whatever the
file holds; imagecodecs decodes them at the file's own depth (10 or 12 bits in 16-bit
samples, unscaled) and reads none of its metadata. Neither says which colour space an nclx
colour box names. Those are read here from the primary item's properties. For HEIC, which
pi-heif reads with its depth and code points, only whether the file is cut short.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from .cicp import CodePoints
from .jp2_boxes import boxes

_CONTAINERS = {b"meta": 4, b"iprp": 0}  # boxes read for their children, and the bytes before them (FullBox)


@dataclass(frozen=True)
class Primary:
    bits: int | None = None  # per sample, from the pixel information or the AV1 configuration
    grey: bool = False  # the AV1 configuration says monochrome
    colour: CodePoints | None = None  # an nclx colour box's code points
    cut_off: bool = False  # a box runs past the end of the file


def read(data: bytes) -> Primary:
    """The primary image's depth, greyness and nclx code points; a file whose boxes cannot be
    walked reads as saying none of them (the decoders then say what is wrong)."""
    try:
        found = _walk(data, 0, len(data), {})
    except (ValueError, IndexError, struct.error):
        return Primary()
    if found.get("cut_off"):
        return Primary(cut_off=True)
    properties = found.get("ipco", [])
    own = [properties[i - 1] for i in found.get("ipma", {}).get(found.get("pitm"), []) if 0 < i <= len(properties)]
    own = own or properties  # no associations read: every property is the primary image's
    depth = next((_pixi_bits(body) for kind, body in own if kind == b"pixi"), None)
    av1 = next((body for kind, body in own if kind == b"av1C"), None) or \
        next((body for kind, body in properties if kind == b"av1C"), None)  # a grid's tiles carry it
    if depth is None and av1 and len(av1) >= 3:
        depth = 12 if av1[2] & 0x20 else 10 if av1[2] & 0x40 else 8  # twelve_bit, high_bitdepth
    grey = bool(av1 and len(av1) >= 3 and av1[2] & 0x10)
    nclx = next((body for kind, body in own if kind == b"colr" and body[:4] == b"nclx" and len(body) >= 11), None)
    colour = nclx and CodePoints(*struct.unpack_from(">HHH", nclx, 4), bool(nclx[10] & 0x80))
    return Primary(depth, grey, colour)


def _walk(data: bytes, start: int, end: int, found: dict[str, Any]) -> dict[str, Any]:
    for kind, body, body_end in boxes(data, start, end):
        if body_end > end:
            found["cut_off"] = True
            return found
        if kind in _CONTAINERS:
            _walk(data, body + _CONTAINERS[kind], body_end, found)
        elif kind == b"pitm":
            found["pitm"] = struct.unpack_from(">H" if data[body] == 0 else ">I", data, body + 4)[0]
        elif kind == b"ipco":
            found["ipco"] = [(inner, data[inner_start:inner_end]) for inner, inner_start, inner_end
                             in boxes(data, body, body_end)]
        elif kind == b"ipma":
            found["ipma"] = _associations(data[body:body_end])
    return found


def _associations(body: bytes) -> dict[int, list[int]]:
    """Item → the (1-based) indices of its properties in the property container."""
    version, flags = body[0], int.from_bytes(body[1:4], "big")
    (count,) = struct.unpack_from(">I", body, 4)
    at, found = 8, {}
    for _ in range(count):
        item_format = ">H" if version < 1 else ">I"
        (item,) = struct.unpack_from(item_format, body, at)
        at += struct.calcsize(item_format)
        n = body[at]
        at += 1
        wide = flags & 1
        found[item] = [(int.from_bytes(body[at + i * (1 + wide):at + (i + 1) * (1 + wide)], "big")
                        & (0x7FFF if wide else 0x7F)) for i in range(n)]
        at += n * (1 + wide)
    return found


def _pixi_bits(body: bytes) -> int | None:
    """The deepest channel of a pixel information property (a FullBox: four bytes first)."""
    return max(body[5:5 + body[4]], default=None) if len(body) > 4 else None
