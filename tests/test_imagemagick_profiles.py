"""The EXIF and XMP older ImageMagick kept as PNG text are read as the master's, and travel as such."""
from __future__ import annotations

import io
import struct

import numpy as np
import piexif
import pytest
from conftest import photo
from PIL import Image, PngImagePlugin

from enhance_ops import codecs, encoders

RGB8 = (photo("coffee", 24, top=150, left=250) * 255 + 0.5).astype(np.uint8)
RAW = "Raw profile type "  # ImageMagick's keyword
PROV = encoders.Provenance("archive-enhance test", "Enhanced derivative, not the archival master: test")
EXIF = piexif.dump({"0th": {piexif.ImageIFD.Make: b"Epson"},
                    "Exif": {piexif.ExifIFD.DateTimeOriginal: b"1962:05:01 10:00:00"}})  # "Exif\0\0" and TIFF
XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
       b'<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/" dc:source="Box 12, folder 3"/>'
       b"</rdf:RDF></x:xmpmeta>")


def raw_profile(name: str, profile: bytes) -> str:
    """A profile as ImageMagick writes it into PNG text (png.c: name, length, 72 hex digits a line)."""
    digits = profile.hex()
    return f"\n{name}\n{len(profile):8d}\n" + "".join(digits[at:at + 72] + "\n" for at in range(0, len(digits), 72))


def imagemagick_png(**profiles: str) -> bytes:
    info = PngImagePlugin.PngInfo()
    for name, text in profiles.items():
        info.add_text(RAW + name, text, zip=True)
    buf = io.BytesIO()
    Image.fromarray(RGB8).save(buf, "PNG", pnginfo=info)
    return buf.getvalue()


@pytest.mark.parametrize("name", ["exif", "APP1"])
def test_exif_kept_as_text_is_the_masters_exif_and_reaches_the_derivative(name: str) -> None:
    """It had been dropped as text and never read: the capture date was lost without a note."""
    decoded = codecs.decode(imagemagick_png(**{name: raw_profile(name, EXIF)}))
    assert decoded.metadata.exif["Exif"][piexif.ExifIFD.DateTimeOriginal] == b"1962:05:01 10:00:00"
    assert decoded.notes == []
    out = encoders.encode(decoded.pixels, None, fmt="PNG", bit_depth=8, meta=decoded.metadata, scale=2.0,
                          provenance=PROV)
    derivative = Image.open(io.BytesIO(out))
    assert derivative.getexif()[piexif.ImageIFD.Make] == "Epson"
    assert not any(key.startswith(RAW) for key in derivative.info)  # the eXIf chunk alone


def test_xmp_kept_as_text_is_the_masters_xmp() -> None:
    decoded = codecs.decode(imagemagick_png(xmp=raw_profile("xmp", XMP)))
    assert decoded.metadata.xmp == XMP and RAW + "xmp" not in decoded.metadata.text
    out = encoders.encode(decoded.pixels, None, fmt="JPEG", bit_depth=8, meta=decoded.metadata, scale=2.0,
                          provenance=PROV)
    assert b"Box 12, folder 3" in Image.open(io.BytesIO(out)).info["xmp"]


def test_a_damaged_profile_text_is_named() -> None:
    damaged = raw_profile("exif", EXIF).replace("45786966", "45786g66")  # "Exif" with a digit gone bad
    decoded = codecs.decode(imagemagick_png(exif=damaged))
    assert decoded.metadata.exif is None
    assert decoded.notes == ["ImageMagick's 'Raw profile type exif' text not read: its hexadecimal digits are damaged"]


IPTC = b"\x1c\x02\x78" + struct.pack(">H", 14) + b"Hafen bei Ebbe"
COPYRIGHTED = b"8BIM" + struct.pack(">HHI", 0x040A, 0, 1) + b"\x01\x00"


@pytest.mark.parametrize("profile", [IPTC, COPYRIGHTED + b"8BIM" + struct.pack(">HHI", 0x0404, 0, len(IPTC)) + IPTC
                                     + b"\x00"],
                         ids=["records", "photoshop resources"])
def test_iptc_kept_as_text_is_the_masters_iptc_and_a_png_derivative_writes_it_so(profile: bytes) -> None:
    """ImageMagick keeps IPTC as text, the records or Photoshop's resources holding them; they
    were carried to a PNG as text but never read, and a JPEG or TIFF of the PNG lost them."""
    decoded = codecs.decode(imagemagick_png(iptc=raw_profile("iptc", profile)))
    assert decoded.metadata.iptc == IPTC and RAW + "iptc" not in decoded.metadata.text
    for fmt in ("JPEG", "PNG"):
        out = encoders.encode(decoded.pixels, None, fmt=fmt, bit_depth=8, meta=decoded.metadata, scale=2.0,
                              provenance=PROV)
        assert codecs.decode(out).metadata.iptc == IPTC, fmt
    assert Image.open(io.BytesIO(out)).info[RAW + "iptc"] == raw_profile("iptc", profile)  # as ImageMagick writes it
