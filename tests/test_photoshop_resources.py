"""Photoshop's copyright status, its URL and the IPTC digest travel beside the IPTC records."""
from __future__ import annotations

import hashlib
import io
import struct
import tracemalloc

import numpy as np
import tifffile
from conftest import photo, save
from PIL import Image

from enhance_ops import codecs, encoders, photoshop_resources
from enhance_ops import derivative_metadata as dmd

PROV = encoders.Provenance("archive-enhance test", "Enhanced derivative, not the archival master: test")
RGB8 = (photo("coffee", 32, top=100, left=220) * 255 + 0.5).astype(np.uint8)
IPTC = b"".join(b"\x1c" + struct.pack(">BBH", 2, field, len(value)) + value
                for field, value in ((120, "Hafen bei Ebbe, 1931".encode()), (116, b"(c) City Archive 1931")))
URL = b"https://archive.example.org/rights/in-copyright"
GUIDES = struct.pack(">IIII", 1, 576, 576, 0)  # grid and guides, with none of the latter
OUTLINE = bytes(26 * 3)  # a saved path (an object's outline) of three records


def resource(ident: int, data: bytes, name: bytes = b"\x00\x00") -> bytes:
    return b"8BIM" + struct.pack(">H", ident) + name + struct.pack(">I", len(data)) + data + b"\x00" * (len(data) % 2)


STORED = b"".join([resource(0x03ED, bytes(16)),  # resolution: the derivative states its own
                   resource(0x040A, b"\x01"), resource(0x040B, URL), resource(0x0408, GUIDES),
                   resource(0x07D0, OUTLINE, b"\x07Outline"),
                   resource(0x0404, IPTC), resource(0x0425, hashlib.md5(IPTC).digest())])


def app13(*bodies: bytes) -> bytes:
    return b"".join(b"\xff\xed" + struct.pack(">H", len(body) + 16) + b"Photoshop 3.0\x00" + body for body in bodies)


def resources_of_jpeg(data: bytes) -> dict[int, bytes]:
    """Each APP13 resource of a JPEG, read by hand (Pillow reads a segment at a time)."""
    stored = photoshop_resources.from_jpeg([s for app, s in Image.open(io.BytesIO(data)).applist if app == "APP13"])
    return {r.ident: r.data for r in photoshop_resources.read(stored)[0]}


def enhanced(master: bytes, fmt: str) -> tuple[bytes, list[str]]:
    decoded = codecs.decode(master)
    meta, fitted = dmd.fitted_to(decoded.metadata, fmt)
    out = encoders.encode(decoded.pixels, decoded.alpha, fmt=fmt, bit_depth=decoded.bit_depth, meta=meta, scale=2.0,
                          provenance=PROV)
    return out, decoded.notes + fitted


CARRIED = {0x040A: b"\x01", 0x040B: URL, 0x0404: IPTC, 0x0425: hashlib.md5(IPTC).digest()}
EDITING = "Photoshop resources not carried: path (0x07D0)"  # and not the guides


def test_a_jpegs_copyright_status_url_and_iptc_digest_travel_and_its_editing_is_named() -> None:
    out, notes = enhanced(save(RGB8, "JPEG", extra=app13(STORED)), "JPEG")
    assert resources_of_jpeg(out) == CARRIED
    assert notes == [EDITING]


def test_a_tiffs_resources_travel_in_its_own_tag() -> None:
    buf = io.BytesIO()
    tifffile.imwrite(buf, RGB8, photometric="rgb", extratags=[(34377, "B", len(STORED), STORED, True)])
    out, notes = enhanced(buf.getvalue(), "TIFF")
    with tifffile.TiffFile(io.BytesIO(out)) as tif:
        tags = tif.pages.first.tags
        carried = {r.ident: r.data for r in photoshop_resources.read(tags.valueof(34377))[0]}
        assert carried == CARRIED and tags.valueof(33723) == IPTC
    assert notes == [EDITING]


def test_resources_spanning_two_segments_are_read_whole() -> None:
    """Past one segment's 64 kB Photoshop goes on in the next; Pillow read the first part of
    the records and lost the rest."""
    keywords = b"".join(b"\x1c" + struct.pack(">BBH", 2, 25, 12) + b"keyword %04d" % i for i in range(4_500))
    stored = resource(0x040A, b"\x01") + resource(0x0404, keywords)
    out, _ = enhanced(save(RGB8, "JPEG", extra=app13(stored[:40_000], stored[40_000:])), "TIFF")
    with tifffile.TiffFile(io.BytesIO(out)) as tif:
        assert tif.pages.first.tags.valueof(33723) == keywords


def test_a_png_holds_them_as_imagemagick_does_and_a_webp_says_it_has_no_place_for_them() -> None:
    """PNG has no chunk for either: ImageMagick keeps them as raw profile text, which it and
    exiftool read."""
    out, notes = enhanced(save(RGB8, "JPEG", extra=app13(STORED)), "PNG")
    assert notes == [EDITING]
    assert {r.ident: r.data for r in codecs.decode(out).metadata.photoshop} == {0x040A: b"\x01", 0x040B: URL,
                                                                                  0x0425: CARRIED[0x0425]}
    assert codecs.decode(out).metadata.iptc == IPTC
    _, notes = enhanced(save(RGB8, "JPEG", extra=app13(STORED)), "WEBP")
    assert notes == [EDITING, "IPTC records and Photoshop resources (copyright flag, URL, IPTC digest) not carried: "
                              "WEBP has no place for them"]


def test_the_digest_is_not_carried_without_the_records_it_was_taken_of() -> None:
    keywords = b"".join(b"\x1c" + struct.pack(">BBH", 2, 25, 12) + b"keyword %04d" % i for i in range(6_000))
    stored = resource(0x040A, b"\x01") + resource(0x0404, keywords) + resource(0x0425, hashlib.md5(keywords).digest())
    buf = io.BytesIO()
    tifffile.imwrite(buf, RGB8, photometric="rgb", extratags=[(34377, "B", len(stored), stored, True)])
    out, notes = enhanced(buf.getvalue(), "JPEG")
    assert resources_of_jpeg(out) == {0x040A: b"\x01"}
    assert notes == ["IPTC records of 102,000 bytes not carried: a JPEG holds 65,464"]


def test_damaged_resources_keep_those_before_the_damage() -> None:
    damaged = resource(0x040A, b"\x01") + resource(0x040B, URL)[:30]
    out, notes = enhanced(save(RGB8, "JPEG", extra=app13(damaged)), "JPEG")
    assert resources_of_jpeg(out) == {0x040A: b"\x01"}
    assert notes == ["Photoshop resources damaged after 14 of 44 bytes: the rest not read"]


def test_a_layered_tiffs_layers_are_named_and_never_read() -> None:
    """Pillow read a directory's every value as it opened it: 50 MB of Photoshop's layers had
    cost 245 MB on the way to the EXIF reader, for a tag nothing carries."""
    layers = bytes(20_000_000)
    buf = io.BytesIO()
    tifffile.imwrite(buf, RGB8, photometric="rgb", extratags=[(37724, 7, len(layers), layers, True)])
    master = buf.getvalue()
    del layers
    tracemalloc.start()
    decoded = codecs.decode(master)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 5_000_000  # a 32 x 32 scan's worth; the layers were read whole
    assert decoded.notes == ["Photoshop's layers (20,000,000 bytes of ImageSourceData) not carried: the derivative is "
                             "made from the flattened image"]
    np.testing.assert_array_equal(np.rint(decoded.pixels * 255), RGB8)
