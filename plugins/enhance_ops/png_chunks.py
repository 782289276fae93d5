"""Add metadata chunks to an encoded PNG.

PNGs are encoded by OpenCV (the only encoder here that writes 16-bit colour), which writes
no metadata, so EXIF, ICC, XMP, resolution and text are added here as standard chunks.
"""
from __future__ import annotations

import struct
import zlib

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_METADATA_CHUNKS = {b"iCCP", b"sRGB", b"gAMA", b"cHRM", b"pHYs", b"eXIf", b"iTXt", b"tEXt", b"zTXt"}


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def iccp(profile: bytes) -> bytes:
    return chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(profile))


def exif(tiff_data: bytes) -> bytes:
    return chunk(b"eXIf", tiff_data)


def phys(dpi: tuple[float, float]) -> bytes:
    per_metre = [max(1, round(d / 0.0254)) for d in dpi]
    return chunk(b"pHYs", struct.pack(">IIB", per_metre[0], per_metre[1], 1))


def itxt(keyword: str, text: str) -> bytes:
    return chunk(b"iTXt", keyword.encode("latin-1") + b"\x00\x00\x00\x00\x00" + text.encode("utf-8"))


def _split(png: bytes | memoryview) -> list[tuple[bytes, bytes | memoryview]]:
    if bytes(png[: len(PNG_SIGNATURE)]) != PNG_SIGNATURE:
        raise ValueError("not a PNG stream")
    pos, chunks = len(PNG_SIGNATURE), []
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind = bytes(png[pos + 4 : pos + 8])
        chunks.append((kind, png[pos : pos + 12 + length]))
        pos += 12 + length
    return chunks


def insert_after_header(png: bytes | memoryview, new_chunks: list[bytes]) -> bytes:
    """Replace the stream's own metadata chunks with ``new_chunks``, placed right after IHDR.
    (A memoryview of the encoder's buffer is only copied once, into the result.)"""
    parts = [PNG_SIGNATURE]
    for kind, raw in _split(png):
        if kind in _METADATA_CHUNKS:
            continue
        parts.append(raw)
        if kind == b"IHDR":
            parts.extend(new_chunks)
    return b"".join(parts)
