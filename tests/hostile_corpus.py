"""A corpus of the odd files archives hold, built from a real photograph, each with what must happen to it.

Every entry is ``name → Case(bytes, expected)``: ``expected`` is ``"ok"`` (a correct derivative
with its metadata) or the error code its ledger row must carry. Everything is small.
"""
from __future__ import annotations

import hashlib
import io
import struct
import zlib
from dataclasses import dataclass, field

import heif_files
import imagecodecs
import jp2_files
import numpy as np
import photoshop_files
import piexif
import tifffile
from colour_files import cmyk_profile, lab16
from PIL import Image
from skimage import data as skdata

from enhance_ops.chain.icc import SPACES, build_profile
from enhance_ops.photoshop_resources import Resource


@dataclass
class Case:
    data: bytes
    expected: str  # "ok" or an error code
    upright: tuple[int, int] | None = None  # (width, height) as displayed, for "ok" cases
    exif_make: str | None = None  # the EXIF Make the derivative must keep
    icc: bytes | None = None  # the ICC profile the derivative must keep
    notes: list[str] = field(default_factory=list)  # words the ledger notes must contain
    pages: int = 1  # the pages of the derivative
    incomplete: bool = False  # the derivative lacks pages or frames of the master: held for review
    damaged: bool = False  # the decoder found the master's pixel data damaged: held for review


EXIF = {"0th": {piexif.ImageIFD.Make: b"Epson", piexif.ImageIFD.Model: b"V850"}, "Exif": {}}
# A camera's MakerNote (``note``): its lens, body and serial number, in a block where it lies at NOTE_AT.
LENS, BODY = b"EF100mm f/2.8L MACRO IS USM\x00", b"Canon EOS 5DS R\x00"
SERIAL = 0x2A0B16F3
NOTE_AT = 44  # after the header, an IFD0 of one entry and an Exif directory of one entry


def _photo(width: int, height: int) -> np.ndarray:
    cat = skdata.chelsea()
    return np.ascontiguousarray(np.asarray(Image.fromarray(cat).resize((width, height), Image.LANCZOS)))


def _save(image: Image.Image, fmt: str, **options: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **options)
    return buf.getvalue()


def _avif_p3_10bit(rgb: np.ndarray) -> bytes:
    """A 10-bit Display P3 AVIF, as a phone stores a photograph, its colour named by an nclx box."""
    return imagecodecs.avif_encode(rgb.astype(np.uint16) << 2 | rgb >> 6, level=95, bitspersample=10, primaries=12,
                                   transfer=13)


def _png_bomb(width: int, height: int) -> bytes:
    """A valid greyscale PNG of width × height zeros: a few kB that decode to width·height bytes."""
    raw = zlib.compress(b"".join(b"\x00" + bytes(width) for _ in range(height)), 9)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def _chunk_length(png: bytes, kind: bytes, length: int) -> bytes:
    """The PNG with ``kind``'s declared length changed, its data left as it is."""
    data = bytearray(png)
    struct.pack_into(">I", data, data.index(kind) - 4, length)
    return bytes(data)


def bmp_16_bits(rgb: np.ndarray, green_bits: int) -> bytes:
    """A BMP of 16 bits a pixel in bitfields, 5-6-5 or 5-5-5, with a BITMAPV5HEADER naming the masks."""
    height, width = rgb.shape[:2]
    r, g, b = (rgb[::-1, :, i].astype(np.uint16) for i in range(3))
    pixels = (r >> 3) << (5 + green_bits) | (g >> (8 - green_bits)) << 5 | b >> 3
    pad = (-2 * width) % 4
    body = b"".join(row.astype("<u2").tobytes() + bytes(pad) for row in pixels)
    masks = (0x1F << (5 + green_bits), ((1 << green_bits) - 1) << 5, 0x1F, 0)
    info = struct.pack("<IiiHHIIiiII", 124, width, height, 1, 16, 3, len(body), 2835, 2835, 0, 0)
    info += struct.pack("<IIII", *masks) + b"BGRs" + bytes(124 - 60)
    return b"BM" + struct.pack("<IHHI", 14 + len(info) + len(body), 0, 0, 14 + len(info)) + info + body


def _with_app1(jpeg: bytes, payload: bytes) -> bytes:
    """Put an APP1 segment with ``payload`` right after the JPEG's SOI marker."""
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def build() -> dict[str, Case]:
    rgb = _photo(24, 16)
    jpeg = _save(Image.fromarray(rgb), "JPEG", quality=92, exif=piexif.dump(EXIF))
    png = _save(Image.fromarray(rgb), "PNG")
    tiff = _save(Image.fromarray(rgb), "TIFF", compression="tiff_lzw")
    cases = {
        "truncated.jpg": Case(jpeg[: len(jpeg) // 2], "truncated"),
        "recompressed.jxl": Case(imagecodecs.jpegxl_encode_jpeg(jpeg), "ok", (24, 16), exif_make="Epson",
                                 notes=["a JPEG XL holding a JPEG recompressed without loss"]),
        "bit-rot.jpg": Case(bit_flipped(jpeg), "ok", (24, 16), exif_make="Epson",
                            notes=["pixel data is damaged (libjpeg: Corrupt JPEG data"], damaged=True),
        "bit-rot-deflate.tif": Case(_deflate_rotted(rgb), "ok", (24, 16),
                                    notes=["TIFF's pixel data is damaged (strip 1 of 2 cannot be expanded"], damaged=True),
        "bit-rot-group4.tif": Case(_ccitt_rotted(rgb, "group4"), "ok", (24, 16),
                                   notes=["TIFF's pixel data is damaged (strip 1 of 1: no code word at row"],
                                   damaged=True),
        "bit-rot-fax.tif": Case(_ccitt_rotted(rgb, "group3", {292: 5}), "ok", (24, 16),  # 2-D, fill bits
                                notes=["TIFF's pixel data is damaged (strip 1 of 1: "], damaged=True),
        "truncated.png": Case(png[: len(png) // 2], "truncated"),
        "chunk-length-damaged.png": Case(_chunk_length(png, b"IDAT", 64 << 20), "truncated"),
        "truncated.tif": Case(tiff[: len(tiff) // 3], "truncated"),
        "zero-bytes.jpg": Case(b"", "empty_file"),
        "a-letter.png": Case(b"Dear archivist,\nthis is not a picture.\n" * 20, "not_an_image"),
        "bomb.png": Case(_png_bomb(6000, 6000), "too_large"),  # 36 Mpx in a few kB; the run allows 4 Mpx
        "rgb565.bmp": Case(bmp_16_bits(rgb, 6), "ok", (24, 16)),  # OpenCV reads no 16-bit bitfields
        "cmyk.jpg": Case(_save(Image.fromarray(rgb).convert("CMYK"), "JPEG", quality=92), "ok", (24, 16)),
        "animated.gif": Case(_save(Image.fromarray(rgb), "GIF", save_all=True,
                                   append_images=[Image.fromarray(rgb[::-1])], duration=100), "ok", (24, 16),
                             notes=["frames"], incomplete=True),
        "transparent.gif": Case(_save(Image.fromarray(rgb).quantize(32), "GIF", transparency=0), "ok", (24, 16)),
        "truncated.gif": Case(_save(Image.fromarray(rgb), "GIF")[:-40], "truncated"),
        "animated.webp": Case(_save(Image.fromarray(rgb), "WEBP", save_all=True, lossless=True,
                                    append_images=[Image.fromarray(rgb[::-1])], duration=100), "ok", (24, 16),
                              notes=["frames"], incomplete=True),
        "camera-preview.jpg": Case(multi_picture(rgb, 0x010002, exif=piexif.dump(EXIF)), "ok", (24, 16),
                                   exif_make="Epson", notes=["1 reduced copy (a preview)"]),
        "stereo-pair.mpo": Case(multi_picture(rgb, 0x020002), "ok", (24, 16), notes=["1 other view"], incomplete=True),
        "multipage.tif": Case(_multipage(rgb), "ok", (24, 16), pages=3),
        "multipage-cut-page.tif": Case(_page_cut_off(_multipage(rgb), 1), "truncated"),
        "multipage-cut-chain.tif": Case(_chain_cut_after(_multipage(rgb), 1), "ok", (24, 16),
                                        notes=["pages after the first cannot be read"], incomplete=True),
        "damaged-tag.tif": Case(_tag_past_the_end(rgb, 315), "ok", (24, 16), notes=["TIFF tag 315 (Artist) is damaged"]),
        "extended-xmp.jpg": Case(extended_xmp(rgb)[0], "ok", (24, 16)),
        "map.tif": Case(_map(rgb), "ok", (24, 16)),
        "camera-maker-note.jpg": Case(_save(Image.fromarray(rgb), "JPEG", quality=92, exif=exif_block(note(NOTE_AT))),
                                      "ok", (24, 16)),
        "photoshop-layers.tif": Case(_photoshop_layered(rgb), "ok", (24, 16), notes=["Photoshop's layers (5,000 bytes"]),
        "tag-count-damaged.tif": Case(_count_damaged(rgb, adobe := build_profile(SPACES["Adobe RGB"])), "ok", (24, 16),
                                      exif_make="Epson", icc=adobe, notes=["TIFF tag 270 (ImageDescription) is damaged"]),
        "bilevel.tif": Case(_save(Image.fromarray(rgb).convert("1"), "TIFF"), "ok", (24, 16)),
        "grey16.tif": Case(_grey16(rgb), "ok", (24, 16)),
        "scan-12bit.tif": Case(_rgb12(rgb), "ok", (24, 16), exif_make="Epson"),  # Pillow has no mode for these two
        "grey16-alpha.tif": Case(_grey16_alpha(rgb), "ok", (24, 16)),
        "cmyk16.tif": Case(_cmyk16(rgb), "ok", (24, 16), exif_make="Epson"),  # Pillow's CMYK and LAB are 8-bit
        "cmyk-alpha.tif": Case(_cmyk_alpha(rgb), "ok", (24, 16), notes=["CMYK converted to sRGB through the embedded"]),
        "lab16.tif": Case(_tiff(lab16(np.ascontiguousarray(rgb), "cielab"), photometric="cielab"), "ok", (24, 16)),
        "float32.tif": Case(_float32(rgb), "unsupported_image"),  # sound, but not 8- or 16-bit
        "tiled.tif": Case(_tiled(rgb), "ok", (24, 16)),  # uncompressed 8-bit tiles: OpenCV 5 reads none
        "palette-transparent.png": Case(_palette_transparent(rgb), "ok", (24, 16)),
        "broken-exif.jpg": Case(_with_app1(_save(Image.fromarray(rgb), "JPEG"), b"Exif\x00\x00MM\x00*\xff\xff\xff\xff"),
                                "ok", (24, 16), notes=["EXIF"]),
        "oversized-exif.jpg": Case(_oversized_exif(rgb), "ok", (24, 16), exif_make="Epson"),
        "full-exif.jpg": Case(_oversized_exif(rgb, 65_400), "ok", (24, 16), exif_make="Epson",  # no room left
                              notes=["EXIF tag 37510 (UserComment) of 65,400 bytes not carried"]),
        "exif-count-bomb.jpg": Case(_exif_count_bomb(rgb), "ok", (24, 16), exif_make="Epson",
                                    notes=["XResolution) in the 0th directory declares 50,000,000 values"]),
        "rights-in-utf8.jpg": Case(_save(Image.fromarray(rgb), "JPEG", exif=piexif.dump(
            {"0th": {**EXIF["0th"], piexif.ImageIFD.Copyright: "© Stadtarchiv München".encode()}, "Exif": {}})),
            "ok", (24, 16), exif_make="Epson"),
        "lens-in-utf8.tif": Case(_sub_ifd_text(rgb), "ok", (24, 16), exif_make="Epson"),
        "adobe-rgb.jpg": Case(_save(Image.fromarray(rgb), "JPEG", icc_profile=build_profile(SPACES["Adobe RGB"])),
                              "ok", (24, 16), icc=build_profile(SPACES["Adobe RGB"])),
        "display-p3.png": Case(_save(Image.fromarray(rgb), "PNG", icc_profile=build_profile(SPACES["Display P3"])),
                               "ok", (24, 16), icc=build_profile(SPACES["Display P3"])),
        "line-1x5000.png": Case(_save(Image.fromarray(_photo(1, 5000)), "PNG"), "ok", (1, 5000)),
        "film-strip-20x700.png": Case(_save(Image.fromarray(_photo(700, 20)), "PNG"), "ok", (700, 20)),
        "tiny-1x1.png": Case(_save(Image.fromarray(_photo(1, 1)), "PNG"), "ok", (1, 1)),
        "tiny-7x7.jpg": Case(_save(Image.fromarray(_photo(7, 7)), "JPEG"), "ok", (7, 7)),
        # libjpeg scales no lossless JPEG: the damage check had it overrun its buffer, and the shard died
        "scan-12bit.jpg": Case(_jpeg_12bit(rgb), "ok", (24, 16), exif_make="Epson"),  # read by deep_jpeg, as PNG
        "lossless-grey.jpg": Case(imagecodecs.jpeg8_encode(np.ascontiguousarray(rgb[:, :, 1]), lossless=True), "ok",
                                  (24, 16)),
        # a deep scan's damage is checked with its frame header told 8 bits: libjpeg reads its scan so
        "lossless-16bit.jpg": Case(imagecodecs.jpeg8_encode(rgb.astype(np.uint16) * 257, lossless=True,
                                                            bitspersample=16), "ok", (24, 16)),
        "scan-12bit.jp2": Case(_jp2_12bit(rgb), "ok", (16, 24), exif_make="Epson",
                               icc=build_profile(SPACES["Adobe RGB"])),
        "truncated.jp2": Case(jp2_files.jp2(rgb)[:-60], "truncated"),
        "signed.j2k": Case(jp2_files.codestream(rgb.astype(np.int16) - 128), "unsupported_image"),
        "scan-12bit.pgm": Case(netpbm(5, np.rint(rgb.mean(axis=2) * (4095 / 255)).astype(np.uint16), 4095), "ok",
                               (24, 16)),
        "scan-16bit.pgm": Case(netpbm(5, (rgb.mean(axis=2) * 257).astype(np.uint16), 65535), "ok", (24, 16)),
        "truncated.ppm": Case(netpbm(6, rgb, 255)[:-30], "truncated"),
        "camera.dng": Case(tiff_raw(rgb[::4, ::4], [(50706, "B", 4, (1, 4, 0, 0), True)]), "unsupported_image"),
        "p3-10bit.avif": Case(_avif_p3_10bit(rgb), "ok", (24, 16),
                              notes=["colour named by the AVIF's nclx colour box (Display P3"]),
        "turned.avif": Case(_save(Image.fromarray(_stored_for(rgb, 6)), "AVIF", quality=95, exif=piexif.dump(
            {"0th": {**EXIF["0th"], piexif.ImageIFD.Orientation: 6}, "Exif": {}})), "ok", (24, 16), exif_make="Epson"),
        "truncated.avif": Case(_avif_p3_10bit(rgb)[:-80], "truncated"),
        "cropped.avif": Case(heif_files.with_property(imagecodecs.avif_encode(np.pad(rgb, ((4, 4), (4, 4), (0, 0))),
                                                                              level=95),
                                                      heif_files.clean_aperture(24, 16)), "ok", (24, 16),
                             notes=["cropped to its clean aperture (clap box)"]),
        "hdr-pq.avif": Case(imagecodecs.avif_encode(rgb.astype(np.uint16) << 2, bitspersample=10, primaries=9,
                                                    transfer=16, matrix=9), "unsupported_image"),
        "phone.heic": Case(heif_files.phone(), "ok", (64, 96), exif_make="Apple",
                           icc=build_profile(SPACES["Display P3"])),
        "truncated.heic": Case(heif_files.phone()[:-100], "truncated"),
        "gain-map.heic": Case(heif_files.with_companion(b"urn:com:apple:photo:2020:aux:hdrgainmap"), "ok", (96, 64),
                              notes=["its HDR gain map is not carried"]),
        "hdr-pq.heic": Case(heif_files.ten_bit(9, 16, 9), "unsupported_image"),
        "layered-16bit.psd": Case(_photoshop16(rgb), "ok", (24, 16), exif_make="Epson",
                                  notes=["the PSD's layer not carried: the merged image"]),
        "bit-rot.psd": Case(photoshop_files.row_zeroed(photoshop_files.written(rgb, "-compress", "RLE"), 0, 5), "ok",
                            (24, 16), notes=["the PSD's pixel data is damaged (channel 1: 1 of 16 rows"], damaged=True),
        "truncated.psd": Case(photoshop_files.written(rgb, "-compress", "RLE")[:-100], "truncated"),
        "no-merged-image.psd": Case(photoshop_files.with_resources(photoshop_files.written(rgb),
                                                                   photoshop_files.version_info(merged=False)),
                                    "unsupported_image"),
        "animated.avif": Case(_save(Image.fromarray(rgb), "AVIF", save_all=True, append_images=[Image.fromarray(rgb)]),
                              "ok", (24, 16), notes=["file holds 2 frames"], incomplete=True),
    }
    for orientation in range(1, 9):  # stored so that applying the tag shows the upright 24×16 photo
        stored = _stored_for(rgb, orientation)
        exif = piexif.dump({"0th": {**EXIF["0th"], piexif.ImageIFD.Orientation: orientation}, "Exif": {}})
        cases[f"orientation-{orientation}.jpg"] = Case(_save(Image.fromarray(stored), "JPEG", quality=95, exif=exif),
                                                       "ok", (24, 16), exif_make="Epson")
    return cases


def netpbm(kind: int, samples: np.ndarray, maxval: int | None) -> bytes:
    """A binary (P4-P6) or plain (P1-P3) file as the Netpbm format defines it, with a comment
    in the header as scanimage writes one."""
    height, width = samples.shape[:2]
    header = f"P{kind}\n# SANE data follows\n{width} {height}\n" + (f"{maxval}\n" if maxval else "")
    if kind == 4:
        return header.encode() + np.packbits(samples.reshape(height, width), axis=1).tobytes()
    if kind in (5, 6):
        return header.encode() + samples.astype(">u2" if maxval > 255 else "u1").tobytes()
    rows = (" ".join(str(v) for v in row.ravel()) for row in samples)
    return (header + "\n".join(rows) + "\n").encode()


SENSOR = np.random.default_rng(0).integers(0, 4096, (96, 144), dtype=np.uint16)


def tiff_raw(preview: np.ndarray, first_tags: list[tuple[int, str, int, object, bool]], *,
             header: bytes | None = None) -> bytes:
    """A raw as DNG, NEF or ARW lay one out: a small preview in the first directory (a reduced-
    resolution image), the sensor's colour-filter-array data in a sub-directory."""
    sensor = np.random.default_rng(0).integers(0, 4096, (preview.shape[0] * 3, preview.shape[1] * 3), dtype=np.uint16)
    buffer = io.BytesIO()
    with tifffile.TiffWriter(buffer) as tif:
        tif.write(preview, photometric="rgb", subfiletype=1, subifds=1, extratags=first_tags)
        tif.write(sensor, photometric=32803,
                  extratags=[(33421, "H", 2, (2, 2), True), (33422, "B", 4, (0, 1, 1, 2), True)])  # a 2 x 2 Bayer CFA
    data = buffer.getvalue()
    return data[:8] + header + data[10:] if header else data


def scan_data(jpeg: bytes) -> slice:
    """Where a JPEG's (first) entropy-coded scan lies: after its SOS segment, up to the EOI marker."""
    sos = jpeg.index(b"\xff\xda")
    return slice(sos + 2 + int.from_bytes(jpeg[sos + 2:sos + 4], "big"), jpeg.rindex(b"\xff\xd9"))


def bit_flipped(jpeg: bytes) -> bytes:
    """The JPEG with the top bit of its scan's middle byte flipped, as bit rot on a disk does."""
    scan, data = scan_data(jpeg), bytearray(jpeg)
    data[(scan.start + scan.stop) // 2] ^= 0x80
    return bytes(data)


def multi_picture(rgb: np.ndarray, second_type: int | None = None, exif: bytes = b"") -> bytes:
    """A JPEG with a second, smaller image after it, as cameras' MPF files hold; ``second_type``
    sets that image's MP Type code (Pillow writes 0, undefined)."""
    data = bytearray(_save(Image.fromarray(rgb), "MPO", save_all=True, append_images=[Image.fromarray(rgb[::4, ::4])],
                           quality=95, exif=exif))
    if second_type is not None:
        header = data.index(b"MPF\x00") + 4  # MPF's offsets count from its TIFF-like header
        order = "<" if data[header:header + 2] == b"II" else ">"
        (ifd,) = struct.unpack_from(order + "I", data, header + 4)
        count = struct.unpack_from(order + "H", data, header + ifd)[0]
        [entries] = [struct.unpack_from(order + "I", data, at + 8)[0]
                     for at in range(header + ifd + 2, header + ifd + 2 + 12 * count, 12)
                     if struct.unpack_from(order + "H", data, at)[0] == 0xB002]  # MPEntry: 16 bytes an image
        attribute = header + entries + 16
        flags = struct.unpack_from(order + "I", data, attribute)[0] & 0xFF000000
        struct.pack_into(order + "I", data, attribute, flags | second_type)
    return bytes(data)


def _deflate_rotted(rgb: np.ndarray) -> bytes:
    """A deflate-compressed TIFF of two strips with a bit of the first flipped (bit rot)."""
    buf = io.BytesIO()
    tifffile.imwrite(buf, rgb, photometric="rgb", compression="zlib", rowsperstrip=8, metadata=None)
    data = bytearray(buf.getvalue())
    with tifffile.TiffFile(io.BytesIO(bytes(data))) as tif:
        offset, count = tif.pages[0].dataoffsets[0], tif.pages[0].databytecounts[0]
    data[offset + count // 2] ^= 0x04
    return bytes(data)


def _ccitt_rotted(rgb: np.ndarray, compression: str, tags: dict[int, int] | None = None) -> bytes:
    """A bitonal scan stored in a CCITT coding (Group 4 as document scanners store one, Group 3
    as fax software does) with four bytes of its strip lost to zeros (a bad block)."""
    data = _save(Image.fromarray(rgb).convert("1"), "TIFF", compression=compression, tiffinfo=tags or {})
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        middle = tif.pages[0].dataoffsets[0] + tif.pages[0].databytecounts[0] // 2
    return data[:middle] + bytes(4) + data[middle + 4:]


def _multipage(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    tifffile.imwrite(buf, np.stack([rgb, rgb[::-1], rgb[:, ::-1]]), photometric="rgb", metadata=None)
    return buf.getvalue()


def _page_cut_off(tiff: bytes, page: int) -> bytes:
    """The page's pixel data pointed past the end of the file, the others left whole."""
    data = bytearray(tiff)
    with tifffile.TiffFile(io.BytesIO(tiff)) as tif:
        offsets = tif.pages[page].tags["StripOffsets"]
        at, count = offsets.valueoffset, offsets.count
    struct.pack_into(f"<{count}I", data, at, *[len(data) + 1000 * (i + 1) for i in range(count)])
    return bytes(data)


def _chain_cut_after(tiff: bytes, page: int) -> bytes:
    """The page's next-directory offset pointed past the end of the file: the pages after it
    are lost to every reader."""
    data = bytearray(tiff)
    with tifffile.TiffFile(io.BytesIO(tiff)) as tif:
        at = tif.pages[page].offset
    (entries,) = struct.unpack_from("<H", data, at)
    struct.pack_into("<I", data, at + 2 + 12 * entries, len(data) + 5000)
    return bytes(data)


def _tag_past_the_end(rgb: np.ndarray, code: int) -> bytes:
    """A TIFF whose ASCII tag ``code`` has its value pointed past the end of the file."""
    buf = io.BytesIO()
    tifffile.imwrite(buf, rgb, photometric="rgb", extratags=[(code, "s", 0, "a value longer than four bytes", True)],
                     metadata=None)
    data = bytearray(buf.getvalue())
    with tifffile.TiffFile(io.BytesIO(bytes(data))) as tif:
        entry = tif.pages[0].tags[code].offset
    struct.pack_into("<I", data, entry + 8, len(data) + 1000)
    return bytes(data)


LENS = "Zeiss Tessar 4,5/105 – Nr. 2".encode()  # UTF-8; the owner's name below is Latin-1


def _count_damaged(rgb: np.ndarray, profile: bytes) -> bytes:
    """An Adobe RGB TIFF whose description's count reads 50 million: Pillow skipped every
    value after it, the profile and the Make too."""
    buf = io.BytesIO()
    tifffile.imwrite(buf, rgb, photometric="rgb", description="Box 7, folder 2, the harbour", iccprofile=profile,
                     extratags=[(271, "s", 0, "Epson", True)], metadata=None)
    data = bytearray(buf.getvalue())
    with tifffile.TiffFile(io.BytesIO(bytes(data))) as tif:
        struct.pack_into("<I", data, tif.pages[0].tags[270].offset + 4, 50_000_000)
    return bytes(data)


_NS = ('xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"', 'xmlns:xmpNote="http://ns.adobe.com/xmp/note/"',
       'xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/"')


def extended_xmp(rgb: np.ndarray, lose_chunk: bool = False, flip: bool = False) -> tuple[bytes, bytes, str]:
    """A JPEG as Photoshop writes one whose XMP passes a segment, its extension and the GUID:
    the main packet names the MD5 of the rest, which follows in APP1 segments of 65,400 bytes
    with their offsets. ``lose_chunk`` leaves the second segment out; ``flip`` damages a bit."""
    ancestors = "".join(f"<rdf:li>xmp.did:{i:032x}</rdf:li>" for i in range(4_000))  # 152 kB: three segments
    extension = (f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF {_NS[0]}><rdf:Description rdf:about="" {_NS[2]}>'
                 f"<photoshop:DocumentAncestors><rdf:Bag>{ancestors}</rdf:Bag></photoshop:DocumentAncestors>"
                 "</rdf:Description></rdf:RDF></x:xmpmeta>").encode()
    guid = hashlib.md5(extension).hexdigest().upper()
    main = (f'<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF {_NS[0]}>'
            f'<rdf:Description rdf:about="" {_NS[1]} {_NS[2]} xmpNote:HasExtendedXMP="{guid}" '
            'photoshop:Credit="City Archive"/></rdf:RDF></x:xmpmeta><?xpacket end="w"?>').encode()
    stored = bytearray(extension)
    if flip:
        stored[100_000] ^= 0x01
    segments = b""
    for offset in range(0, len(stored), 65_400):
        if lose_chunk and offset == 65_400:
            continue
        body = b"http://ns.adobe.com/xmp/extension/\x00" + guid.encode() + struct.pack(">II", len(stored), offset)
        segments += b"\xff\xe1" + struct.pack(">H", 2 + len(body) + len(stored[offset:offset + 65_400]))
        segments += body + stored[offset:offset + 65_400]
    jpeg = _save(Image.fromarray(rgb), "JPEG", xmp=main)
    return jpeg[:2] + segments + jpeg[2:], extension, guid


def note(base: int, order: str = "<", signature: bytes = b"", length: int = 0) -> bytes:
    """A MakerNote laid out as Canon's: a directory (after ``signature``) of the body, the
    serial number and the lens, its values' places counted from ``base``: the note's place in
    its block when they count from the TIFF header, 0 when from the note itself."""
    entries = [(6, 2, BODY), (12, 4, struct.pack(order + "I", SERIAL)), (149, 2, LENS)]
    data_at = len(signature) + 2 + 12 * len(entries) + 4
    head, tail = struct.pack(order + "H", len(entries)), b""
    for tag, kind, raw in entries:
        if len(raw) <= 4:
            head += struct.pack(order + "HHI", tag, kind, len(raw) // (4 if kind == 4 else 1)) + raw
        else:
            head += struct.pack(order + "HHII", tag, kind, len(raw), base + data_at + len(tail))
            tail += raw
    return (signature + head + b"\x00" * 4 + tail).ljust(length, b"\x00")


def exif_block(note_bytes: bytes, order: str = "<") -> bytes:
    """``Exif\\0\\0``, IFD0 holding only the Exif pointer, and an Exif directory holding only
    the note, at ``NOTE_AT``."""
    mark = b"II" if order == "<" else b"MM"
    ifd0 = struct.pack(order + "HHHII", 1, 0x8769, 4, 1, 26) + b"\x00" * 4
    exif = struct.pack(order + "HHHII", 1, 37500, 7, len(note_bytes), NOTE_AT) + b"\x00" * 4
    return b"Exif\x00\x00" + mark + struct.pack(order + "HI", 42, 8) + ifd0 + exif + note_bytes


def _photoshop_layered(rgb: np.ndarray) -> bytes:
    """A TIFF as Photoshop saves one with its layers (ImageSourceData) and its resources: the
    copyright flag, set."""
    copyrighted = b"8BIM" + struct.pack(">HHI", 0x040A, 0, 1) + b"\x01\x00"
    return _tiff(rgb, photometric="rgb", extratags=[(37724, 7, 5000, bytes(5000), True),
                                                    (34377, "B", len(copyrighted), copyrighted, True)])


def _photoshop16(rgb: np.ndarray) -> bytes:
    """A production master as Photoshop keeps one: 16-bit, run-length, its EXIF a resource."""
    document = photoshop_files.written(rgb.astype(np.uint16) * 257, "-compress", "RLE")
    return photoshop_files.with_resources(document, Resource(1058, b"\x00\x00", piexif.dump(EXIF)[6:]))


def _map(rgb: np.ndarray) -> bytes:
    """A GeoTIFF of a map sheet in UTM zone 33N, 0.5 m a pixel, tied at its corner."""
    buf = io.BytesIO()
    tifffile.imwrite(buf, rgb, photometric="rgb", metadata=None, extratags=[
        (33550, "d", 3, (0.5, 0.5, 0.0), True), (33922, "d", 6, (0, 0, 0, 500_000.0, 4_649_776.0, 0), True),
        (34735, "H", 16, (1, 1, 0, 3, 1024, 0, 1, 1, 1025, 0, 1, 1, 3072, 0, 1, 32633), True)])
    return buf.getvalue()


def _sub_ifd_text(rgb: np.ndarray) -> bytes:
    """A TIFF whose Exif directory holds text that is not ASCII, as this pipeline writes one
    (tifffile and Pillow write no such directory)."""
    from enhance_ops import encoders
    from enhance_ops.metadata import ImageMetadata

    owner = "Jürgen Weiß".encode("latin-1")
    exif = {**EXIF, "Exif": {piexif.ExifIFD.LensModel: LENS, piexif.ExifIFD.CameraOwnerName: owner}}
    return encoders.encode(rgb / 255.0, None, fmt="TIFF", bit_depth=8, meta=ImageMetadata(exif=exif), scale=1,
                           provenance=encoders.Provenance("a scanner", "a scan"))


def _grey16(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    tifffile.imwrite(buf, (rgb.mean(axis=2) * 257).astype(np.uint16), photometric="minisblack")
    return buf.getvalue()


def _tiff(samples: np.ndarray, **options: object) -> bytes:
    buf = io.BytesIO()
    tifffile.imwrite(buf, samples, **options)
    return buf.getvalue()


def _cmyk16(rgb: np.ndarray) -> bytes:
    """16-bit CMYK with a press profile and its scanner's Make."""
    ink = np.asarray(Image.fromarray(rgb).convert("CMYK")).astype(np.uint16) * 257
    return _tiff(ink, photometric="separated", iccprofile=cmyk_profile(), compression="lzw",
                 extratags=[(271, "s", 0, "Epson", True)])


def _cmyk_alpha(rgb: np.ndarray) -> bytes:
    """8-bit CMYK with transparency, in planes, deflated, with a press profile (Pillow opens none)."""
    ink = np.asarray(Image.fromarray(rgb).convert("CMYK"))
    alpha = np.tile(np.linspace(64, 255, rgb.shape[1]).astype(np.uint8), (rgb.shape[0], 1))
    return _tiff(np.moveaxis(np.dstack([ink, alpha]), -1, 0), photometric="separated", planarconfig="separate",
                 extrasamples=["unassalpha"], iccprofile=cmyk_profile(), compression="adobe_deflate")


def _rgb12(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    tifffile.imwrite(buf, rgb.astype(np.uint16) << 4, photometric="rgb", bitspersample=12,
                     extratags=[(271, "s", 0, "Epson", True)])
    return buf.getvalue()


def _grey16_alpha(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    grey = (rgb.mean(axis=2) * 257).astype(np.uint16)
    tifffile.imwrite(buf, np.dstack([grey, 65535 - grey]), photometric="minisblack", extrasamples=["unassalpha"])
    return buf.getvalue()


def _float32(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    tifffile.imwrite(buf, rgb.astype(np.float32) / 255, photometric="rgb")
    return buf.getvalue()


def _tiled(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    tifffile.imwrite(buf, rgb, photometric="rgb", tile=(16, 16))
    return buf.getvalue()


def _palette_transparent(rgb: np.ndarray) -> bytes:
    palette = Image.fromarray(rgb).convert("P", palette=Image.ADAPTIVE, colors=16)
    return _save(palette, "PNG", transparency=0)


def _jp2_12bit(rgb: np.ndarray) -> bytes:
    """A 12-bit JP2 in Adobe RGB whose EXIF box says orientation 6: upright it is 16 × 24."""
    exif = piexif.dump({"0th": {**EXIF["0th"], piexif.ImageIFD.Orientation: 6}, "Exif": {}})
    twelve = rgb.astype(np.uint16) * 16
    return jp2_files.jp2(twelve, bits=12, icc=build_profile(SPACES["Adobe RGB"]),
                         after=jp2_files.uuid(jp2_files.EXIF_UUID, exif[6:]))


def _jpeg_12bit(rgb: np.ndarray) -> bytes:
    twelve = imagecodecs.jpeg8_encode(rgb.astype(np.uint16) * 16, bitspersample=12, level=95)
    return _with_app1(twelve, piexif.dump(EXIF))


def _oversized_exif(rgb: np.ndarray, size: int = 60_000) -> bytes:
    """EXIF close to the 64 kB a JPEG segment can hold: a user comment of ``size`` bytes."""
    comment = b"ASCII\x00\x00\x00" + b"scanned from a box of glass plates; " * 1900
    exif = piexif.dump({"0th": EXIF["0th"], "Exif": {piexif.ExifIFD.UserComment: comment[:size]}})
    return _save(Image.fromarray(rgb), "JPEG", exif=exif)


def exif_entry(exif: bytes, ifd_at: int, tag: int) -> int:
    """Where ``tag``'s entry is in an EXIF block (after its "Exif" header) of either byte order."""
    order = "<" if exif[6:8] == b"II" else ">"
    (entries,) = struct.unpack_from(order + "H", exif, 6 + ifd_at)
    [at] = [6 + ifd_at + 2 + 12 * n for n in range(entries)
            if struct.unpack_from(order + "H", exif, 6 + ifd_at + 2 + 12 * n)[0] == tag]
    return at


def _exif_count_bomb(rgb: np.ndarray) -> bytes:
    """An EXIF whose XResolution entry declares 50 million RATIONALs in a block of a hundred bytes."""
    exif = bytearray(piexif.dump({"0th": {**EXIF["0th"], piexif.ImageIFD.XResolution: (300, 1)}, "Exif": {}}))
    order = "<" if exif[6:8] == b"II" else ">"
    struct.pack_into(order + "I", exif, exif_entry(bytes(exif), 8, piexif.ImageIFD.XResolution) + 4, 50_000_000)
    return _save(Image.fromarray(rgb), "JPEG", exif=bytes(exif))


def _stored_for(upright: np.ndarray, orientation: int) -> np.ndarray:
    """The pixel layout that EXIF ``orientation`` turns into ``upright`` (the inverse of Pillow's transpose)."""
    inverse = {1: lambda a: a, 2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
               5: lambda a: a.transpose(1, 0, 2), 6: lambda a: np.rot90(a, 1), 7: lambda a: np.rot90(a, 2).transpose(1, 0, 2),
               8: lambda a: np.rot90(a, -1)}
    return np.ascontiguousarray(inverse[orientation](upright))
