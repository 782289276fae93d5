"""Extended XMP: the part of a JPEG's XMP past what one segment holds.

A JPEG segment holds 64 kB, so Photoshop and Lightroom move what does not fit (a long
History, DocumentAncestors, Camera Raw settings) into further APP1 segments, each with the
MD5 of the whole extension as its GUID, which the main packet names in
``xmpNote:HasExtendedXMP`` (XMP Specification Part 3, 1.1.3.1). Pillow reads the main packet
alone, so the rest was left out of the derivative without a word, and the main packet
pointed at nothing. A JPEG derivative carries the extension's segments as they were; a
derivative in another format, whose XMP is one packet of any size, gets the extension's
descriptions merged into the main packet, as the specification has readers do.
"""
from __future__ import annotations

import hashlib
import re
import struct
import xml.etree.ElementTree as ET

SIGNATURE = b"http://ns.adobe.com/xmp/extension/\x00"
_CHUNK = 65400  # of the extension in each segment, as Adobe writes it (at most 65,458 fit)
_GUID = re.compile(rb"""xmpNote:HasExtendedXMP\s*(?:=\s*["']|>)\s*([0-9A-Fa-f]{32})""")
# The pointer in either form: an attribute, or an element (exiftool's). Each pattern opens with
# text of its own, so a long run of a packet's padding is not tried from each of its bytes
# (300 kB of it had taken 87 s).
_POINTER = re.compile(rb"""xmpNote:HasExtendedXMP\s*=\s*["'][0-9A-Fa-f]{32}["']"""
                      rb"|<xmpNote:HasExtendedXMP>\s*[0-9A-Fa-f]{32}\s*</xmpNote:HasExtendedXMP>")
_PACKET_WRAPPER = re.compile(rb"<\?xpacket[^<>]*\?>")


def guid_of(main: bytes | None) -> str | None:
    """The GUID the main packet names for its extension, if it names one."""
    found = main and _GUID.search(main)
    return found.group(1).decode().upper() if found else None


def read(segments: list[bytes], main: bytes | None) -> tuple[bytes | None, list[str]]:
    """The extension the main packet names, put together from the APP1 ``segments`` that hold
    extended XMP, and a note where it cannot be (missing, cut short, or not what its GUID says)."""
    guid = guid_of(main)
    parts: dict[int, bytes] = {}
    length = None
    for segment in segments:
        body = segment[len(SIGNATURE):]
        if len(body) < 40 or body[:32].decode("latin-1").upper() != guid:
            continue
        length, offset = struct.unpack(">II", body[32:40])
        parts[offset] = body[40:]
    if guid is None:
        return None, (["extended XMP without a main packet that names it: not carried"] if segments else [])
    whole = b"".join(parts[offset] for offset in sorted(parts))
    if not parts or len(whole) != length or sorted(parts) != _offsets(parts):
        return None, [f"extended XMP {guid} named by the XMP is missing or incomplete: not carried"]
    if hashlib.md5(whole).hexdigest().upper() != guid:
        return None, [f"extended XMP {guid} does not match its GUID (damaged): not carried"]
    return whole, []


def _offsets(parts: dict[int, bytes]) -> list[int]:
    """Where each part must start for the parts to follow one another without gap or overlap."""
    starts, at = [], 0
    for offset in sorted(parts):
        starts.append(at)
        at += len(parts[offset])
    return starts


def jpeg_segments(main: bytes, extension: bytes) -> bytes:
    """APP1 segments of the main packet and then of its extension, in Adobe's layout."""
    guid = hashlib.md5(extension).hexdigest().upper().encode()
    out = [b"\xff\xe1" + struct.pack(">H", 2 + 29 + len(main)) + b"http://ns.adobe.com/xap/1.0/\x00" + main]
    for offset in range(0, len(extension), _CHUNK):
        chunk = extension[offset:offset + _CHUNK]
        body = SIGNATURE + guid + struct.pack(">II", len(extension), offset) + chunk
        out.append(b"\xff\xe1" + struct.pack(">H", 2 + len(body)) + body)
    return b"".join(out)


def merged(main: bytes, extension: bytes) -> bytes | None:
    """One packet: the extension's descriptions after the main packet's, its pointer to the
    extension dropped; None where either is not XMP that parses."""
    inner = _rdf_content(extension)
    if inner is None or _rdf_content(main) is None:
        return None
    joined = _POINTER.sub(b"", main, count=1)
    end = joined.rindex(b"</rdf:RDF>")
    joined = joined[:end] + inner + joined[end:]
    try:
        ET.fromstring(_PACKET_WRAPPER.sub(b"", joined))
    except ET.ParseError:
        return None
    return joined


def _rdf_content(packet: bytes) -> bytes | None:
    """What the packet's rdf:RDF element holds (found by position: a pattern had taken the
    square of a hostile packet's size); None where it has none."""
    start = packet.find(b"<rdf:RDF")
    opened = packet.find(b">", start)
    end = packet.rfind(b"</rdf:RDF>")
    return packet[opened + 1:end] if -1 < start < opened < end else None
