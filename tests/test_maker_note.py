"""A camera's MakerNote still finds its values in the derivative, wherever its EXIF puts it."""
from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from conftest import photo, save
from hostile_corpus import BODY, LENS, NOTE_AT, SERIAL, exif_block, note
from PIL import Image

from enhance_ops import codecs, encoders, maker_note

PROV = encoders.Provenance("archive-enhance test", "Enhanced derivative, not the archival master: test")
RGB8 = (photo("astronaut", 40, top=60, left=200) * 255 + 0.5).astype(np.uint8)
def placed_note(tiff: bytes, directory: int | None = None) -> tuple[bytes, int, str]:
    """(the MakerNote's bytes, its place, the byte order) in a TIFF structure, read by hand."""
    order = "<" if tiff[:2] == b"II" else ">"
    directory = struct.unpack_from(order + "I", tiff, 4)[0] if directory is None else directory

    def entries(at: int) -> dict[int, tuple[int, int]]:
        (count,) = struct.unpack_from(order + "H", tiff, at)
        return {tag: (count, value) for tag, _, count, value in
                (struct.unpack_from(order + "HHII", tiff, at + 2 + 12 * n) for n in range(count))}

    count, at = entries(entries(directory)[0x8769][1])[37500]
    return tiff[at:at + count], at, order


def values_read_from(tiff: bytes, base_of_note: int, note_bytes: bytes, order: str, signature: int = 0) -> dict:
    """The body, serial and lens the note's directory gives, following each place from ``base_of_note``."""
    (count,) = struct.unpack_from(order + "H", note_bytes, signature)
    found = {}
    for n in range(count):
        tag, kind, values, value = struct.unpack_from(order + "HHII", note_bytes, signature + 2 + 12 * n)
        size = values * (4 if kind == 4 else 1)
        found[tag] = value if size <= 4 else tiff[base_of_note + value:base_of_note + value + size]
    return found


def derivative_tiff_structure(data: bytes, fmt: str) -> tuple[bytes, int | None]:
    """The derivative's EXIF as a TIFF structure, and the directory its Exif pointer is in."""
    if fmt == "TIFF":
        (page,) = struct.unpack_from("<I", data, 4)
        return data, page
    return Image.open(io.BytesIO(data)).info["exif"].removeprefix(b"Exif\x00\x00"), None


def enhanced(master: bytes, fmt: str) -> tuple[bytes, list[str]]:
    decoded = codecs.decode(master)
    out = encoders.encode(decoded.pixels, decoded.alpha, fmt=fmt, bit_depth=decoded.bit_depth, meta=decoded.metadata,
                          scale=2.0, provenance=PROV)
    return out, decoded.notes


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF"])
@pytest.mark.parametrize("order", ["<", ">"])
def test_a_maker_note_counted_from_the_exif_header_still_finds_its_lens_and_serial(fmt: str, order: str) -> None:
    """Canon's (and Sony's, Panasonic's) note counts its values' places from the EXIF block's
    TIFF header; the derivative's EXIF put the note elsewhere, and the lens and body read as
    other bytes."""
    master = save(RGB8, "JPEG", exif=exif_block(note(NOTE_AT, order), order))
    out, notes = enhanced(master, fmt)
    tiff, directory = derivative_tiff_structure(out, fmt)
    carried, at, _ = placed_note(tiff, directory)
    assert at != NOTE_AT  # it did move
    assert values_read_from(tiff, 0, carried, order) == {6: BODY, 12: SERIAL, 149: LENS}
    big_endian = ["the MakerNote is big-endian and the derivative's EXIF little-endian: a reader that takes the "
                  "note's byte order from the EXIF misreads it"]
    assert notes == (big_endian if order == ">" else [])


def test_a_tiff_masters_maker_note_is_read_where_the_file_holds_it() -> None:
    """A TIFF master's note counts from the file's own header, wherever its writer put it."""
    master = bytearray(save(RGB8, "TIFF", exif=exif_block(note(0))))  # places set once the note's place is known
    _, at, _ = placed_note(bytes(master))
    master[at:at + len(note(0))] = note(at)
    out, notes = enhanced(bytes(master), "TIFF")
    carried, _, _ = placed_note(out)
    assert values_read_from(out, 0, carried, "<") == {6: BODY, 12: SERIAL, 149: LENS}
    assert notes == []  # Pillow writes the note as BYTEs, the bytes EXIF names UNDEFINED


def test_a_note_counted_from_its_own_start_travels_as_it_is() -> None:
    """Olympus' newer notes open with a signature and their own byte order, and count from
    their own start: moving their places would break them."""
    olympus = note(0, signature=b"OLYMPUS\x00II\x03\x00")
    out, notes = enhanced(save(RGB8, "JPEG", exif=exif_block(olympus)), "JPEG")
    carried, _, _ = placed_note(derivative_tiff_structure(out, "JPEG")[0])
    assert carried == olympus and notes == []


def test_when_both_readings_fit_the_one_whose_values_follow_the_directory_wins() -> None:
    """A long note (padded past its own place in the block) fits both readings: its values
    lie right after the directory only when counted from the header."""
    long_note = note(NOTE_AT, length=400)
    placement, said = maker_note.read(exif_block(long_note)[6:])
    assert placement == maker_note.Placement(NOTE_AT, 0, "<") and said == []
    moved = placement.moved_to(long_note, 1000)
    assert values_read_from(b"\x00" * 1000 + moved, 0, moved, "<") == {6: BODY, 12: SERIAL, 149: LENS}


def test_a_note_whose_values_fit_neither_reading_is_carried_as_stored_and_said() -> None:
    stray = note(5000)
    out, notes = enhanced(save(RGB8, "JPEG", exif=exif_block(stray)), "PNG")
    carried, _, _ = placed_note(derivative_tiff_structure(out, "PNG")[0])
    assert carried == stray
    assert notes == ["MakerNote carried as stored: where its values' places count from could not be told, and in "
                     "the derivative's EXIF they may point at other bytes"]


def test_canons_footer_says_where_the_note_now_starts() -> None:
    """exiftool ends a Canon note it writes with ``II*\\0`` and the note's place, and reads
    the places by it: the footer must name the new place."""
    footed = note(NOTE_AT) + b"II*\x00" + struct.pack("<I", NOTE_AT)
    out, _ = enhanced(save(RGB8, "JPEG", exif=exif_block(footed)), "JPEG")
    carried, at, _ = placed_note(derivative_tiff_structure(out, "JPEG")[0])
    assert carried[-8:] == b"II*\x00" + struct.pack("<I", at)
