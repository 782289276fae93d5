"""Read a JPEG 2000 file's boxes (JP2) and its codestream's header (JP2 or a bare J2K).

Pillow reads a JP2's size and mode but none of its metadata, and OpenCV decodes the pixels
without a word about their layout: a 12-bit scan comes back in 16-bit samples that use a
sixteenth of the range, and a signed or subsampled one not at all. So the boxes are read
here: the ICC profile, XMP, EXIF, IPTC and GeoJP2 georeferencing that travel to the
derivative, the resolution, the colour space, and the codestream's layout that decides how
(and whether) the pixels are decoded. Only box headers are walked; the codestream itself is
stepped over.
"""
from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
CODESTREAM_START = b"\xff\x4f\xff\x51"  # SOC, then SIZ: how a bare codestream (.j2k) begins
_END_OF_CODESTREAM = b"\xff\xd9"  # EOC: cannot occur inside packet data, so its absence means a cut-off file
_XMP_UUID = bytes.fromhex("be7acfcb97a942e89c71999491e3afac")
_EXIF_UUID = b"JpgTiffExif->JP2"
_IPTC_UUID = bytes.fromhex("33c7a4d2b81d4723a0baf1a3e097ad38")
_GEOJP2_UUID = bytes.fromhex("b14bf8bd083d4b43a5ae8cd7d5a6ce03")  # a 1 x 1 GeoTIFF whose tags place the image
_SUPERBOXES = {b"jp2h", b"res "}

# Enumerated colour spaces (ISO/IEC 15444-1 and -2) the pixels can be read in
SRGB, GREY, SYCC, CMYK = 16, 17, 18, 12
_NAMES = {0: "bilevel", 1: "YCbCr", 3: "YCbCr", 4: "YCbCr", 9: "PhotoYCC", 11: "CMY", 13: "YCCK", 14: "CIELab",
          15: "bilevel", 19: "CIEJab", 20: "e-sRGB", 21: "ROMM-RGB", 22: "YPbPr", 23: "YPbPr", 24: "e-sYCC"}


@dataclass
class Jp2:
    """What the boxes say; a bare codestream has only ``codestream``."""

    codestream: tuple[int, int] | None = None  # where it lies: (start, end)
    cut_off: bool = False  # a box, or the codestream, runs past the end of the file
    damage: str | None = None  # a box that cannot be walked
    icc: bytes | None = None
    colour: int | None = None  # the enumerated colour space, where the file names one and no ICC profile
    palette: bool = False
    xmp: bytes | None = None
    exif: bytes | None = None  # a TIFF structure, as in the EXIF box
    iptc: bytes | None = None
    geotiff: bytes | None = None  # GeoJP2: a scanned map's georeferencing, as the tags of a 1 x 1 GeoTIFF
    gml: bool = False  # GMLJP2: georeferencing as GML in an association box, which is not read
    dpi: tuple[float, float] | None = None  # capture resolution, else display resolution

    @property
    def colour_refusal(self) -> str | None:
        """Why the pixels cannot be read in the colour space the file names, if they cannot."""
        if self.colour is None or self.colour in (SRGB, GREY, SYCC, CMYK):
            return None
        name = _NAMES.get(self.colour, "unknown")
        return (f"JPEG 2000 in colour space {self.colour} ({name}) is not processed; "
                "convert it to sRGB or grey, or embed an ICC profile")


@dataclass(frozen=True)
class Layout:
    """The samples as the codestream's SIZ marker declares them."""

    size: tuple[int, int]  # (width, height) of the image area
    components: int
    precision: tuple[int, ...]  # bits per sample, per component
    signed: bool
    subsampled: bool
    offset: bool  # the image does not start at the reference grid's origin

    @property
    def bits(self) -> int:
        return max(self.precision)

    @property
    def refusal(self) -> str | None:
        """Why these samples are not processed (8- to 16-bit unsigned, full resolution, up to
        four components), if they are not."""
        low, high = min(self.precision), max(self.precision)
        if self.signed:
            what = "signed samples"
        elif low < 8 or high > 16:
            what = f"{low if low < 8 else high}-bit samples"
        elif low != high:
            what = f"components of different precision ({', '.join(map(str, self.precision))} bits)"
        elif self.subsampled:
            what = "subsampled components"
        elif self.components > 4:
            what = f"{self.components} components"
        elif self.offset:
            what = "an image offset from the grid's origin"
        else:
            return None
        return f"JPEG 2000 with {what} is not processed; convert it to 8- or 16-bit unsigned RGB or grey"


def read(data: bytes) -> Jp2:
    """The boxes of a JP2 file, or a bare codestream as it stands."""
    if data.startswith(CODESTREAM_START):
        return _ended(Jp2(codestream=(0, len(data))), data)
    found = Jp2()
    try:
        for kind, start, end in boxes(data, 0, len(data)):
            if end > len(data):
                found.cut_off = True
                break
            _take(found, kind, data, start, end)
    except ValueError as exc:
        found.damage = str(exc)
    return _ended(found, data)


def _ended(found: Jp2, data: bytes) -> Jp2:
    if found.codestream and not found.cut_off:
        start, end = found.codestream
        found.cut_off = _END_OF_CODESTREAM not in data[max(start, end - 16) : end]
    return found


def boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, body start, body end) of each box from ``start``; a body end past the data's
    end means a cut-off file."""
    at = start
    while at + 8 <= end:
        length, kind = struct.unpack_from(">I4s", data, at)
        header = 8
        if length == 1:
            if at + 16 > end:
                yield kind, at + 16, at + 17  # its extended length is itself cut off
                return
            (length,) = struct.unpack_from(">Q", data, at + 8)
            header = 16
        elif length == 0:  # the last box: it runs to the end of the file
            length = end - at
        if length < header:
            raise ValueError(f"box {kind!r} at byte {at} declares {length} bytes")
        yield kind, at + header, at + length
        at += length


_READERS = {b"colr", b"pclr", b"resc", b"resd", b"uuid"}  # the boxes whose bodies are read


def _take(found: Jp2, kind: bytes, data: bytes, start: int, end: int) -> None:
    if kind in _SUPERBOXES:
        for inner, inner_start, inner_end in boxes(data, start, end):
            if inner_end > end:
                raise ValueError(f"box {inner!r} runs past the end of its {kind!r} box")
            _take(found, inner, data, inner_start, inner_end)
    elif kind == b"jp2c" and found.codestream is None:
        found.codestream = (start, end)
    elif kind == b"asoc":  # labelled "gml.data" (GMLJP2), its label the first box within
        found.gml = found.gml or b"lbl gml." in data[start:start + 64]
    elif kind in _READERS:
        _take_body(found, kind, data[start:end])


def _take_body(found: Jp2, kind: bytes, body: bytes) -> None:
    if kind == b"colr" and len(body) >= 3:
        _take_colour(found, body)
    elif kind == b"pclr":
        found.palette = True
    elif kind in (b"resc", b"resd") and len(body) >= 10 and (found.dpi is None or kind == b"resc"):
        found.dpi = _dpi(body) or found.dpi
    elif kind == b"uuid" and len(body) > 16:
        _take_uuid(found, body[:16], body[16:])


def _take_colour(found: Jp2, body: bytes) -> None:
    method = body[0]
    if method in (2, 3) and found.icc is None:  # restricted (JP2) or any (JPX) ICC profile
        found.icc = body[3:]
        found.colour = None
    elif method == 1 and len(body) >= 7 and found.icc is None and found.colour is None:
        (found.colour,) = struct.unpack_from(">I", body, 3)


def _take_uuid(found: Jp2, uuid: bytes, payload: bytes) -> None:
    if uuid == _XMP_UUID and found.xmp is None:
        found.xmp = payload
    elif uuid == _EXIF_UUID and found.exif is None:
        found.exif = payload[6:] if payload.startswith(b"Exif\x00\x00") else payload
    elif uuid == _IPTC_UUID and found.iptc is None:
        found.iptc = payload
    elif uuid == _GEOJP2_UUID and found.geotiff is None:
        found.geotiff = payload


def _dpi(body: bytes) -> tuple[float, float] | None:
    """Pixels per metre (numerator / denominator × 10^exponent, vertical first) as dots per inch."""
    v_num, v_den, h_num, h_den, v_exp, h_exp = struct.unpack_from(">HHHHbb", body)
    if not (v_num and v_den and h_num and h_den):
        return None
    per_metre = (h_num / h_den * 10.0**h_exp, v_num / v_den * 10.0**v_exp)
    return (per_metre[0] * 0.0254, per_metre[1] * 0.0254)


def layout(data: bytes, codestream: tuple[int, int]) -> Layout:
    """The codestream's SIZ marker; ValueError where there is none to read."""
    start, end = codestream
    if data[start : start + 4] != CODESTREAM_START:
        raise ValueError("the codestream does not begin with its SOC and SIZ markers")
    at = start + 4
    if at + 38 > end:
        raise ValueError("the codestream's SIZ marker is cut short")
    _, _, width, height, x_offset, y_offset, _, _, _, _, count = struct.unpack_from(">HHIIIIIIIIH", data, at)
    if count < 1 or at + 38 + 3 * count > end:
        raise ValueError(f"the SIZ marker declares {count} components it does not hold")
    components = [struct.unpack_from(">BBB", data, at + 38 + 3 * i) for i in range(count)]
    return Layout(
        size=(width - x_offset, height - y_offset),
        components=count,
        precision=tuple((size & 0x7F) + 1 for size, _, _ in components),
        signed=any(size & 0x80 for size, _, _ in components),
        subsampled=any((dx, dy) != (1, 1) for _, dx, dy in components),
        offset=bool(x_offset or y_offset),
    )
