"""A camera's MakerNote, moved with the EXIF block it is carried in.

To an EXIF writer a MakerNote is one opaque value, but most makers lay a TIFF directory out
in it, and Canon, Sony, Panasonic and others count its values' places from the EXIF block's
TIFF header, not from the note. Rewriting the EXIF for the derivative puts the note
elsewhere, and each such place then pointed at other bytes: the lens, the body's serial
number and the focus distance of a copy-stand capture read as garbage or not at all. As
exiftool does, the note's directory is read, where its places count from is told by which
reading puts every value inside the note, and a note counted from the header has its places
moved by as much as the note moved. Notes that hold their own TIFF header (Nikon's) or count
from their own start (Olympus', Fujifilm's, Apple's) travel as they are. Only the note's
own directory is moved: a directory nested in it is rare, and stays as stored.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

from . import tiff_entries
from .tiff_exif import EXIF_POINTER, MAKER_NOTE, VALUE_BYTES

# Signatures of notes that hold their own TIFF header or count from their own start.
_SELF_CONTAINED = (b"Nikon\x00\x02", b"OLYMPUS\x00", b"OM SYSTEM\x00", b"FUJIFILM", b"GENERALE", b"Apple iOS\x00",
                   b"PENTAX \x00")
# Where the directory starts in notes that open with a maker's signature; the others open with it.
_DIRECTORY_AFTER = {b"Nikon\x00\x01": 8, b"OLYMP\x00": 8, b"EPSON\x00": 8, b"SONY DSC \x00\x00\x00": 12,
                    b"SONY CAM \x00\x00\x00": 12, b"Panasonic\x00\x00\x00": 12, b"AOC\x00": 6,
                    b"SIGMA\x00\x00\x00": 10, b"QVC\x00\x00\x00": 6}
_MAX_ENTRIES = 1000  # a count past it is not a directory's
_U32 = 2**32 - 1


@dataclass(frozen=True)
class Placement:
    """A note whose values' places count from its EXIF block's TIFF header: where it lay there
    (``at``), where its directory starts within it, and the block's byte order."""

    at: int
    directory: int
    order: str

    def moved_to(self, note: bytes, at: int) -> bytes:
        """The note's bytes for a block in which it starts at ``at``. Canon's footer (``II*\\0``
        and where the note starts, which exiftool writes) is moved too. Past 4 GiB (the EXIF of
        a BigTIFF's last page) no place fits the note's 32 bits, and it stays as it was."""
        shift = at - self.at
        out = bytearray(note)
        for field_at, place, _ in _held_apart(note, self.directory, self.order) or []:
            if not 0 <= place + shift <= _U32:
                return note
            struct.pack_into(self.order + "I", out, field_at, place + shift)
        if note[-8:-4] == b"II*\x00" and struct.unpack_from("<I", note, len(note) - 4)[0] == self.at:
            struct.pack_into("<I", out, len(out) - 4, at)
        return bytes(out)


def read(block: bytes, directory_at: int | None = None) -> tuple[Placement | None, list[str]]:
    """How the MakerNote of the EXIF directory under the directory at ``directory_at`` of
    ``block`` (a TIFF structure, header at 0; IFD0 by default) is to be moved, and notes."""
    try:
        order = "<" if block[:2] == b"II" else ">"
        if directory_at is None:
            (directory_at,) = struct.unpack_from(order + "I", block, 4)
        found = tiff_entries.sub_directory_entry(block, directory_at, EXIF_POINTER, MAKER_NOTE)
    except struct.error:
        return None, []
    if found is None or found[1] * VALUE_BYTES.get(found[0], 0) <= 4:
        return None, []  # no note, or one held in its entry: it moves as a whole
    at, note = found[2], block[found[2]:found[2] + found[1]]
    if note.startswith(_SELF_CONTAINED):
        return None, []
    directory = next((start for sign, start in _DIRECTORY_AFTER.items() if note.startswith(sign)), 0)
    apart = _held_apart(note, directory, order)
    if not apart:
        return None, []  # no directory (a maker's own binary layout), or none of its values held apart
    end = directory + 2 + 12 * struct.unpack_from(order + "H", note, directory)[0]
    fits = {base: all(end <= place - base and place - base + size <= len(note) for _, place, size in apart)
            for base in (0, at)}
    if fits[0] and fits[at]:
        # both readings fit: the values follow the directory, and the right reading starts them nearest its end
        gaps = {base: min(place for _, place, _ in apart) - base - end for base in (0, at)}
        fits[max(gaps, key=gaps.__getitem__)] = False
    if fits[at] and not fits[0]:
        said = [] if order == "<" else ["the MakerNote is big-endian and the derivative's EXIF little-endian: a "
                                        "reader that takes the note's byte order from the EXIF misreads it"]
        return Placement(at, directory, order), said
    if fits[0]:
        return None, []
    return None, ["MakerNote carried as stored: where its values' places count from could not be told, and in the "
                  "derivative's EXIF they may point at other bytes"]


def _held_apart(note: bytes, directory: int, order: str) -> list[tuple[int, int, int]] | None:
    """(where in the note its place is written, the place, the size) of each value of the
    note's directory held apart from its entry; None where the note holds no TIFF directory."""
    try:
        (count,) = struct.unpack_from(order + "H", note, directory)
    except struct.error:
        return None
    if not 0 < count <= _MAX_ENTRIES or directory + 2 + 12 * count > len(note):
        return None
    found = []
    for at in range(directory + 2, directory + 2 + 12 * count, 12):
        _, kind, values, place = struct.unpack_from(order + "HHII", note, at)
        if kind not in VALUE_BYTES:
            return None
        if VALUE_BYTES[kind] * values > 4:
            found.append((at + 8, place, VALUE_BYTES[kind] * values))
    return found
