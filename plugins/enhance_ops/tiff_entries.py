"""A TIFF's directories, and entries whose values lie past the end of the file hidden from Pillow.

Pillow adds up the sizes of a directory's values as it reads them and skips every value
after the total passes the file's size ("Tag data larger than file"). One damaged entry
(a count of millions, an offset past the end) so took with it the intact values read after
it: the ICC profile, the resolution, the Software and Artist, the EXIF, each lost from the
derivative without a note, and a CMYK page with an intact press profile converted without
it. Pillow reads the file with each such entry's type read as 0, which it passes over
without counting it; the pixel data and every other byte are the file's own, and are not
copied (a large scan's bytes had been, twice over, while its page was read). tifffile reads
each entry on its own and says which of a page's own is damaged (``tiff_log``), but not one
in its EXIF or GPS directory: those are told here.
"""
from __future__ import annotations

import io
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from PIL import ExifTags

from .tiff_exif import VALUE_BYTES

_UNIT_BYTES = {**VALUE_BYTES, 13: 4, 16: 8, 17: 8, 18: 8}  # and IFD, and BigTIFF's LONG8, SLONG8, IFD8
IMAGE_SOURCE_DATA = 37724  # Photoshop's layers, in a TIFF saved with them
_SUB_DIRECTORIES = {34665: ("EXIF", ExifTags.TAGS), 34853: ("GPS", ExifTags.GPSTAGS)}  # Pillow reads them alike


@dataclass(frozen=True)
class PastTheEnd:
    """A directory entry whose value lies past the end of the file."""

    where: int  # the entry's place in the file
    tag: int
    page: int  # the directory in the chain it is in or under, counted from 0
    within: str = ""  # "EXIF" or "GPS" for an entry of such a directory, "" for the page's own

    def note(self) -> str:
        name = dict(_SUB_DIRECTORIES.values())[self.within].get(self.tag, "unknown")
        return (f"{self.within} tag {self.tag} ({name}) is damaged (its value runs past the end of the file) and "
                "was skipped: it is not in the derivative")


class _Layout:
    """Classic TIFF or BigTIFF, in the file's byte order."""

    def __init__(self, data: bytes | memoryview) -> None:
        order = "<" if data[:2] == b"II" else ">"
        self.big = struct.unpack_from(order + "H", data, 2)[0] == 43
        self.count, self.pointer = (order + "Q", order + "Q") if self.big else (order + "H", order + "I")
        self.entry = struct.Struct(order + ("HHQQ" if self.big else "HHII"))
        self.inline = 8 if self.big else 4
        self.first = struct.unpack_from(self.pointer, data, 8 if self.big else 4)[0]


def chain(data: bytes | memoryview) -> Iterator[int]:
    """Where the directories in a TIFF's chain start, in order; raises ValueError at a
    next-directory offset outside the file or back into the chain."""
    layout = _Layout(data)
    at, seen = layout.first, set()
    while at:
        end = at + struct.calcsize(layout.count)
        if at in seen or end > len(data):
            raise ValueError(f"a directory offset ({at}) points outside the file or back into the chain")
        seen.add(at)
        yield at
        end += struct.unpack_from(layout.count, data, at)[0] * layout.entry.size
        if end + struct.calcsize(layout.pointer) > len(data):
            raise ValueError(f"the directory at {at} runs past the end of the file")
        (at,) = struct.unpack_from(layout.pointer, data, end)


def directory_offsets(data: bytes | memoryview) -> list[int]:
    """The whole chain, walked strictly: tifffile stops without an error at a next-directory
    offset past the end of the file, and the pages after it would be lost without a word."""
    return list(chain(data))


def sub_directory_entry(data: bytes, at: int, pointer: int, tag: int) -> tuple[int, int, int] | None:
    """(type, count, value or offset) of ``tag`` in the directory that entry ``pointer`` of the
    directory at ``at`` points at (the EXIF directory of a page, say); None where either is missing."""
    layout = _Layout(data)
    found = {t: (kind, count, value) for _, t, kind, count, value in _entries(data, layout, at)}
    if pointer not in found or found[pointer][0] not in (4, 13, 16, 18) or found[pointer][1] != 1:
        return None
    return next(((kind, count, value) for _, t, kind, count, value in _entries(data, layout, found[pointer][2])
                 if t == tag), None)


def past_the_end(data: bytes) -> list[PastTheEnd]:
    """The entries whose values lie past the end of the file, in the directories Pillow reads:
    the chain's, up to the first it cannot reach, and their EXIF and GPS directories."""
    return _scan(data)[0]


def _scan(data: bytes) -> tuple[list[PastTheEnd], list[int]]:
    """The entries past the end (``past_the_end``), and where the entries of Photoshop's layers
    are in the chain's directories: one walk of the directories Pillow reads, for both."""
    try:
        layout = _Layout(data)
    except struct.error:
        return [], []
    found: list[PastTheEnd] = []
    layers: list[int] = []
    directories = [(at, page, "") for page, at in enumerate(_readable_chain(data))]
    seen: set[int] = set()
    while directories:
        at, page, within = directories.pop(0)
        if at in seen:
            continue
        seen.add(at)
        entries = list(_entries(data, layout, at))
        if not within:
            layers += [where for where, tag, *_ in entries if tag == IMAGE_SOURCE_DATA]
        if sum(kind not in _UNIT_BYTES for _, _, kind, _, _ in entries) > 1:
            continue  # not a directory (an offset damaged into pixel data, say): no byte of it is touched
        for where, tag, kind, count, value in entries:
            size = _UNIT_BYTES.get(kind, 0) * count
            if size > layout.inline and value + size > len(data):
                found.append(PastTheEnd(where, tag, page, within))
            elif not within and tag in _SUB_DIRECTORIES and kind in (4, 13, 16, 18) and count == 1 and value < len(data):
                directories.append((value, page, _SUB_DIRECTORIES[tag][0]))
    return found, layers


def for_pillow(data: bytes) -> BinaryIO:
    """``data`` as a file for Pillow, the entries whose values lie past its end read with type
    0, and so are Photoshop's layers (``IMAGE_SOURCE_DATA``): Pillow reads every value of a
    directory as it opens it, and a layered master's hundreds of megabytes of layers, which
    nothing here uses, were read whole and then copied four times over on their way to the
    EXIF reader (50 MB of layers had cost 245 MB)."""
    past, layers = _scan(data)
    hidden = [entry.where for entry in past] + layers
    if not hidden:
        return io.BytesIO(data)
    return io.BufferedReader(_Mended(data, {where + 2: b"\x00\x00" for where in hidden}))


class _Mended(io.RawIOBase):
    """``data`` read as a file, with a few bytes read as ``patches`` say (place → bytes)."""

    def __init__(self, data: bytes, patches: dict[int, bytes]) -> None:
        self._data, self._patches, self._at = memoryview(data), patches, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._at

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._at = max(0, offset + (0, self._at, len(self._data))[whence])
        return self._at

    def readinto(self, buffer: bytearray | memoryview) -> int:
        start = min(self._at, len(self._data))
        end = min(start + len(buffer), len(self._data))
        out = memoryview(buffer).cast("B")
        out[:end - start] = self._data[start:end]
        for place, value in self._patches.items():
            for i, byte in enumerate(value):
                if start <= place + i < end:
                    out[place + i - start] = byte
        self._at = end
        return end - start


def _readable_chain(data: bytes) -> list[int]:
    """The directories up to the first the chain cannot reach: Pillow reads those."""
    found: list[int] = []
    try:
        found.extend(chain(data))
    except (ValueError, struct.error):
        pass
    return found


def _entries(data: bytes, layout: _Layout, at: int) -> Iterator[tuple[int, int, int, int, int]]:
    """(where, tag, type, count, value or offset) of each entry of the directory at ``at``
    that lies within the file."""
    first = at + struct.calcsize(layout.count)
    if first > len(data):
        return
    count = struct.unpack_from(layout.count, data, at)[0]
    for where in range(first, min(first + count * layout.entry.size, len(data) - layout.entry.size + 1),
                       layout.entry.size):
        yield where, *layout.entry.unpack_from(data, where)
