"""The segments of a JPEG's header, walked as a decoder walks them."""
from __future__ import annotations

from collections.abc import Iterator

SOS = 0xDA  # start of scan: the entropy-coded data follows


def header_segments(data: bytes) -> Iterator[tuple[int, int, int]]:
    """(marker, start, end) of each segment after SOI, fill bytes passed over, up to the first
    SOS, whose segment runs to the end of the data. The walk ends early where what follows is
    no marker (a damaged length, a file cut short)."""
    at = 2
    while at + 4 <= len(data) and data[at] == 0xFF:
        marker = data[at + 1]
        if marker == 0xFF:  # a fill byte
            at += 1
            continue
        if marker == SOS:
            yield marker, at, len(data)
            return
        end = at + 2 + int.from_bytes(data[at + 2 : at + 4], "big")
        yield marker, at, end
        at = end


FRAME_HEADERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # SOF0-SOF15; the others in the range are tables
LOSSLESS = frozenset({0xC3, 0xC7, 0xCB, 0xCF})  # the lossless processes' frame headers


def frame(data: bytes) -> tuple[int, int] | None:
    """The frame header's marker (which names the coding process) and sample precision in
    bits; None where the header holds no whole frame header."""
    for marker, at, _ in header_segments(data):
        if marker in FRAME_HEADERS and at + 4 < len(data):
            return marker, data[at + 4]
    return None
