"""Photoshop's image resources (a JPEG's APP13 segments, a TIFF's tag 34377): which travel.

Photoshop keeps more than the IPTC records there: "Copyright Status: Copyrighted" and the
rights statement's URL of File Info, an older caption, and the digest by which readers tell
whether the IPTC records still agree with the XMP. Those were lost from the derivative
without a note, the IPTC records alone carried. They travel now, to a JPEG or TIFF
derivative. What the derivative states afresh (resolution, thumbnail, profile, EXIF, XMP)
and the editing session's settings (guides, print settings, slices) are left behind without a
word, and what marks or selects parts of the master's pixels (paths, alpha channel names, a
watermark's flag) by name.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

SIGNATURE = b"Photoshop 3.0\x00"  # opens each APP13 segment
IPTC = 0x0404
DIGEST = 0x0425  # MD5 of the IPTC records: whether another program has changed them since
# What the derivative carries as it stands: copyright status, its URL, the old caption.
_CARRIED = {0x040A: "copyright flag", 0x040B: "URL", 0x03F0: "caption", DIGEST: "IPTC digest"}
# Left out without a word: what the derivative states afresh or carries elsewhere (resolution,
# thumbnails, profile, EXIF, XMP, pixel aspect, JPEG quality, version), and the settings of the
# editing session no reader of the derivative needs (print and halftone settings, guides, the
# global light angle, layer state and groups of a flattened file, slices, display, timeline).
_UNSAID = {0x03E9, 0x03ED, 0x03F1, 0x03F2, 0x03F3, 0x03F5, 0x03F8, 0x0400, 0x0402, 0x0406, 0x0408, 0x0409, 0x040C,
           0x040D, 0x040F, 0x0414, 0x0419, 0x041A, 0x041E, 0x0421, 0x0422, 0x0423, 0x0424, 0x0426, 0x0428, 0x042D,
           0x0430, 0x0431, 0x0432, 0x0433, 0x0435, 0x0436, 0x0438, 0x043A, 0x043B, 0x2710, IPTC}
# Named when left out: what marks or selects parts of the master's pixels.
_NAMES = {0x03EE: "alpha channel names", 0x0410: "watermark flag", 0x0415: "alpha channel names",
          0x041D: "alpha identifiers", 0x0429: "layer comps", 0x0BB7: "clipping path name"}
_PATHS = range(0x07D0, 0x0BB7)  # saved paths (an object's outline), in the master's geometry


@dataclass(frozen=True)
class Resource:
    ident: int
    name: bytes  # its Pascal name, as stored (the length byte and padding to an even size included)
    data: bytes

    def block(self) -> bytes:
        return b"8BIM" + struct.pack(">H", self.ident) + self.name + struct.pack(">I", len(self.data)) + self.data + \
            b"\x00" * (len(self.data) % 2)


def read(stored: bytes) -> tuple[list[Resource], list[str]]:
    """The resources ``stored`` holds (the blocks of a TIFF's tag, or of APP13 segments
    joined), and a note where it is damaged: the resources before the damage are kept."""
    found: list[Resource] = []
    at = 0
    while at + 4 <= len(stored) and stored[at:at + 4] in (b"8BIM", b"MeSa", b"AgHg", b"PHUT", b"DCSR"):
        try:
            (ident,) = struct.unpack_from(">H", stored, at + 4)
            name_length = stored[at + 6] + 1
            name_length += name_length % 2
            (size,) = struct.unpack_from(">I", stored, at + 6 + name_length)
        except (struct.error, IndexError):
            break
        start = at + 10 + name_length
        if start + size > len(stored):
            break
        if stored[at:at + 4] == b"8BIM":  # the others are ImageReady's and third parties'
            found.append(Resource(ident, stored[at + 6:at + 6 + name_length], stored[start:start + size]))
        at = start + size + size % 2
    if at < len(stored) and stored[at:].strip(b"\x00"):
        return found, [f"Photoshop resources damaged after {at:,} of {len(stored):,} bytes: the rest not read"]
    return found, []


def from_jpeg(segments: list[bytes]) -> bytes:
    """The resource blocks of a JPEG's APP13 segments, joined: a long one spans several."""
    return b"".join(s[len(SIGNATURE):] for s in segments if s.startswith(SIGNATURE))


def carried(resources: list[Resource]) -> tuple[tuple[Resource, ...], list[str]]:
    """The resources the derivative carries, and a note naming those it leaves out."""
    kept = tuple(r for r in resources if r.ident in _CARRIED)
    left = sorted({r.ident for r in resources if r.ident not in _CARRIED and r.ident not in _UNSAID})
    names = [_NAMES.get(i, "path" if i in _PATHS else "plug-in data" if 0x0FA0 <= i <= 0x1387 else "resource") +
             f" (0x{i:04X})" for i in left]
    said = [f"Photoshop resources not carried: {', '.join(names)}"] if names else []
    return kept, said


def named(resources: tuple[Resource, ...]) -> str:
    """The carried resources, named for a note ("" for none)."""
    return f"Photoshop resources ({', '.join(_CARRIED[r.ident] for r in resources)})" if resources else ""


def joined(resources: tuple[Resource, ...], iptc: bytes | None) -> bytes:
    """The resource blocks a derivative stores: the carried ones and the IPTC records; the
    IPTC digest only beside the records it was taken of."""
    blocks = [r.block() for r in resources if r.ident != DIGEST or iptc]
    if iptc:
        blocks.append(Resource(IPTC, b"\x00\x00", iptc).block())
    return b"".join(blocks)
