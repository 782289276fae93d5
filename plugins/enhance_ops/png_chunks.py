"""A PNG's metadata chunks: written for a derivative, read from a master.

EXIF, ICC, XMP, resolution and text go into a derivative as standard chunks, which
``png_pixels`` places after its header; a master's are read here where Pillow does not.
"""
from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator

from . import cicp
from .tiff_exif import U32, rational

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def iccp(profile: bytes) -> bytes:
    return chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(profile))


def exif(tiff_data: bytes) -> bytes:
    return chunk(b"eXIf", tiff_data)


def phys(dpi: tuple[float, float]) -> bytes | None:
    """pHYs in pixels per metre; None past its 32 bits (over 109 million dpi: a micrograph's),
    where the EXIF block carries the resolution alone."""
    per_metre = [max(1, round(d / 0.0254)) for d in dpi]
    if max(per_metre) > U32:
        return None
    return chunk(b"pHYs", struct.pack(">IIB", per_metre[0], per_metre[1], 1))


def phys_aspect(aspect: tuple[float, float]) -> bytes | None:
    """pHYs of unit 0: how square the pixels are, and nothing of their size; None where no
    32-bit fraction holds the ratio (tags 2^32 - 1 : 1/(2^32 - 1) had raised struct.error)."""
    ratio = rational(aspect[0] / aspect[1])
    return None if ratio is None else chunk(b"pHYs", struct.pack(">IIB", *ratio, 0))


def itxt(keyword: str, text: str) -> bytes:
    return chunk(b"iTXt", keyword.encode("latin-1") + b"\x00\x00\x00\x00\x00" + text.encode("utf-8"))


# A text chunk inflating past this is a bomb, not metadata. Pillow's own limit (1 MiB) would
# refuse real scans whose XMP carries years of editing history; codecs.py sets it to this.
MAX_TEXT_BYTES = 16 << 20


def is_grey(png: bytes) -> bool:
    """The IHDR's colour type says grey, with alpha or without (0 or 4): Pillow opens 16-bit
    grey with alpha as RGBA, so its mode does not tell."""
    return png[25:26] in (b"\x00", b"\x04")


def texts(png: bytes) -> tuple[dict[str, str], list[str]]:
    """The stream's text chunks (tEXt, zTXt, iTXt) as keyword → text, and a note for each one
    that could not be read; image data is stepped over, never copied."""
    found: dict[str, str] = {}
    notes: list[str] = []
    for kind, start, end in _chunks(png):
        if kind == b"IEND":
            break
        if kind in _TEXT_READERS:
            try:
                keyword, text = _TEXT_READERS[kind](png[start + 8 : end - 4])
            except (ValueError, zlib.error) as exc:
                notes.append(f"PNG {kind.decode()} chunk dropped ({exc})")
            else:
                found.setdefault(keyword, text)
    return found, notes


def _keyword(body: bytes) -> tuple[str, bytes]:
    keyword, sep, rest = body.partition(b"\x00")
    if not sep or not 1 <= len(keyword) <= 79:
        raise ValueError("no valid keyword")
    return keyword.decode("latin-1"), rest


def _inflate(data: bytes) -> bytes:
    inflater = zlib.decompressobj()
    out = inflater.decompress(data, MAX_TEXT_BYTES)
    if inflater.unconsumed_tail:
        raise ValueError(f"text inflates past {MAX_TEXT_BYTES:,} bytes")
    return out


def _text(body: bytes) -> tuple[str, str]:
    keyword, rest = _keyword(body)
    return keyword, rest.decode("latin-1")


def _ztext(body: bytes) -> tuple[str, str]:
    keyword, rest = _keyword(body)
    return keyword, _inflate(rest[1:]).decode("latin-1")


def _itext(body: bytes) -> tuple[str, str]:
    keyword, rest = _keyword(body)
    if len(rest) < 2:
        raise ValueError("iTXt header cut short")
    compressed, rest = rest[0], rest[2:]
    _language, _, rest = rest.partition(b"\x00")
    _translated, _, text = rest.partition(b"\x00")
    return keyword, (_inflate(text) if compressed else text).decode("utf-8", "replace")


_TEXT_READERS = {b"tEXt": _text, b"zTXt": _ztext, b"iTXt": _itext}
RAW_PROFILE = "Raw profile type "  # ImageMagick's keyword for a profile it keeps as text (EXIF, XMP, IPTC)


def raw_profile_chunk(name: str, profile: bytes) -> bytes:
    """A zTXt chunk holding ``profile`` as ImageMagick writes one (``raw_profile`` reads it),
    which ImageMagick and exiftool read: PNG has no chunk of its own for IPTC records."""
    digits = profile.hex()
    text = f"\n{name}\n{len(profile):8d}\n" + "".join(digits[at:at + 72] + "\n" for at in range(0, len(digits), 72))
    return chunk(b"zTXt", (RAW_PROFILE + name).encode("latin-1") + b"\x00\x00" + zlib.compress(text.encode("ascii")))


def raw_profile(text: str) -> bytes:
    """The bytes of a profile ImageMagick wrote as text: a line naming it, one giving its
    length, then its bytes in hexadecimal, 72 digits a line."""
    lines = text.split("\n")
    if len(lines) < 4 or not lines[2].strip().isdigit():
        raise ValueError("no length line")
    try:
        profile = bytes.fromhex("".join(lines[3:]))
    except ValueError:
        raise ValueError("its hexadecimal digits are damaged") from None
    if len(profile) != int(lines[2]):
        raise ValueError(f"it holds {len(profile):,} bytes where its header says {int(lines[2]):,}")
    return profile


def _chunks(png: bytes | memoryview) -> Iterator[tuple[bytes, int, int]]:
    """(kind, start, end) of each chunk, its length and CRC fields included."""
    if bytes(png[: len(PNG_SIGNATURE)]) != PNG_SIGNATURE:
        raise ValueError("not a PNG stream")
    pos = len(PNG_SIGNATURE)
    while pos + 8 <= len(png):
        (length,) = struct.unpack_from(">I", png, pos)
        yield bytes(png[pos + 4 : pos + 8]), pos, pos + 12 + length
        pos += 12 + length


def overrun(png: bytes) -> tuple[bytes, int] | None:
    """The first chunk whose declared length runs past the end of the stream, as (kind,
    length): a cut-off file, or a damaged length, which OpenCV's decoder would try to
    allocate whole (4 GB for a 349-byte file) before failing."""
    for kind, start, end in _chunks(png):
        if end > len(png):
            return kind, end - start - 12
    return None


def code_points(png: bytes) -> cicp.CodePoints | None:
    """The cICP chunk's colour code points (PNG's third edition), which take precedence over
    every other colour chunk; None where there is none before the pixel data, or it is not
    four bytes long (damaged: the other colour chunks then say what they say)."""
    body = _ahead_of(png, b"cICP", (b"PLTE", b"IDAT", b"IEND"))
    return cicp.CodePoints(body[0], body[1], body[2], bool(body[3])) if body is not None and len(body) == 4 else None


_SAMPLES = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # per pixel, by the IHDR's colour type
_INFLATED_AT_ONCE = 1 << 20  # the damage check holds this much of the pixel data at a time, not the whole


def pixel_data_damage(png: bytes) -> str | None:
    """Why the pixel data cannot be decoded, in zlib's words or the rows' ("row 5 names filter
    type 7"): what libpng prints on stderr, naming no file, where OpenCV gives only None. None
    where the data inflates to whole rows of known filters (or the header cannot be read).
    It is inflated a megabyte at a time, never whole."""
    try:
        width, height, depth, colour, _, _, interlaced = struct.unpack_from(">IIBBBBB", png, 16)
        row = 1 + (width * _SAMPLES[colour] * depth + 7) // 8
    except (struct.error, KeyError):
        return None
    inflater, inflated, rows_seen = zlib.decompressobj(), b"", 0
    try:
        for kind, start, end in _chunks(png):
            if kind != b"IDAT":
                continue
            pending = png[start + 8 : end - 4]
            while pending:
                inflated += inflater.decompress(pending, _INFLATED_AT_ONCE)
                pending = inflater.unconsumed_tail
                whole = len(inflated) // row * row
                filters = inflated[:whole:row]  # each row's first byte
                if not interlaced and (bad := next((b for b in filters if b > 4), None)) is not None:
                    return f"row {rows_seen + filters.index(bad) + 1} names filter type {bad} (0 to 4 exist)"
                rows_seen, inflated = rows_seen + whole // row, inflated[whole:]
    except zlib.error as exc:
        return f"the compressed data is damaged (zlib: {str(exc).split(': ', 1)[-1]})"
    except ValueError:  # not a PNG stream after all
        return None
    if not interlaced and rows_seen < height:
        return f"the data holds {rows_seen:,} of {height:,} rows"
    return None


def significant_bits(png: bytes) -> int | None:
    """The deepest channel's count in the sBIT chunk, which a scanner writing 12-bit samples
    into a 16-bit PNG sets to 12; None where the chunk is absent, or says more than the
    samples hold or none at all (a damaged chunk, not a claim)."""
    stored = 8 if png[25:26] == b"\x03" else png[24]  # a palette's colours are 8-bit whatever its index
    body = _ahead_of(png, b"sBIT", (b"IDAT", b"IEND"))
    bits = max(body or b"", default=0)
    return bits if 0 < bits <= stored else None


def _ahead_of(png: bytes, kind: bytes, later: tuple[bytes, ...]) -> bytes | None:
    """The body of the first ``kind`` chunk ahead of any of the chunks ``later`` (where the
    specification puts it); None where there is none there, or the stream is cut off first."""
    for found, start, end in _chunks(png):
        if found in later or end > len(png):
            return None
        if found == kind:
            return png[start + 8 : end - 4]
    return None
