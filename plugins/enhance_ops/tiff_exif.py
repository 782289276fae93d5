"""Write EXIF: the sub-IFDs (capture settings, GPS) into a little-endian TIFF (classic or
BigTIFF), and the whole block that JPEG, PNG and WebP carry.

tifffile writes pixels, ICC, XMP and IFD0 tags but refuses to write the EXIF and GPS
pointer tags; an archive's capture date lives in those sub-directories. The file is written
with private placeholder tags, then each sub-IFD is appended, the placeholder renamed to the
real pointer tag, and IFD0's entries put back in tag order.

The block for the other formats is written here too, not by piexif: piexif's ``dump`` ends
no sub-IFD with its next-IFD offset, so a reader takes the first bytes of the values after
it (a date, say) for one, or reads past the block's end.
"""
from __future__ import annotations

import io
import struct
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, BinaryIO

import piexif

EXIF_POINTER = 34665
GPS_POINTER = 34853
INTEROP_POINTER = 40965
_PLACEHOLDER = {EXIF_POINTER: 65000, GPS_POINTER: 65001}  # private-range tag codes
_FORMATS = {1: "B", 2: "B", 3: "H", 4: "I", 5: "II", 6: "b", 7: "B", 8: "h", 9: "i", 10: "ii", 11: "f", 12: "d"}
VALUE_BYTES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8}  # by TIFF type
U32 = 2**32 - 1  # a rational's numerator and denominator are unsigned 32-bit (a PNG pHYs pair too)
MAKER_NOTE = 37500
Mover = Callable[[bytes, int], bytes]  # a MakerNote's bytes for where it lands (``maker_note.Placement``)

# TIFF's page tags, which piexif has no entry for and so passes over: a register's folio
# label ("f. 12r") in PageName, a page's place in its document in PageNumber, where the
# page lies on its sheet in X/YPosition (in resolution units, so the same when enlarged).
# They were left out of the derivative, with a note; known to piexif, they travel as IFD0's others do.
for _tag, _name, _type in ((285, "PageName", piexif.TYPES.Ascii), (286, "XPosition", piexif.TYPES.Rational),
                           (287, "YPosition", piexif.TYPES.Rational), (297, "PageNumber", piexif.TYPES.Short)):
    piexif.TAGS["Image"].setdefault(_tag, {"name": _name, "type": _type})


def rational(value: float) -> tuple[int, int] | None:
    """``value`` as a rational: the nearest fraction of denominator at most 10,000 whose
    numerator 32 bits hold (a fine resolution with a fraction to it had overflowed it); None
    past 2^32 - 1, which no such fraction holds."""
    if abs(value) > U32:
        return None
    frac = Fraction(value).limit_denominator(max(1, min(10000, int(U32 // max(abs(value), 1)))))
    return (frac.numerator, frac.denominator)


def _encode_value(kind: int, value: Any) -> tuple[int, bytes]:
    """(count, little-endian bytes) of one tag value in piexif's representation."""
    if kind == 2:
        raw = value if isinstance(value, bytes) else str(value).encode("latin-1")
        raw = raw if raw.endswith(b"\x00") else raw + b"\x00"
        return len(raw), raw
    if kind in (1, 7) and isinstance(value, bytes):
        return len(value), value
    items = value if isinstance(value, tuple) and (kind not in (5, 10) or isinstance(value[0], tuple)) else (value,)
    fmt = _FORMATS[kind]
    flat = [v for item in items for v in (item if isinstance(item, tuple) else (item,))]
    return len(items), struct.pack("<" + fmt[0] * len(flat), *flat)


@dataclass(frozen=True)
class _Layout:
    """How a directory is laid out: classic TIFF (2-byte count, 12-byte entries, 4-byte
    values and offsets) or BigTIFF (8, 20, 8)."""

    count: str
    number: str  # an entry's count, a value's offset, the next directory's offset
    size: int  # of a value held in the entry itself
    pointer: int  # the type a sub-directory's offset is written in: LONG, or LONG8 (Pillow reads no IFD8)

    @property
    def entry(self) -> int:
        return 4 + 2 * self.size


CLASSIC, BIG = _Layout("<H", "<I", 4, pointer=4), _Layout("<Q", "<Q", 8, pointer=16)


def _ifd_bytes(tags: dict[int, Any], types: dict[int, dict[str, Any]], offset: int, form: _Layout = CLASSIC,
               moved: Mover | None = None) -> bytes:
    entries = [(t, types[t]["type"], *_encode_value(types[t]["type"], v)) for t, v in sorted(tags.items())]
    data_start = offset + struct.calcsize(form.count) + form.entry * len(entries) + form.size
    head, tail = [struct.pack(form.count, len(entries))], b""
    for tag, kind, count, raw in entries:
        head.append(struct.pack("<HH", tag, kind) + struct.pack(form.number, count))
        if len(raw) <= form.size:
            head.append(raw.ljust(form.size, b"\x00"))
        else:
            if tag == MAKER_NOTE and moved:
                raw = moved(raw, data_start + len(tail))
            head.append(struct.pack(form.number, data_start + len(tail)))
            tail += raw + (b"\x00" if len(raw) % 2 else b"")
    return b"".join(head) + struct.pack(form.number, 0) + tail


_IFD_TAGS = {"0th": "Image", "Exif": "Exif", "GPS": "GPS", "Interop": "Interop"}  # piexif's names for each
_PARENTS = {"Exif": ("0th", EXIF_POINTER), "GPS": ("0th", GPS_POINTER), "Interop": ("Exif", INTEROP_POINTER)}


def tag_name(ifd: str, tag: int) -> str:
    """piexif's name for a tag of a directory ("0th", "1st", "Exif", "GPS", "Interop"), for notes."""
    return piexif.TAGS.get(_IFD_TAGS.get(ifd, "Image"), {}).get(tag, {}).get("name", "unknown")


def block(exif: dict[str, Any], moved: Mover | None = None) -> bytes:
    """``Exif\\0\\0`` and a little-endian TIFF structure: IFD0, then its Exif, GPS and Interop
    sub-IFDs, each ending in a next-IFD offset of 0. Tags piexif has no type for are left out;
    ``moved`` gives the MakerNote's bytes for where it lands."""
    pointers = {pointer for _, pointer in _PARENTS.values()}
    ifds = {
        name: {t: v for t, v in exif.get(name, {}).items() if t in piexif.TAGS[kind] and t not in pointers}
        for name, kind in _IFD_TAGS.items()
    }
    if not ifds["Exif"]:
        ifds["Interop"] = {}  # its pointer would live in the Exif IFD
    for name, (parent, pointer) in _PARENTS.items():
        if ifds[name]:
            ifds[parent][pointer] = 0  # a LONG: no IFD's size depends on the offsets set below
    offsets, at = {}, 8
    for name, tags in ifds.items():
        if tags or name == "0th":
            offsets[name] = at
            at += len(_ifd_bytes(tags, piexif.TAGS[_IFD_TAGS[name]], at))
            at += at % 2
    for name, (parent, pointer) in _PARENTS.items():
        if name in offsets:
            ifds[parent][pointer] = offsets[name]
    out = bytearray(b"II*\x00" + struct.pack("<I", 8))
    for name, start in offsets.items():
        out += b"\x00" * (start - len(out))
        out += _ifd_bytes(ifds[name], piexif.TAGS[_IFD_TAGS[name]], start, moved=moved)
    return b"Exif\x00\x00" + bytes(out)


def sub_ifds(exif: dict[str, Any]) -> dict[int, dict[int, Any]]:
    """The sub-IFDs worth writing, keyed by their pointer tag; tags piexif cannot type are left out."""
    known = {
        EXIF_POINTER: {
            t: v for t, v in exif.get("Exif", {}).items() if t in piexif.TAGS["Exif"] and t != INTEROP_POINTER
        },
        GPS_POINTER: {t: v for t, v in exif.get("GPS", {}).items() if t in piexif.TAGS["GPS"]},
    }
    return {pointer: tags for pointer, tags in known.items() if tags}


def placeholders(pointers: list[int]) -> list[tuple[int, str, int, int, bool]]:
    """tifffile ``extratags`` reserving each pointer tag, to be patched by ``append_sub_ifds``."""
    return [(_PLACEHOLDER[pointer], "I", 1, 0, True) for pointer in pointers]


_HEADERS = {b"II*\x00": (CLASSIC, 4), b"II+\x00": (BIG, 8)}  # → layout, where IFD0's offset is


def append_sub_ifds(tiff: BinaryIO, ifds: dict[int, dict[int, Any]], ifd: int | None = None,
                    moved: Mover | None = None) -> None:
    """Appends each sub-IFD to the file tifffile wrote and points the page's directory (at
    offset ``ifd``; IFD0 by default) at it, in place: a derivative can be gigabytes, and the
    stream is not copied. ``moved`` gives the MakerNote's bytes for where it lands."""
    tiff.seek(0)
    header = tiff.read(16)
    if header[:4] not in _HEADERS:
        raise ValueError("expected a little-endian TIFF or BigTIFF")
    form, ifd0_at = _HEADERS[header[:4]]
    if ifd is None:
        (ifd,) = struct.unpack_from(form.number, header, ifd0_at)
    tiff.seek(ifd)
    (count,) = struct.unpack(form.count, tiff.read(struct.calcsize(form.count)))
    first = tiff.tell()
    entries = [bytearray(tiff.read(form.entry)) for _ in range(count)]
    by_tag = {struct.unpack_from("<H", e)[0]: e for e in entries}
    end = tiff.seek(0, io.SEEK_END)
    for pointer, tags in ifds.items():
        if end % 2:
            end += tiff.write(b"\x00")
        entry = by_tag[_PLACEHOLDER[pointer]]
        one_at_end = struct.pack(form.number, 1) + struct.pack(form.number, end)  # count 1, offset
        entry[:] = struct.pack("<HH", pointer, form.pointer) + one_at_end
        types = piexif.TAGS["Exif" if pointer == EXIF_POINTER else "GPS"]
        end += tiff.write(_ifd_bytes(tags, types, end, form, moved))
    entries.sort(key=lambda e: struct.unpack_from("<H", e)[0])
    tiff.seek(first)
    tiff.write(b"".join(entries))
