"""Entries of an EXIF block whose values cannot be in it, taken out before piexif reads it.

piexif builds a struct format of one letter per value an entry declares: a 67-byte block
whose entry claims four thousand million LONGs (one flipped byte) made it take 4.5 GB and
24 s before failing, enough to get a worker killed for a 1 kB scan. An entry whose values
would run past the end of the block is damaged whatever its count, so each such entry is
removed from its directory, with a note naming it, and the rest of the block (the capture
date, the camera, GPS) is read as before.
"""
from __future__ import annotations

import struct

from .tiff_exif import EXIF_POINTER, GPS_POINTER, INTEROP_POINTER, VALUE_BYTES, tag_name

_POINTERS = {EXIF_POINTER: "Exif", GPS_POINTER: "GPS", INTEROP_POINTER: "Interop"}  # tag → the directory it points at
_HEADER = b"Exif\x00\x00"


def repaired(raw: bytes) -> tuple[bytes, list[str]]:
    """``raw`` without the entries whose values lie outside it, and a note for each; a
    ValueError where a directory's entries themselves run past the block, which piexif
    cannot read either."""
    start = len(_HEADER) if raw.startswith(_HEADER) else 0
    tiff = bytearray(raw[start:])
    if len(tiff) < 8:
        return raw, []  # piexif refuses it, and the caller says so
    order = "<" if tiff[:2] == b"II" else ">"  # as piexif reads it: anything but "II" is big-endian
    notes: list[str] = []
    todo, seen = [("0th", struct.unpack_from(order + "I", tiff, 4)[0])], set()
    while todo:
        name, at = todo.pop()
        if at in seen or at + 2 > len(tiff):
            continue
        seen.add(at)
        pointers, after = _repair(tiff, order, name, at, notes)
        todo += pointers
        if name == "0th" and after:
            todo.append(("1st", after))
    return (raw[:start] + bytes(tiff), notes) if notes else (raw, [])


def _repair(tiff: bytearray, order: str, name: str, at: int, notes: list[str]) -> tuple[list[tuple[str, int]], int]:
    """Take the impossible entries out of the directory at ``at``; the directories it points
    at, and the next directory's offset (0 where there is none or it cannot be read)."""
    (count,) = struct.unpack_from(order + "H", tiff, at)
    end = at + 2 + 12 * count
    if end > len(tiff):
        # piexif reads such a directory's entries until it fails, and the whole block goes, but
        # only after allocating for every impossible entry it meets on the way
        raise ValueError(f"the {name} directory declares {count:,} entries, past the end of the "
                         f"{len(tiff):,}-byte block")
    kept, pointers = [], []
    for n in range(count):
        entry = bytes(tiff[at + 2 + 12 * n : at + 14 + 12 * n])
        tag, kind, values = struct.unpack(order + "HHI", entry[:8])
        size = VALUE_BYTES.get(kind, 1) * values
        where = struct.unpack(order + "I", entry[8:])[0] if size > 4 else 0
        if size > 4 and where + size > len(tiff):
            notes.append(f"EXIF tag {tag} ({tag_name(name, tag)}) in the {name} directory declares {values:,} values, "
                         f"which run past the end of the {len(tiff):,}-byte block: dropped as damaged")
            continue
        kept.append(entry)
        if tag in _POINTERS and kind in (4, 13):
            pointers.append((_POINTERS[tag], struct.unpack(order + "I", entry[8:])[0]))
    # the next directory's offset, which piexif writes after no sub-directory: the last may lack it
    tail = bytes(tiff[end:end + 4]) if end + 4 <= len(tiff) else b""
    if len(kept) < count:
        rebuilt = struct.pack(order + "H", len(kept)) + b"".join(kept) + tail
        tiff[at:end + len(tail)] = rebuilt + bytes(end + len(tail) - at - len(rebuilt))
    return pointers, struct.unpack(order + "I", tail)[0] if tail else 0

