"""What a HEIF file's boxes (ISO/IEC 23008-12: an AVIF's, a HEIC's) say that its decoders do not.

Pillow reads an AVIF's profile, EXIF and XMP but decodes its pixels at 8 bits, whatever the
file holds; imagecodecs decodes them at the file's own depth (10 or 12 bits in 16-bit
samples, unscaled) and reads none of its metadata. Neither says which colour space an nclx
colour box names, and neither cuts the image to its clean aperture. Those are read here from
the primary item's properties. For HEIC, which libheif reads with its depth and code points
and cuts, whether the file is cut short. For both, the auxiliary images beside the primary
one (gain maps, depth maps, mattes), which the derivative leaves out.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from . import orientation
from .cicp import CodePoints
from .jp2_boxes import boxes

_CONTAINERS = {b"meta": 4, b"iprp": 0}  # boxes read for their children, and the bytes before them (FullBox)


@dataclass(frozen=True)
class CleanAperture:
    """A ``clap`` property: the part of the coded image meant to be shown, by its size and its
    centre's offset from the coded image's centre (ISO/IEC 14496-12, 12.1.4)."""

    width: Fraction
    height: Fraction
    across: Fraction
    down: Fraction
    before_turning: bool  # associated ahead of any rotation or mirroring, as MIAF requires

    def rect(self, width: int, height: int) -> tuple[int, int, int, int] | None:
        """Left, top, width and height in the coded image, as libheif crops it; None where the
        aperture is not whole pixels inside the image."""
        left = self.across + Fraction(width - 1, 2) - (self.width - 1) / 2
        top = self.down + Fraction(height - 1, 2) - (self.height - 1) / 2
        edges = (left, top, self.width, self.height)
        if any(edge.denominator != 1 for edge in edges) or left < 0 or top < 0 or self.width < 1 or \
                self.height < 1 or left + self.width > width or top + self.height > height:
            return None
        return int(left), int(top), int(self.width), int(self.height)


@dataclass(frozen=True)
class Companion:
    """An auxiliary image of the primary one other than its alpha: a gain map, a depth map, a matte."""

    kind: str  # its auxC type, a URN; or GAIN_MAP, an ISO 21496-1 gain map (a ``tmap`` item)
    size: tuple[int, int] | None  # (width, height) by its ispe property


@dataclass(frozen=True)
class Primary:
    bits: int | None = None  # per sample, from the pixel information or the AV1 configuration
    grey: bool = False  # the AV1 configuration says monochrome
    colour: CodePoints | None = None  # an nclx colour box's code points
    cut_off: bool = False  # a box runs past the end of the file
    aperture: CleanAperture | None = None  # a clean aperture to crop to
    companions: tuple[Companion, ...] = ()
    turn: int = 1  # its rotation and mirroring, as an EXIF orientation (``orientation.of_boxes``)


def read(data: bytes) -> Primary:
    """The primary image's depth, greyness, nclx code points, clean aperture, companions and
    rotation and mirroring; a file whose boxes cannot be walked reads as saying none of them
    (the decoders then say what is wrong)."""
    try:
        found = _walk(data, 0, len(data), {})
    except (ValueError, IndexError, struct.error):
        return Primary()
    if found.get("cut_off"):
        return Primary(cut_off=True)
    properties = found.get("ipco", [])
    own = _properties_of(found.get("pitm"), found) or properties  # no associations read: every one is the primary's
    depth = next((_pixi_bits(body) for kind, body in own if kind == b"pixi"), None)
    av1 = next((body for kind, body in own if kind == b"av1C"), None) or \
        next((body for kind, body in properties if kind == b"av1C"), None)  # a grid's tiles carry it
    if depth is None and av1 and len(av1) >= 3:
        depth = 12 if av1[2] & 0x20 else 10 if av1[2] & 0x40 else 8  # twelve_bit, high_bitdepth
    grey = bool(av1 and len(av1) >= 3 and av1[2] & 0x10)
    nclx = next((body for kind, body in own if kind == b"colr" and body[:4] == b"nclx" and len(body) >= 11), None)
    colour = nclx and CodePoints(*struct.unpack_from(">HHH", nclx, 4), bool(nclx[10] & 0x80))
    return Primary(depth, grey, colour, aperture=_aperture(own), companions=_companions(found),
                   turn=orientation.of_boxes(own))


_ALPHA = {"urn:mpeg:mpegB:cicp:systems:auxiliary:alpha", "urn:mpeg:hevc:2015:auxid:1"}  # AV1's, HEVC's
GAIN_MAP = "tmap"


def _properties_of(item: int | None, found: dict[str, Any]) -> list[tuple[bytes, bytes]]:
    """(type, body) of the properties associated with ``item``, in the order of association."""
    properties = found.get("ipco", [])
    return [properties[i - 1] for i in found.get("ipma", {}).get(item, []) if 0 < i <= len(properties)]


def _companions(found: dict[str, Any]) -> tuple[Companion, ...]:
    """The auxiliary images whose ``auxl`` reference names the primary image (its alpha aside),
    and a tone-map item derived from it (an ISO 21496-1 gain map)."""
    companions = []
    for kind, item, to in found.get("iref", []):
        if kind == b"dimg" and found.get("items", {}).get(item) == b"tmap" and found.get("pitm") in to:
            companions.append(Companion(GAIN_MAP, None))  # the tone map derived from the primary and a gain map
        if kind != b"auxl" or found.get("pitm") not in to:
            continue
        own = _properties_of(item, found)
        urn = next((body[4:].split(b"\0")[0].decode("latin-1") for kind, body in own if kind == b"auxC"), "")
        extent = next((struct.unpack_from(">II", body, 4) for kind, body in own if kind == b"ispe" and len(body) >= 12),
                      None)
        if extent and (aperture := _aperture(own)) and (shown := aperture.rect(*extent)):
            extent = shown[2:]  # the coded size cut to its clean aperture, as it is shown
        if urn not in _ALPHA:
            companions.append(Companion(urn or "of no stated type", extent))
    return tuple(companions)


def _aperture(own: list[tuple[bytes, bytes]]) -> CleanAperture | None:
    """The clean aperture among an item's properties, in their order of association; one of
    zero-denominator fractions crops nothing (``rect`` says so)."""
    body = next((body for kind, body in own if kind == b"clap" and len(body) >= 32), None)
    if body is None:
        return None
    kinds = [kind for kind, _ in own]
    width_n, width_d, height_n, height_d, across_n, across_d, down_n, down_d = struct.unpack_from(">IIIIiIiI", body)
    if 0 in (width_d, height_d, across_d, down_d):
        return CleanAperture(Fraction(0), Fraction(0), Fraction(0), Fraction(0), True)
    turns = [kinds.index(kind) for kind in (b"irot", b"imir") if kind in kinds]
    return CleanAperture(Fraction(width_n, width_d), Fraction(height_n, height_d), Fraction(across_n, across_d),
                         Fraction(down_n, down_d), kinds.index(b"clap") < min(turns, default=len(kinds)))


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
        elif kind == b"iref":
            found["iref"] = _references(data, body, body_end)
        elif kind == b"iinf":
            found["items"] = _item_types(data, body, body_end)
    return found


def _item_types(data: bytes, body: int, end: int) -> dict[int, bytes]:
    """Item → its type, by the item information entries of version 2 and 3 (those of HEIF)."""
    found = {}
    try:
        for kind, start, _ in boxes(data, body + (6 if data[body] == 0 else 8), end):  # after the entry count
            if kind == b"infe" and data[start] in (2, 3):
                size = 2 if data[start] == 2 else 4  # the item ID's; the protection index's two bytes follow it
                item, kind_at = int.from_bytes(data[start + 4:start + 4 + size], "big"), start + 6 + size
                found[item] = data[kind_at:kind_at + 4]
    except ValueError:
        return {}
    return found


def _references(data: bytes, body: int, end: int) -> list[tuple[bytes, int, list[int]]]:
    """(type, from item, to items) of each item reference (ISO/IEC 14496-12, 8.11.12); none
    where they cannot be walked, so that damage there hides nothing else."""
    size = 4 if data[body] != 0 else 2  # version 1: 32-bit item IDs
    found = []
    try:
        for kind, start, stop in boxes(data, body + 4, end):
            item, count = int.from_bytes(data[start:start + size], "big"), data[start + size:start + size + 2]
            to = range(start + size + 2, min(stop, start + size + 2 + size * int.from_bytes(count, "big")), size)
            found.append((kind, item, [int.from_bytes(data[at:at + size], "big") for at in to]))
    except ValueError:
        return []
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
