"""The segments of a JPEG's header, walked as a decoder walks them."""
from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

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


def first_scan(data: bytes) -> int | None:
    """Where the first SOS segment starts, at its marker; None where the header walk ends before one."""
    return next((at for marker, at, _ in header_segments(data) if marker == SOS), None)


FRAME_HEADERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # SOF0-SOF15; the others in the range are tables
LOSSLESS = frozenset({0xC3, 0xC7, 0xCB, 0xCF})  # the lossless processes' frame headers


class Frame(NamedTuple):
    process: int  # the frame header's marker, which names the coding process
    precision: int  # bits per sample
    components: int
    start: int  # of the segment, at its marker


def frame(data: bytes) -> Frame | None:
    """The frame header; None where the header holds no whole one."""
    for marker, at, end in header_segments(data):
        if marker in FRAME_HEADERS and at + 9 < min(end, len(data)):
            return Frame(marker, data[at + 4], data[at + 9], at)
    return None
