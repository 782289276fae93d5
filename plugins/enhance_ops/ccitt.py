"""A CCITT strip (Group 4, Group 3, Modified Huffman) read code by code, as a decoder reads it,
to find where it stops making sense.

Bitonal document scans are most often stored as Group 4 TIFFs, fax-era ones as Group 3. The
code has no checksum. libtiff decodes a Group 4 strip on past a damaged code word, garbling
every row after it; in Group 3 it looks for the next end-of-line code past whatever a row
leaves over, garbling the rest of that row. It says so only through its error handler, which
neither OpenCV nor Pillow hands back. Each row is decoded here (in runs, or against the one
above), and the first code word that is no code, a run that passes the row's end, code
between a row's end and the next end-of-line code, a strip that ends before its rows do, or
code left over after them, is named: 173–200 of 200 one-bit changes to a page of print, by
coding (bench/damage_found.py). The pixels are not made, only the positions where the colour
changes; read in Python, that takes 116–120 ms for an A4 page at 300 dpi on the development
VM (an Intel Xeon, 2 cores), where libtiff decodes it in a few.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

# ITU-T T.4, tables 2 and 3: the codes for white and black runs (terminating codes 0-63, then
# make-up codes for multiples of 64, then the extended make-up codes both colours share).
_WHITE_TERMINATING = (
    "00110101", "000111", "0111", "1000", "1011", "1100", "1110", "1111", "10011", "10100", "00111", "01000",
    "001000", "000011", "110100", "110101", "101010", "101011", "0100111", "0001100", "0001000", "0010111",
    "0000011", "0000100", "0101000", "0101011", "0010011", "0100100", "0011000", "00000010", "00000011",
    "00011010", "00011011", "00010010", "00010011", "00010100", "00010101", "00010110", "00010111", "00101000",
    "00101001", "00101010", "00101011", "00101100", "00101101", "00000100", "00000101", "00001010", "00001011",
    "01010010", "01010011", "01010100", "01010101", "00100100", "00100101", "01011000", "01011001", "01011010",
    "01011011", "01001010", "01001011", "00110010", "00110011", "00110100",
)
_WHITE_MAKEUP = (
    "11011", "10010", "010111", "0110111", "00110110", "00110111", "01100100", "01100101", "01101000", "01100111",
    "011001100", "011001101", "011010010", "011010011", "011010100", "011010101", "011010110", "011010111",
    "011011000", "011011001", "011011010", "011011011", "010011000", "010011001", "010011010", "011000",
    "010011011",
)
_BLACK_TERMINATING = (
    "0000110111", "010", "11", "10", "011", "0011", "0010", "00011", "000101", "000100", "0000100", "0000101",
    "0000111", "00000100", "00000111", "000011000", "0000010111", "0000011000", "0000001000", "00001100111",
    "00001101000", "00001101100", "00000110111", "00000101000", "00000010111", "00000011000", "000011001010",
    "000011001011", "000011001100", "000011001101", "000001101000", "000001101001", "000001101010",
    "000001101011", "000011010010", "000011010011", "000011010100", "000011010101", "000011010110",
    "000011010111", "000001101100", "000001101101", "000011011010", "000011011011", "000001010100",
    "000001010101", "000001010110", "000001010111", "000001100100", "000001100101", "000001010010",
    "000001010011", "000000100100", "000000110111", "000000111000", "000000100111", "000000101000",
    "000001011000", "000001011001", "000000101011", "000000101100", "000001011010", "000001100110",
    "000001100111",
)
_BLACK_MAKEUP = (
    "0000001111", "000011001000", "000011001001", "000001011011", "000000110011", "000000110100",
    "000000110101", "0000001101100", "0000001101101", "0000001001010", "0000001001011", "0000001001100",
    "0000001001101", "0000001110010", "0000001110011", "0000001110100", "0000001110101", "0000001110110",
    "0000001110111", "0000001010010", "0000001010011", "0000001010100", "0000001010101", "0000001011010",
    "0000001011011", "0000001100100", "0000001100101",
)
_SHARED_MAKEUP = (
    "00000001000", "00000001100", "00000001101", "000000010010", "000000010011", "000000010100", "000000010101",
    "000000010110", "000000010111", "000000011100", "000000011101", "000000011110", "000000011111",
)
# T.6, table 1: the two-dimensional modes; a vertical mode's value is a1 - b1, the others above 3.
_PASS, _HORIZONTAL, _EXTENSION, _EOL = 4, 5, 6, 7
_MODES = {"1": 0, "011": 1, "000011": 2, "0000011": 3, "010": -1, "000010": -2, "0000010": -3,
          "0001": _PASS, "001": _HORIZONTAL, "0000001": _EXTENSION, "000000000001": _EOL}
_WINDOW = 13  # bits: the longest code


def _lookup(codes: dict[str, int | str]) -> tuple[list[int | str | None], list[int]]:
    """For every 13-bit window, the value of the code it starts with and that code's length (0: none)."""
    values: list[int | str | None] = [None] * (1 << _WINDOW)
    lengths = [0] * (1 << _WINDOW)
    for code, value in codes.items():
        start, span = int(code, 2) << (_WINDOW - len(code)), 1 << (_WINDOW - len(code))
        values[start:start + span] = [value] * span
        lengths[start:start + span] = [len(code)] * span
    return values, lengths


def _runs(terminating: tuple[str, ...], makeup: tuple[str, ...]) -> dict[str, int | str]:
    codes: dict[str, int | str] = {code: run for run, code in enumerate(terminating)}
    codes.update({code: 64 * (n + 1) for n, code in enumerate(makeup)})
    codes.update({code: 1792 + 64 * n for n, code in enumerate(_SHARED_MAKEUP)})
    return codes


_MODE_TABLE = _lookup(_MODES)
_RUN_TABLES = (_lookup(_runs(_WHITE_TERMINATING, _WHITE_MAKEUP)), _lookup(_runs(_BLACK_TERMINATING, _BLACK_MAKEUP)))


class CodeError(Exception):
    """Where a strip's code stops making sense, in words."""


class Unfollowed(Exception):
    """A part of T.4/T.6 this reader does not follow: the uncompressed-mode extension."""


class _LineEnd(Exception):
    """An end-of-line code where a row's code should go on."""


# How a TIFF stores a bitonal strip (its Compression tag, and for Group 3 bit 0 of T4Options):
GROUP4 = "group4"  # T.6: every row coded against the one above, no end-of-line codes
GROUP3 = "group3"  # T.4 one-dimensional: each row in runs, after an end-of-line code
GROUP3_2D = "group3-2d"  # T.4 two-dimensional: after each end-of-line code, a bit says which of the two
MODIFIED_HUFFMAN = "modified-huffman"  # TIFF's Compression 2: each row in runs, padded to a whole byte


def strip_damage(data: bytes, width: int, rows: int, *, lsb_first: bool = False, coding: str = GROUP4) -> str | None:
    """Words for where a strip of ``rows`` rows of ``width`` pixels is damaged; None where it
    decodes whole, or uses the uncompressed-mode extension."""
    try:
        _walk(data, width, rows, lsb_first, coding, lambda changes: None)
    except CodeError as exc:
        return str(exc)
    except Unfollowed:
        pass
    return None


def read(data: bytes, width: int, rows: int, *, lsb_first: bool = False, coding: str = GROUP4) -> list[list[int]]:
    """Each row's changing elements (where the colour changes, from the code's white, a 0 bit,
    at its start), as a decoder reads them; raises ``CodeError`` where the code stops making sense."""
    read_rows: list[list[int]] = []
    _walk(data, width, rows, lsb_first, coding, read_rows.append)
    return read_rows


def _walk(data: bytes, width: int, rows: int, lsb_first: bool, coding: str,
          on_row: Callable[[list[int]], None]) -> None:
    """Every row, then what follows the last: the end-of-block code, end-of-line codes (a
    Group 3 strip's return to control) and padding at most (a decoder that lost step
    finishes its rows early, with code left over)."""
    bits = np.unpackbits(np.frombuffer(data, np.uint8), bitorder="little" if lsb_first else "big")
    padded = np.concatenate([bits, np.zeros(_WINDOW, np.uint8)]).astype(np.uint16)
    windows = np.zeros(bits.size, np.uint16)  # the 13 bits from each bit on: 2 bytes a bit, not a list's 30
    for k in range(_WINDOW):
        windows = (windows << 1) | padded[k:k + bits.size]
    view, stream = memoryview(windows), bits.tobytes()
    if coding == GROUP4:
        end = _decode_group4(view, bits.size, width, rows, on_row)
        mode_values = _MODE_TABLE[0]
        if end + 24 <= bits.size and mode_values[view[end]] == mode_values[view[end + 12]] == _EOL:
            end += 24  # the end-of-block code
    elif coding == MODIFIED_HUFFMAN:
        end = _decode_byte_aligned(view, stream, width, rows, on_row)
    else:
        end = _decode_group3(view, stream, width, rows, coding == GROUP3_2D, on_row)
        end = _past_line_ends(stream, end, coding == GROUP3_2D)
    if stream.find(1, end) >= 0:
        left = -(-(bits.size - end) // 8)
        where = f"last {left:,} bytes" if left > 1 else "last byte"
        raise CodeError(f"code is left over after its {rows:,} rows, in the {where}")


def _decode_group4(windows: memoryview, count: int, width: int, rows: int, on_row: Callable[[list[int]], None]) -> int:
    """Each row read against the row above's, to ``on_row``; the bit after the last row."""
    above, at = [width, width, width], 0  # an imaginary white row first
    for row in range(rows):
        try:
            here, at = _row_2d(windows, at, count, width, above, row, rows)
        except _LineEnd:
            raise CodeError(f"the strip ends after {row} of {rows} rows") from None
        on_row(here)
        above = [*here, width, width, width]
    return at


def _decode_group3(windows: memoryview, stream: bytes, width: int, rows: int, two_dimensional: bool,
                   on_row: Callable[[list[int]], None]) -> int:
    """Each row after its end-of-line code (and, coded two-dimensionally, the bit that says
    how the row is coded), to ``on_row``; the bit after the last row. libtiff looks for the
    next end-of-line code past whatever a row leaves over, so a row that ends early decodes
    garbled without a word: here code before an end-of-line code is damage."""
    above, at, count = [width, width, width], 0, len(stream)
    for row in range(rows):
        at = _line_end(stream, at, row, rows)
        one_dimensional = True
        if two_dimensional:
            if at >= count:
                raise CodeError(f"the code ends in row {row + 1} of {rows}")
            one_dimensional, at = stream[at] == 1, at + 1
        try:
            here, at = (_row_1d(windows, at, count, width, row, rows) if one_dimensional
                        else _row_2d(windows, at, count, width, above, row, rows))
        except _LineEnd:
            raise CodeError(f"an end-of-line code cuts row {row + 1} of {rows} short") from None
        on_row(here)
        above = [*here, width, width, width]
    return at


def _decode_byte_aligned(windows: memoryview, stream: bytes, width: int, rows: int,
                         on_row: Callable[[list[int]], None]) -> int:
    """Each row in runs, from a byte's first bit, to ``on_row``; the bit after the last row's byte."""
    at, count = 0, len(stream)
    for row in range(rows):
        here, at = _row_1d(windows, at, count, width, row, rows)
        on_row(here)
        pad = -at % 8
        if stream.find(1, at, at + pad) >= 0:  # a row that ends early leaves its code in the byte
            raise CodeError(f"code is left over at the end of row {row + 1} of {rows}")
        at += pad
    return at


def _line_end(stream: bytes, at: int, row: int, rows: int) -> int:
    """The bit after the end-of-line code before a Group 3 row: eleven or more zero bits and a one."""
    one = stream.find(1, at)
    if one < 0:
        raise CodeError(f"the strip ends after {row} of {rows} rows")
    if one - at < 11:
        raise CodeError(f"code is left over at the end of row {row} of {rows}" if row
                        else "the strip does not begin with an end-of-line code")
    return one + 1


def _past_line_ends(stream: bytes, at: int, two_dimensional: bool) -> int:
    """The bit after any end-of-line codes (each with its tag bit where rows are coded two-
    dimensionally) that follow a Group 3 strip's last row, as a return to control does."""
    while (one := stream.find(1, at)) >= 0 and one - at >= 11:
        at = one + 1
        if two_dimensional and stream[at:at + 1] == b"\x01":  # the tag bit of a 1-D row that never comes
            at += 1
    return at


def _row_1d(windows: memoryview, at: int, count: int, width: int, row: int, rows: int) -> tuple[list[int], int]:
    """A row coded in runs, white first, to the row's end; its changing elements and the bit after it."""
    here: list[int] = []
    a0, colour = 0, 0
    while True:
        run, at = _run(windows, at, count, colour, row, rows)
        a0 += run
        if a0 > width:
            raise CodeError(f"a run passes the end of row {row + 1} of {rows}")
        if a0 == width:
            return here, at
        if here and here[-1] == a0:  # a run of no pixels: its two changes cancel out
            here.pop()
        else:
            here.append(a0)
        colour ^= 1


def _row_2d(windows: memoryview, at: int, count: int, width: int, above: list[int], row: int,
            rows: int) -> tuple[list[int], int]:
    """A row coded against the row above's changing elements (``above``, ending in three
    entries at ``width``, so that b1 and b2 are always in it); its own and the bit after it."""
    mode_values, mode_lengths = _MODE_TABLE
    here: list[int] = []
    a0, colour, j = -1, 0, 0  # j: where b1 is looked for in ``above``
    while a0 < width:
        if at >= count:
            raise CodeError(f"the code ends in row {row + 1} of {rows}")
        window = windows[at]
        mode = mode_values[window]
        if mode is None:
            raise CodeError(f"no code word at row {row + 1} of {rows}")
        at += mode_lengths[window]
        if mode == _HORIZONTAL:
            first, at = _run(windows, at, count, colour, row, rows)
            second, at = _run(windows, at, count, colour ^ 1, row, rows)
            a1 = (a0 if a0 > 0 else 0) + first
            a0 = a1 + second
            if a0 > width:
                raise CodeError(f"a run passes the end of row {row + 1} of {rows}")
            for change in (a1, a0):  # two at the same place (a run of no pixels) cancel out
                if here and here[-1] == change:
                    here.pop()
                else:
                    here.append(change)
            continue
        while j > 0 and above[j - 1] > a0:
            j -= 1
        while above[j] <= a0 and above[j] < width:
            j += 1
        if (j & 1) != colour:
            j += 1
        if mode <= 3:  # vertical: a1 is b1 moved by the mode's value
            a1 = above[j] + mode
            if a1 < a0 or a1 < 0 or a1 > width:
                raise CodeError(f"a code word points outside row {row + 1} of {rows}")
            if here and here[-1] == a1:
                here.pop()
            else:
                here.append(a1)
            a0, colour = a1, colour ^ 1
        elif mode == _PASS:
            a0 = above[j + 1]  # b2
        elif mode == _EOL:
            raise _LineEnd
        else:
            raise Unfollowed  # the extension
    if here and here[-1] == width:  # the row's end, not a change within it
        here.pop()
    return here, at


def _run(windows: memoryview, at: int, count: int, colour: int, row: int, rows: int) -> tuple[int, int]:
    """One run's length (make-up codes, then a terminating code) and the bit after it."""
    values, lengths = _RUN_TABLES[colour]
    total = 0
    while True:
        if at >= count:
            raise CodeError(f"the code ends in row {row + 1} of {rows}")
        window = windows[at]
        value, length = values[window], lengths[window]
        if value is None:
            raise CodeError(f"no {'black' if colour else 'white'} run code at row {row + 1} of {rows}")
        at += length
        total += value
        if value < 64:
            return total, at
