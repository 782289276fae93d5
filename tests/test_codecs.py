"""Codecs: formats, bit depths, layouts, orientation, metadata carried, and every bad-file error."""
from __future__ import annotations

import io
import logging
import os
import re
import struct
import zlib
from collections.abc import Callable

import cv2
import imagecodecs
import jp2_files
import numpy as np
import piexif
import pytest
import simplejpeg
import tifffile
from colour_files import cmyk_profile, lab16
from conftest import PROJECT, photo, psnr, save
from hostile_corpus import bmp_16_bits, build, exif_entry, extended_xmp, multi_picture, scan_data
from photoshop_files import written
from PIL import Image, ImageCms, ImageOps, PngImagePlugin
from skimage import data as skdata

from enhance_ops import (
    ccitt, codecs, damage, deep_jpeg, encoders, exif_check, formats, jpeg_segments, png_chunks, tiff_exif,
)
from enhance_ops import derivative_metadata as dmd
from enhance_ops.chain import strips
from enhance_ops import metadata as md
from enhance_ops.errors import (
    CorruptImageError,
    EmptyFileError,
    EncodeError,
    ImageTooLargeError,
    NotAnImageError,
    TruncatedImageError,
    UnsupportedImageError,
)
from enhance_ops.metadata import ImageMetadata

PROV = encoders.Provenance("archive-enhance test", "Enhanced derivative, not the archival master: test")
RGB8 = (photo("coffee", 48, top=120, left=200) * 255 + 0.5).astype(np.uint8)
SRGB_ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/></x:xmpmeta>'
CAMERA_EXIF = piexif.dump(
    {
        "0th": {piexif.ImageIFD.Make: b"Epson", piexif.ImageIFD.Model: b"V850"},
        "Exif": {piexif.ExifIFD.DateTimeOriginal: b"1962:05:01 10:00:00"},
    }
)


def reencode(decoded: codecs.DecodedImage, fmt: str | None = None, scale: float = 1.0) -> bytes:
    return encoders.encode(
        decoded.pixels,
        decoded.alpha,
        fmt=fmt or decoded.output_format,
        bit_depth=decoded.bit_depth,
        meta=decoded.metadata,
        scale=scale,
        provenance=PROV,
    )


# --- pixels, bit depth, layout -------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["PNG", "TIFF", "WEBP"])
def test_lossless_8bit_round_trip_is_exact(fmt: str) -> None:
    options = {"lossless": True} if fmt == "WEBP" else {}
    decoded = codecs.decode(save(RGB8, fmt, **options))
    assert decoded.bit_depth == 8 and decoded.pixels.shape == (48, 48, 3) and decoded.pixels.dtype == np.float32
    again = codecs.decode(reencode(decoded)) if fmt != "WEBP" else None
    assert np.array_equal((decoded.pixels * 255).round().astype(np.uint8), RGB8)
    if again is not None:
        assert np.array_equal(again.pixels, decoded.pixels)


def test_jpeg_round_trip_is_close() -> None:
    decoded = codecs.decode(save(RGB8, "JPEG", quality=98))
    again = codecs.decode(reencode(decoded))
    assert decoded.format == "JPEG" and again.format == "JPEG"
    assert np.abs(again.pixels - decoded.pixels).mean() < 2 / 255


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16bit_colour_keeps_16_bits(suffix: str) -> None:
    samples = (photo("astronaut", 32, top=40, left=200) * 65535).astype(np.uint16)
    ok, buf = cv2.imencode(suffix, samples[:, :, ::-1])
    decoded = codecs.decode(buf.tobytes())
    assert decoded.bit_depth == 16
    assert np.array_equal((decoded.pixels * 65535).round().astype(np.uint16), samples)
    again = codecs.decode(reencode(decoded))
    assert again.bit_depth == 16 and np.array_equal(again.pixels, decoded.pixels)


def test_bit_depth_comes_from_the_file_not_the_values() -> None:
    # A 16-bit file whose samples happen to be exact 8-bit values is still a 16-bit file.
    samples = RGB8.astype(np.uint16) * 257
    ok, buf = cv2.imencode(".png", samples)
    assert codecs.decode(buf.tobytes()).bit_depth == 16
    # and an 8-bit file using only a few values is still 8-bit.
    assert codecs.decode(save(np.full((8, 8), 3, np.uint8), "PNG")).bit_depth == 8


def _with_sbit(png: bytes, bits: list[int]) -> bytes:
    return png[:33] + png_chunks.chunk(b"sBIT", bytes(bits)) + png[33:]  # right after IHDR


def _png(samples: np.ndarray) -> bytes:
    return cv2.imencode(".png", samples)[1].tobytes()


def _twelve_bit_tiff(samples: np.ndarray) -> bytes:
    buf = io.BytesIO()
    tifffile.imwrite(buf, samples, bitspersample=12, photometric="rgb", byteorder="<")  # tifffile packs "<" right
    return buf.getvalue()


def _palette_png(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).quantize(16).save(buf, "PNG", bits=4)
    return buf.getvalue()


TWELVE = (RGB8.astype(np.uint16) * 16).astype(np.uint16)


@pytest.mark.parametrize(("data", "bits"), [
    pytest.param(_with_sbit(_png(TWELVE[:, :, 0] << 4), [12]), 12, id="16-bit grey PNG, sBIT 12"),
    pytest.param(_with_sbit(_png(TWELVE << 4), [10, 12, 10]), 12, id="16-bit RGB PNG, sBIT 10/12/10"),
    pytest.param(_png(TWELVE << 4), 16, id="16-bit PNG without sBIT"),
    pytest.param(_with_sbit(_png(RGB8), [12, 12, 12]), 8, id="an sBIT beyond the samples is no claim"),
    pytest.param(_with_sbit(_png(RGB8), [0, 0, 0]), 8, id="nor is an sBIT of nothing"),
    pytest.param(save(RGB8[:, :, 0] > 128, "PNG"), 1, id="bilevel PNG"),
    pytest.param(_palette_png(RGB8), 8, id="4-bit palette PNG: its colours'"),
    pytest.param(_twelve_bit_tiff(TWELVE), 12, id="12-bit TIFF"),
    pytest.param(save(RGB8[:, :, 0] > 128, "TIFF"), 1, id="bilevel TIFF"),
    pytest.param(b"P5 48 48 4095\n" + TWELVE[:, :, 1].astype(">u2").tobytes(), 12, id="PGM of maxval 4095"),
    pytest.param(b"P5 48 48 1000\n" + (TWELVE[:, :, 1] // 5).astype(">u2").tobytes(), 10, id="PGM of maxval 1000"),
    pytest.param(jp2_files.jp2(TWELVE[:, :, 2], bits=12), 12, id="12-bit JPEG 2000"),
    pytest.param(save(RGB8, "JPEG"), 8, id="JPEG"),
])
def test_the_bits_per_sample_the_master_declares_are_kept_beside_the_depth_it_is_read_at(data: bytes,
                                                                                      bits: int) -> None:
    """A 12-bit scan is read, enhanced and written at 16 bits; what the master was made with
    is provenance, and goes to the ledger as it is declared."""
    decoded = codecs.decode(data)
    assert decoded.bits_per_sample == bits
    assert decoded.bit_depth == (16 if bits > 8 else 8)


@pytest.mark.parametrize("fmt", ["PNG", "TIFF", "JPEG"])
def test_greyscale_stays_greyscale(fmt: str) -> None:
    grey = RGB8[:, :, 1]
    decoded = codecs.decode(save(grey, fmt))
    assert decoded.pixels.shape == (48, 48, 1)
    out = Image.open(io.BytesIO(reencode(decoded)))
    assert out.mode == "L"


def test_16bit_greyscale_png() -> None:
    grey = (np.linspace(0, 65535, 48 * 48).reshape(48, 48)).astype(np.uint16)
    ok, buf = cv2.imencode(".png", grey)
    decoded = codecs.decode(buf.tobytes())
    assert decoded.bit_depth == 16 and decoded.pixels.shape == (48, 48, 1)
    again = codecs.decode(reencode(decoded))
    assert again.bit_depth == 16 and np.array_equal(again.pixels, decoded.pixels)


@pytest.mark.parametrize("fmt", ["PNG", "TIFF", "WEBP"])
def test_alpha_is_kept_apart_and_written_back(fmt: str) -> None:
    alpha = np.tile(np.linspace(0, 255, 48, dtype=np.uint8), (48, 1))
    rgba = np.dstack([RGB8, alpha])
    options = {"lossless": True} if fmt == "WEBP" else {}
    decoded = codecs.decode(save(rgba, fmt, **options))
    assert decoded.pixels.shape == (48, 48, 3)
    assert decoded.alpha is not None and np.array_equal((decoded.alpha * 255).round().astype(np.uint8), alpha)
    seen = alpha > 0  # the colour as it was, not multiplied by its alpha (OpenCV's 8-bit TIFF reading)
    assert np.array_equal((decoded.pixels[seen] * 255).round().astype(np.uint8), RGB8[seen])
    again = codecs.decode(reencode(decoded))
    assert again.alpha is not None and np.abs(again.alpha - decoded.alpha).max() < 1 / 255


def test_16bit_rgba_tiff() -> None:
    samples = (np.random.default_rng(1).random((16, 20, 4)) * 65535).astype(np.uint16)
    buf = io.BytesIO()
    tifffile.imwrite(buf, samples, photometric="rgb", extrasamples=["unassalpha"])
    decoded = codecs.decode(buf.getvalue())
    assert decoded.bit_depth == 16 and decoded.alpha is not None
    again = codecs.decode(reencode(decoded))
    assert np.array_equal(again.pixels, decoded.pixels) and np.array_equal(again.alpha, decoded.alpha)


@pytest.mark.parametrize("photometric", ["rgb", "minisblack", "miniswhite"])
@pytest.mark.parametrize("compression", [None, "lzw"])
def test_tiled_8bit_tiff_is_read_exactly(photometric: str, compression: str | None) -> None:
    samples = RGB8 if photometric == "rgb" else RGB8[:, :, 1]  # 48² in 16² tiles: OpenCV 5 reads none uncompressed
    buf = io.BytesIO()
    tifffile.imwrite(buf, samples, photometric=photometric, tile=(16, 16), compression=compression)
    decoded = codecs.decode(buf.getvalue(), samples=True)
    shown = 255 - samples if photometric == "miniswhite" else samples  # 0 is white there
    assert decoded.bit_depth == 8 and np.array_equal(decoded.pixels, shown.reshape(48, 48, -1))
    with pytest.raises(TruncatedImageError, match="pixel data is incomplete"):
        codecs.decode(buf.getvalue()[: len(buf.getvalue()) * 2 // 3])


@pytest.mark.parametrize("layout", [{}, {"compression": "lzw"}, {"tile": (16, 16)}])
def test_a_16_bit_white_is_zero_tiff_is_not_read_as_its_negative(layout: dict[str, object]) -> None:
    """PhotometricInterpretation 0 (MinIsWhite) at 16 bits: OpenCV turned the 8-bit kind but
    gave this one as stored, 0 as black, so a grey scan came out as its own negative."""
    codes = RGB8[:, :, 1].astype(np.uint16) * 257
    buf = io.BytesIO()
    tifffile.imwrite(buf, codes, photometric="miniswhite", **layout)
    decoded = codecs.decode(buf.getvalue(), samples=True)
    assert decoded.bit_depth == 16 and np.array_equal(decoded.pixels[:, :, 0], 65535 - codes)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_tiled_tiff_is_turned_upright_as_the_same_scan_in_strips(orientation: int) -> None:
    def tiff(**layout: object) -> bytes:
        buf = io.BytesIO()
        tifffile.imwrite(buf, RGB8[:, 8:], photometric="rgb", extratags=[(274, "H", 1, orientation, True)], **layout)
        return buf.getvalue()

    in_strips = codecs.decode(tiff(), samples=True)  # OpenCV's reading
    in_tiles = codecs.decode(tiff(tile=(16, 16)), samples=True)  # tifffile's
    assert np.array_equal(in_tiles.pixels, in_strips.pixels)


def test_a_fourth_tiff_channel_that_is_not_alpha_is_dropped_not_made_transparency() -> None:
    """An infrared plane in ExtraSamples 'unspecified': OpenCV took it for alpha."""
    buf = io.BytesIO()
    tifffile.imwrite(buf, np.dstack([RGB8, 255 - RGB8[:, :, 0]]), photometric="rgb", extrasamples=["unspecified"])
    decoded = codecs.decode(buf.getvalue(), samples=True)
    assert decoded.alpha is None and np.array_equal(decoded.pixels, RGB8)
    assert decoded.notes == ["1 extra channel(s) beyond colour and alpha dropped"]


def test_tiff_with_channels_past_alpha_keeps_colour_and_alpha_and_says_what_was_dropped() -> None:
    infrared = 255 - RGB8[:, :, 0]  # a multispectral scan's fifth plane
    samples = np.dstack([RGB8, RGB8[:, :, 2], infrared])
    buf = io.BytesIO()
    tifffile.imwrite(buf, samples, photometric="rgb", extrasamples=["unassalpha", "unspecified"])
    decoded = codecs.decode(buf.getvalue(), samples=True)
    assert np.array_equal(decoded.pixels, RGB8) and np.array_equal(decoded.alpha, RGB8[:, :, 2])
    assert decoded.notes == ["1 extra channel(s) beyond colour and alpha dropped"]


def test_grey_tiff_keeps_its_alpha() -> None:
    """OpenCV 5.0 reads the grey and drops the alpha without a word."""
    buf = io.BytesIO()
    tifffile.imwrite(buf, np.dstack([RGB8[:, :, 0], RGB8[:, :, 1]]), photometric="minisblack",
                     extrasamples=["unassalpha"])
    decoded = codecs.decode(buf.getvalue(), samples=True)
    assert np.array_equal(decoded.pixels[:, :, 0], RGB8[:, :, 0]) and np.array_equal(decoded.alpha, RGB8[:, :, 1])


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_associated_alpha_is_made_straight(dtype: type) -> None:
    """A TIFF's colour stored multiplied by its alpha: taken as it stands, every derivative
    (which holds straight alpha) would be darker wherever the scan is semi-transparent."""
    top = np.iinfo(dtype).max
    colour = RGB8.astype(dtype) * (top // 255)
    alpha = np.tile(np.linspace(top // 4, top, 48).astype(dtype), (48, 1))
    premultiplied = (colour * (alpha[:, :, None] / top)).round().astype(dtype)
    buf = io.BytesIO()
    tifffile.imwrite(buf, np.dstack([premultiplied, alpha]), photometric="rgb", extrasamples=["assocalpha"])
    decoded = codecs.decode(buf.getvalue(), samples=True)
    assert np.array_equal(decoded.alpha, alpha)
    assert np.abs(decoded.pixels.astype(int) - colour).max() <= 2 * (top // 255)  # the rounding, divided by ¼ at worst


@pytest.mark.parametrize("alpha", [False, True])
@pytest.mark.parametrize("compression", [None, "lzw"])
def test_16bit_tiff_in_separate_colour_planes_is_read_exactly(compression: str | None, alpha: bool) -> None:
    """OpenCV 5.0 returns these scrambled, without an error: the derivative would be noise."""
    rgb16 = RGB8.astype(np.uint16) * 257 + np.arange(48, dtype=np.uint16)[:, None, None]  # low bytes of their own
    samples = np.dstack([rgb16, rgb16[:, :, 1]]) if alpha else rgb16
    buf = io.BytesIO()
    tifffile.imwrite(buf, samples.transpose(2, 0, 1), photometric="rgb", planarconfig="separate",
                     compression=compression, extrasamples=["unassalpha"] if alpha else None)
    decoded = codecs.decode(buf.getvalue(), samples=True)
    assert decoded.bit_depth == 16 and np.array_equal(decoded.pixels, rgb16)
    assert np.array_equal(decoded.alpha, rgb16[:, :, 1]) if alpha else decoded.alpha is None


@pytest.mark.parametrize("bits, photometric, white",
                         [(4, "minisblack", 15), (2, "minisblack", 3), (4, "miniswhite", 0)])
def test_2_and_4_bit_grey_tiff_spans_the_8bit_range(bits: int, photometric: str, white: int) -> None:
    """Document scanners' 4-bit grey: read as its 0..15 codes it would be near black."""
    codes = (RGB8[:, :, 1] >> (8 - bits)).astype(np.uint8)
    codes[0, :2] = (white, (2**bits - 1) - white)
    buf = io.BytesIO()
    tifffile.imwrite(buf, codes, photometric=photometric, bitspersample=bits)
    grey = codecs.decode(buf.getvalue(), samples=True).pixels[:, :, 0]
    shade = (codes if photometric == "minisblack" else (2**bits - 1) - codes).astype(np.uint16) * 255 // (2**bits - 1)
    assert np.array_equal(grey, shade) and tuple(grey[0, :2]) == (255, 0)


def test_12_bit_grey_tiff_spans_the_16bit_range() -> None:
    """OpenCV shifts 12-bit samples up by four bits and leaves the low ones empty: white came
    back as 65520. Bit replication spreads them over the whole range, as for JPEG 2000."""
    codes = (RGB8[:, :, 1].astype(np.uint16) << 4) | (RGB8[:, :, 0] >> 4)
    codes[0, :2] = (4095, 0)
    buf = io.BytesIO()
    tifffile.imwrite(buf, codes, photometric="minisblack", bitspersample=12)
    decoded = codecs.decode(buf.getvalue(), samples=True)
    assert decoded.bit_depth == 16 and tuple(decoded.pixels[0, :2, 0]) == (65535, 0)
    assert np.array_equal(decoded.pixels[:, :, 0], (codes << 4) | (codes >> 8))


@pytest.mark.parametrize("mode", ["1", "L", "I;16"])
def test_grey_png_with_a_transparent_level_gets_its_alpha(mode: str) -> None:
    """tRNS in a grey PNG: OpenCV keeps the transparency of an RGB one only."""
    grey = Image.fromarray(RGB8[:, :, 1]).convert(mode) if mode != "I;16" else Image.fromarray(
        RGB8[:, :, 1].astype(np.uint16) * 257)
    key = {"1": 255, "L": int(RGB8[0, 0, 1]), "I;16": int(RGB8[0, 0, 1]) * 257}[mode]
    buf = io.BytesIO()
    grey.save(buf, "PNG", transparency=1 if mode == "1" else key)
    decoded = codecs.decode(buf.getvalue(), samples=True)
    top = np.iinfo(decoded.pixels.dtype).max
    level = key if mode != "1" else 255
    assert np.array_equal(decoded.alpha, np.where(decoded.pixels[:, :, 0] == level, 0, top))
    assert (decoded.alpha == 0).any() and (decoded.alpha == top).any()


@pytest.mark.parametrize("gamma", [None, 100_000])
def test_a_16_bit_grey_png_with_alpha_stays_grey(gamma: int | None) -> None:
    """Colour type 4 at 16 bits, written chunk by chunk as the PNG specification lays it out
    (neither Pillow nor OpenCV writes one): Pillow opens it as RGBA, so it had been read as
    three equal channels, and its gAMA made an RGB profile."""
    grey, alpha = RGB8[:, :, 1].astype(np.uint16) * 257, RGB8[:, :, 2].astype(np.uint16) * 257

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    rows = b"".join(b"\x00" + row.tobytes() for row in np.dstack([grey, alpha]).astype(">u2"))
    gama = chunk(b"gAMA", struct.pack(">I", gamma)) if gamma else b""
    data = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 48, 48, 16, 4, 0, 0, 0))
            + gama + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    decoded = codecs.decode(data, samples=True)
    assert decoded.bit_depth == 16 and decoded.pixels.shape == (48, 48, 1)
    assert np.array_equal(decoded.pixels[:, :, 0], grey) and np.array_equal(decoded.alpha, alpha)
    if gamma:  # a linear scan: a grey profile of gamma 1 carries it
        profile = ImageCms.ImageCmsProfile(io.BytesIO(decoded.metadata.icc_profile))
        assert profile.profile.xcolor_space == "GRAY"
        assert decoded.notes == ["PNG gAMA 1 carried as an ICC profile, so the derivative displays as the master does"]


def test_palette_png_with_transparency_becomes_rgba() -> None:
    pal = Image.fromarray(RGB8).convert("P", palette=Image.ADAPTIVE, colors=16)
    index_of_corner = np.asarray(pal)[0, 0]
    decoded = codecs.decode(_palette_bytes(pal, int(index_of_corner)))
    assert decoded.pixels.shape == (48, 48, 3) and decoded.alpha is not None
    assert decoded.alpha[0, 0] == 0.0 and decoded.alpha.max() == 1.0
    expected = np.asarray(pal.convert("RGB"), dtype=np.float32) / 255
    assert np.allclose(decoded.pixels, expected)


def _palette_bytes(pal: Image.Image, transparent: int) -> bytes:
    buf = io.BytesIO()
    pal.save(buf, "PNG", transparency=transparent)
    return buf.getvalue()


def test_cmyk_jpeg_is_converted_to_srgb() -> None:
    cmyk = Image.fromarray(RGB8).convert("CMYK")
    buf = io.BytesIO()
    cmyk.save(buf, "JPEG", quality=98)
    decoded = codecs.decode(buf.getvalue())
    assert decoded.mode == "CMYK" and decoded.pixels.shape == (48, 48, 3)
    assert np.abs(decoded.pixels - RGB8 / 255).mean() < 3 / 255
    assert ImageCms.getProfileName(ImageCms.ImageCmsProfile(io.BytesIO(decoded.metadata.icc_profile))).startswith("sRGB")
    assert any("CMYK" in n for n in decoded.notes)


def test_a_16_bit_cmyk_tiff_without_a_profile_is_converted_naively_at_16_bits() -> None:
    """As Pillow converts 8-bit CMYK without a profile, (1 - C)(1 - K), but at 16 bits: it was
    read at 8 (Pillow's CMYK is 8-bit)."""
    ink = _cmyk_ramp()
    buf = io.BytesIO()
    tifffile.imwrite(buf, ink, photometric="separated")
    decoded = codecs.decode(buf.getvalue(), samples=True)
    assert decoded.bit_depth == 16 and decoded.notes == ["CMYK converted to sRGB at 16 bits naively, without an ICC profile"]
    as_8_bit = np.asarray(Image.fromarray((ink >> 8).astype(np.uint8), "CMYK").convert("RGB"))
    assert np.abs(decoded.pixels / 257 - as_8_bit).max() < 2.5  # Pillow's formula, from samples cut to 8 bits
    expected = np.rint((1 - ink[..., :3] / 65535) * (1 - ink[..., 3:] / 65535) * 65535)
    assert np.abs(decoded.pixels - expected).max() <= 1


@pytest.mark.parametrize("profiled", [False, True], ids=["naive", "press profile"])
def test_a_cmyk_masters_xmp_says_the_derivative_is_rgb(profiled: bool) -> None:
    """Photoshop's XMP for a CMYK scan names its colour mode, samples and press profile; the
    sRGB derivative went on saying CMYK, four samples and "U.S. Web Coated (SWOP) v2"."""
    xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
           b'<rdf:Description rdf:about="" xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/" '
           b'xmlns:tiff="http://ns.adobe.com/tiff/1.0/" photoshop:ColorMode="4" '
           b'photoshop:ICCProfile="U.S. Web Coated (SWOP) v2" tiff:PhotometricInterpretation="5">'
           b"<tiff:SamplesPerPixel>4</tiff:SamplesPerPixel><tiff:BitsPerSample>\n<rdf:Seq>\n"
           + b"<rdf:li>16</rdf:li>\n" * 4 + b"</rdf:Seq>\n</tiff:BitsPerSample></rdf:Description></rdf:RDF></x:xmpmeta>")
    buf = io.BytesIO()
    extratags = [(700, "B", len(xmp), xmp, True)]
    if profiled:
        extratags.append((34675, "B", len(cmyk_profile()), cmyk_profile(), True))
    tifffile.imwrite(buf, _cmyk_ramp()[:8, :8], photometric="separated", extratags=extratags)
    said = codecs.decode(reencode(codecs.decode(buf.getvalue()))).metadata.xmp.decode()
    assert 'photoshop:ColorMode="3"' in said and 'tiff:PhotometricInterpretation="2"' in said
    assert "<tiff:SamplesPerPixel>3</tiff:SamplesPerPixel>" in said and "SWOP" not in said
    assert "<tiff:BitsPerSample><rdf:Seq>" + "<rdf:li>16</rdf:li>" * 3 + "</rdf:Seq></tiff:BitsPerSample>" in said


def _cmyk_ramp() -> np.ndarray:
    """16-bit ink: smooth sweeps of all four inks over 64 × 256 pixels, finer than 8 bits can step."""
    ramp = np.linspace(0, 1, 64 * 256).reshape(64, 256)
    return np.rint(np.stack([ramp, ramp[:, ::-1] * 0.6, ramp * 0.3, ramp[::-1] * 0.2], -1) * 65535).astype(np.uint16)


@pytest.mark.parametrize("layout", [{}, {"planarconfig": "separate"}, {"orientation": 6}], ids=str)
def test_a_16_bit_cmyk_tiff_with_its_profile_is_converted_at_16_bits(layout: dict[str, object]) -> None:
    """Pillow's CMYK is 8-bit: a print shop's 16-bit CMYK master came out 8-bit, its gradients
    in 8-bit steps. LittleCMS converts it through the same profile at 16 bits."""
    profile, ink = cmyk_profile(), _cmyk_ramp()
    layout = dict(layout)
    orientation = layout.pop("orientation", 1)
    stored = np.moveaxis(ink, -1, 0) if layout else ink
    buf = io.BytesIO()
    tifffile.imwrite(buf, np.rot90(stored, 1) if orientation == 6 else stored, photometric="separated",
                     iccprofile=profile, extratags=[(274, "H", 1, orientation, True)], **layout)
    decoded = codecs.decode(buf.getvalue(), samples=True)
    assert decoded.bit_depth == 16 and decoded.pixels.shape == (64, 256, 3)
    assert "CMYK converted to sRGB at 16 bits through the embedded ICC profile" in decoded.notes
    assert ImageCms.getProfileName(ImageCms.ImageCmsProfile(io.BytesIO(decoded.metadata.icc_profile))).startswith("sRGB")
    as_8_bit = ImageCms.profileToProfile(Image.fromarray((ink >> 8).astype(np.uint8), "CMYK"),
                                         ImageCms.ImageCmsProfile(io.BytesIO(profile)), ImageCms.createProfile("sRGB"),
                                         outputMode="RGB")
    assert np.abs(decoded.pixels / 257 - np.asarray(as_8_bit)).mean() < 1  # the same colours
    assert len(np.unique(decoded.pixels[..., 0])) > 4 * len(np.unique(np.asarray(as_8_bit)[..., 0]))  # finer steps


def _ink_and_alpha(bits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RGB8 as CMYK ink whose naive conversion gives RGB8 back (C = 255 - R, no black), an
    alpha ramp, and the expected colour, at ``bits``."""
    top = 255 if bits == 8 else 65535
    scale, dtype = top // 255, (np.uint8 if bits == 8 else np.uint16)
    ink = np.dstack([255 - RGB8, np.zeros(RGB8.shape[:2], np.uint8)]).astype(dtype) * scale
    alpha = np.tile(np.linspace(128, 255, RGB8.shape[1]), (RGB8.shape[0], 1)).round().astype(dtype) * scale
    return ink, alpha, RGB8.astype(dtype) * scale


@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("planes", ["contig", "separate"])
@pytest.mark.parametrize("kind", ["unassalpha", "assocalpha"])
def test_a_cmyk_tiff_with_alpha_is_converted_and_keeps_its_alpha(bits: int, planes: str, kind: str) -> None:
    """Photoshop's and ImageMagick's CMYK with transparency: refused until 2026-12-07 (Pillow
    has no such mode); the inks are converted as any CMYK's, the alpha kept, associated alpha
    (ink multiplied by it) made straight."""
    ink, alpha, expected = _ink_and_alpha(bits)
    stored = ink if kind == "unassalpha" else np.rint(ink * (alpha / alpha.max())[..., None]).astype(ink.dtype)
    samples = np.dstack([stored, alpha])
    buf = io.BytesIO()
    tifffile.imwrite(buf, samples if planes == "contig" else np.moveaxis(samples, -1, 0), photometric="separated",
                     planarconfig=planes, extrasamples=[kind])
    decoded = codecs.decode(buf.getvalue(), samples=True)
    assert decoded.bit_depth == bits and decoded.pixels.shape == (*RGB8.shape[:2], 3)
    assert np.array_equal(decoded.alpha, alpha)
    tolerance = 0 if kind == "unassalpha" else 2 * (alpha.max() // 255)  # rounding of the multiplied ink
    assert np.abs(decoded.pixels.astype(int) - expected).max() <= tolerance
    assert decoded.notes == [f"CMYK converted to sRGB{' at 16 bits' if bits == 16 else ''} naively, without an ICC "
                             "profile"]
    derivative = codecs.decode(reencode(codecs.decode(buf.getvalue())), samples=True)  # an RGBA TIFF, sRGB
    assert np.array_equal(derivative.alpha, alpha)
    assert np.array_equal(derivative.pixels, decoded.pixels)


@pytest.mark.parametrize("bits, planes", [(8, "contig"), (8, "separate"), (16, "contig"), (16, "separate")])
def test_a_cmyk_tiffs_spot_colour_channel_is_left_out_with_a_note(bits: int, planes: str) -> None:
    """A fifth ink no profile describes: an 8-bit one had been dropped without a word (Pillow
    reads four of five samples), a 16-bit one in planes called damaged, and others refused."""
    ink, spot, expected = _ink_and_alpha(bits)
    samples = np.dstack([ink, spot])
    buf = io.BytesIO()
    tifffile.imwrite(buf, samples if planes == "contig" else np.moveaxis(samples, -1, 0), photometric="separated",
                     planarconfig=planes, extrasamples=["unspecified"])
    decoded = codecs.decode(buf.getvalue(), samples=True)
    assert decoded.alpha is None and np.array_equal(decoded.pixels, expected)
    assert "1 channel(s) past the CMYK inks (a spot colour or a saved selection) left out: only the four process " \
           "inks are converted" in decoded.notes


def _lab8(photometric: str) -> np.ndarray:
    """RGB8 as 8-bit Lab as TIFF stores it: L* over 0-255; a* and b* signed (CIELab) or
    offset by 128 (ICCLab)."""
    deep = lab16(np.ascontiguousarray(RGB8), photometric)
    lab = np.empty(deep.shape, np.uint8)
    lab[..., 0] = np.rint(deep[..., 0] / (65535 if photometric == "cielab" else 0xFF00) * 255)
    if photometric == "cielab":
        lab[..., 1:] = np.rint(deep[..., 1:].view(np.int16) / 256).astype(np.int8).view(np.uint8)
    else:
        lab[..., 1:] = np.rint(deep[..., 1:] / 256)
    return lab


@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("photometric", ["cielab", "icclab"])
def test_a_lab_tiff_with_alpha_is_converted_and_keeps_its_alpha(bits: int, photometric: str) -> None:
    """Lab with transparency (and 8-bit ICCLab at all) had been refused by name: Pillow has no
    such mode. Converted through a D50 Lab profile as other Lab is, at the master's depth,
    within the 8-bit Lab encoding's rounding of the colours it was made from; the alpha kept."""
    lab = lab16(np.ascontiguousarray(RGB8), photometric) if bits == 16 else _lab8(photometric)
    alpha = np.tile(np.linspace(40, 255, RGB8.shape[1]), (RGB8.shape[0], 1)).round().astype(lab.dtype)
    alpha = alpha * 257 if bits == 16 else alpha
    buf = io.BytesIO()
    tifffile.imwrite(buf, np.dstack([lab, alpha]), photometric=photometric, extrasamples=["unassalpha"])
    decoded = codecs.decode(buf.getvalue(), samples=True)
    assert decoded.bit_depth == bits and np.array_equal(decoded.alpha, alpha)
    assert np.abs(decoded.pixels / (257 if bits == 16 else 1) - RGB8).max() <= (0.5 if bits == 16 else 2)
    assert decoded.notes == [f"CIELab converted to sRGB{' at 16 bits' if bits == 16 else ''} through a D50 Lab profile"]
    if bits == 8 and photometric == "icclab":  # without alpha too
        alone = io.BytesIO()
        tifffile.imwrite(alone, lab, photometric=photometric)
        assert np.array_equal(codecs.decode(alone.getvalue(), samples=True).pixels, decoded.pixels)


@pytest.mark.parametrize("tile", [None, (1, 16, 16)], ids=["strips", "tiles"])
def test_a_volumetric_tiff_is_refused_by_name(tile: tuple[int, int, int] | None) -> None:
    """SGI's ImageDepth: a stack of slices in one page; its tiled form had been called damaged
    (the decoded size differs from the header's), its stripped one read as its first slice."""
    buf = io.BytesIO()
    tifffile.imwrite(buf, np.stack([RGB8, RGB8[::-1]]), photometric="rgb", volumetric=True, tile=tile)
    with pytest.raises(UnsupportedImageError, match=r"volumetric TIFF page \(2 slices deep"):
        codecs.decode(buf.getvalue())


@pytest.mark.parametrize("bits", [8, 16])
def test_cmyk_split_among_the_lanes_converts_as_in_one_piece(bits: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each lane converts its share of the rows through the press profile; together they give
    what one LittleCMS call over the whole scan gives, and at 8 bits what Pillow gives."""
    from enhance_ops import deep_colour

    monkeypatch.setenv(strips.LANES_VARIABLE, "3")
    profile, srgb_icc = cmyk_profile(5), ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    ink = _cmyk_ramp()[:61] if bits == 16 else (_cmyk_ramp()[:61] >> 8).astype(np.uint8)  # 61 rows: 21, 21 and 19
    rgb, refused = deep_colour.cmyk_to_srgb(ink, profile, srgb_icc)
    whole = imagecodecs.cms_transform(ink, profile, srgb_icc, colorspace="cmyk", outcolorspace="rgb", outdtype=ink.dtype)
    assert refused is None and rgb.dtype == ink.dtype
    np.testing.assert_array_equal(rgb, whole)
    if bits == 8:
        pillow = ImageCms.profileToProfile(Image.fromarray(ink, "CMYK"), ImageCms.ImageCmsProfile(io.BytesIO(profile)),
                                           ImageCms.createProfile("sRGB"), outputMode="RGB")
        assert np.abs(rgb.astype(int) - np.asarray(pillow)).max() <= 1
        naive = np.asarray(Image.fromarray(ink, "CMYK").convert("RGB")).astype(int)
        assert np.abs(deep_colour.cmyk_to_srgb(ink, None, srgb_icc)[0] - naive).max() <= 1


def test_16_bit_lab_split_among_the_lanes_converts_as_in_one_piece(monkeypatch: pytest.MonkeyPatch) -> None:
    from enhance_ops import deep_colour

    monkeypatch.setenv(strips.LANES_VARIABLE, "3")
    monkeypatch.setattr(strips, "STRIP_PIXELS", 360)  # strips of 5 rows (a lane's share of 360 pixels), 3 at once
    lab = lab16(RGB8, "cielab")  # 48 x 48
    srgb_icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    rgb, own = deep_colour.lab_to_srgb(lab, tifffile.PHOTOMETRIC.CIELAB, None, srgb_icc)
    whole = imagecodecs.cms_transform(deep_colour._lab_values(lab, tifffile.PHOTOMETRIC.CIELAB),
                                      imagecodecs.cms_profile("lab4"), srgb_icc, colorspace="lab",
                                      outcolorspace="rgb", outdtype=np.uint16)
    assert not own
    np.testing.assert_array_equal(rgb, whole)


@pytest.mark.parametrize("bits", [8, 16])
def test_a_cmyk_tiff_whose_profile_littlecms_cannot_open_is_converted_without_it(bits: int) -> None:
    """Found by fuzzing: a damaged tag count in the profile made LittleCMS refuse it with an
    OSError, which the conversion did not catch, and the image failed as an internal error.
    A 16-bit one was then read at 8 bits, as Pillow's CMYK is, though it converts at 16 naively."""
    profile = bytearray(cmyk_profile())
    profile[128] = 0x82  # the tag count: 2,181,038,084
    ink = _cmyk_ramp()[:8, :8]
    stored = ink if bits == 16 else (ink >> 8).astype(np.uint8)
    with_profile, without = io.BytesIO(), io.BytesIO()
    tifffile.imwrite(with_profile, stored, photometric="separated", iccprofile=bytes(profile))
    tifffile.imwrite(without, stored, photometric="separated")
    decoded = codecs.decode(with_profile.getvalue())
    assert decoded.pixels.shape == (8, 8, 3) and decoded.bit_depth == bits
    assert decoded.notes[0] == "CMYK ICC profile unusable (cmsOpenProfileFromMem returned NULL); converted without it"
    np.testing.assert_array_equal(decoded.pixels, codecs.decode(without.getvalue()).pixels)  # naive, at its own depth


@pytest.mark.parametrize("profiled", [True, False])
def test_cielab_tiff_is_converted_to_srgb_as_photoshop_means_it(profiled: bool) -> None:
    """Through its own profile, or else against a D50 white, as Photoshop and the ICC write
    Lab; OpenCV's (libtiff's) conversion was off by about ten levels on average, and
    Pillow's, used until 2026-12-07, by up to 4 where LittleCMS from tifffile's samples is
    off by 2."""
    srgb = ImageCms.createProfile("sRGB")
    lab = ImageCms.profileToProfile(Image.fromarray(RGB8), srgb, ImageCms.createProfile("LAB", 5000), outputMode="LAB")
    if not profiled:
        del lab.info["icc_profile"]
    buf = io.BytesIO()
    lab.save(buf, "TIFF")  # photometric CIELab, a* and b* as signed bytes
    decoded = codecs.decode(buf.getvalue(), samples=True)
    assert decoded.mode == "LAB" and decoded.pixels.shape == (48, 48, 3)
    assert np.abs(decoded.pixels.astype(int) - RGB8).mean() < 0.45 and np.abs(decoded.pixels.astype(int) - RGB8).max() <= 2
    assert ImageCms.getProfileName(ImageCms.ImageCmsProfile(io.BytesIO(decoded.metadata.icc_profile))).startswith("sRGB")
    through = "the embedded ICC" if profiled else "a D50 Lab"
    assert decoded.notes == [f"CIELab converted to sRGB through {through} profile"]


@pytest.mark.parametrize(("photometric", "profiled"), [("cielab", False), ("icclab", False), ("cielab", True)])
def test_a_16_bit_lab_tiff_is_converted_to_srgb_at_16_bits(photometric: str, profiled: bool) -> None:
    """Refused until 2026-12-05 (Pillow's LAB is 8-bit): a museum's 16-bit Lab master. It is
    opened for its tags with an 8-bit stand-in (tiff_header) and converted by LittleCMS."""
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB", 5000)).tobytes() if profiled else None
    buf = io.BytesIO()
    tifffile.imwrite(buf, np.rot90(lab16(RGB8, photometric), 1), photometric=photometric, iccprofile=profile,
                     extratags=[(271, "s", 0, "Hasselblad", True), (274, "H", 1, 6, True)])  # stored turned
    decoded = codecs.decode(buf.getvalue())
    assert (decoded.bit_depth, decoded.bits_per_sample, decoded.pixels.shape) == (16, 16, (48, 48, 3))
    through = "the embedded ICC" if profiled else "a D50 Lab"
    assert decoded.notes == [f"CIELab converted to sRGB at 16 bits through {through} profile"]
    assert np.abs(decoded.pixels * 255 - RGB8).max() < 0.1  # the same colours, upright, to a tenth of a level
    assert decoded.metadata.exif["0th"][271] == b"Hasselblad"
    assert ImageCms.getProfileName(ImageCms.ImageCmsProfile(io.BytesIO(decoded.metadata.icc_profile))).startswith("sRGB")


def test_bmp_is_read_and_written_as_png() -> None:
    decoded = codecs.decode(save(RGB8, "BMP"))
    assert decoded.output_format == "PNG"
    assert Image.open(io.BytesIO(reencode(decoded))).format == "PNG"


def _bmp_v5(rgb: np.ndarray, alpha: np.ndarray) -> bytes:
    """A 32-bit BMP with a BITMAPV5HEADER whose masks name an alpha byte, as the format lays it out."""
    height, width = rgb.shape[:2]
    body = np.dstack([rgb[::-1, :, ::-1], alpha[::-1]]).tobytes()  # bottom-up rows of BGRA
    info = struct.pack("<IiiHHIIiiII", 124, width, height, 1, 32, 3, len(body), 2835, 2835, 0, 0)
    info += struct.pack("<IIII", 0x00FF0000, 0x0000FF00, 0x000000FF, 0xFF000000) + b"BGRs" + bytes(124 - 60)
    return b"BM" + struct.pack("<IHHI", 14 + len(info) + len(body), 0, 0, 14 + len(info)) + info + body


def test_a_bmp_whose_alpha_mask_was_never_filled_in_is_opaque() -> None:
    """An alpha mask with every alpha byte 0 (writers that declare the mask and leave the byte
    as padding): read as such, the whole derivative was transparent, blank where it is shown."""
    empty = codecs.decode(_bmp_v5(RGB8, np.zeros(RGB8.shape[:2], np.uint8)), samples=True)
    assert empty.alpha is None and np.array_equal(empty.pixels, RGB8)
    assert empty.notes == ["the BMP's alpha is zero everywhere: taken as unused, as browsers take it, so the image is opaque"]
    kept = codecs.decode(_bmp_v5(RGB8, RGB8[:, :, 0]), samples=True)  # a mask that says something stays
    assert np.array_equal(kept.alpha, RGB8[:, :, 0]) and kept.notes == []


@pytest.mark.parametrize("green_bits", [6, 5])
def test_a_bmp_of_16_bits_a_pixel_is_read_and_one_cut_short_is_truncated(green_bits: int) -> None:
    """OpenCV does not decode 16-bit bitfields (as ImageMagick's ``-define bmp:subtype=RGB565``
    writes them), and such a sound scan was refused as damaged; Pillow reads it."""
    data = bmp_16_bits(RGB8[:, :-1], green_bits)  # an odd width: each row padded to 4 bytes
    decoded = codecs.decode(data, samples=True)
    assert decoded.alpha is None and decoded.pixels.shape == RGB8[:, :-1].shape
    assert np.abs(decoded.pixels.astype(int) - RGB8[:, :-1]).max() <= 7  # 5 bits a channel, expanded to 8
    with pytest.raises(TruncatedImageError, match="BMP pixel data is incomplete"):
        codecs.decode(data[:-100])


def _letter() -> bytes:
    """A letter scanned into one TIFF: a colour page with its own profile and EXIF, its
    thumbnail, a 16-bit grey page turned by its Orientation tag, a transparency mask, and an
    RGBA page (read by tifffile, not OpenCV)."""
    grey = (RGB8[:40, :30, 1].astype(np.uint16) * 257)
    buf = io.BytesIO()
    with tifffile.TiffWriter(buf) as tif:
        tif.write(RGB8, photometric="rgb", iccprofile=SRGB_ICC, metadata=None)
        tif.write(RGB8[::8, ::8], photometric="rgb", subfiletype=1, metadata=None)
        tif.write(grey, photometric="minisblack", extratags=[(274, "H", 1, 6, True)], metadata=None)
        tif.write(np.zeros((48, 48), bool), photometric="minisblack", subfiletype=4, metadata=None)
        tif.write(np.dstack([255 - RGB8[:20], RGB8[:20, :, 0]]), photometric="rgb", extrasamples=["unassalpha"],
                  metadata=None)
    return buf.getvalue()


def test_a_tiffs_pages_are_its_full_resolution_directories_each_decoded_as_itself() -> None:
    data = _letter()
    pages = codecs.pages(data)
    assert pages.frames == (0, 2, 4) and pages.sizes == ((48, 48), (40, 30), (48, 20))  # the grey page upright
    assert pages.notes == ("1 reduced-resolution copy(s) in the file not enhanced: not pages of the document",
                           "1 transparency mask(s) in the file not enhanced: not pages of the document")
    first, grey, rgba = (codecs.decode(data, frame=frame, samples=True) for frame in pages.frames)
    assert np.array_equal(first.pixels, RGB8) and first.metadata.icc_profile == SRGB_ICC
    assert grey.bit_depth == 16 and grey.metadata.icc_profile is None
    assert np.array_equal(grey.pixels[:, :, 0], np.rot90(RGB8[:40, :30, 1].astype(np.uint16) * 257, -1))
    assert np.array_equal(rgba.pixels, 255 - RGB8[:20]) and np.array_equal(rgba.alpha, RGB8[:20, :, 0])
    assert pages.sample_bytes == 48 * 48 * 3 + 40 * 30 * 2 + 48 * 20 * 4


def test_a_registers_folio_labels_and_page_numbers_are_carried_to_each_page() -> None:
    """piexif has no entry for PageName, PageNumber or X/YPosition and passes over them: a
    register's folio labels were left out of every page of its derivative, with a note."""
    from enhance_ops.enhance import EnhanceOptions, Enhancer

    buf = io.BytesIO()
    with tifffile.TiffWriter(buf) as tif:
        for n, folio in enumerate(("f. 12r", "f. 12v")):
            tif.write(RGB8, photometric="rgb", metadata=None, extratags=[
                (285, "s", 0, folio, True), (297, "H", 2, (n, 2), True), (286, "2I", 1, (3, 2), True),
                *[(40000, "s", 0, "a scanner's own", True)][:1 - n]])  # a private tag, on the first page
    result = Enhancer(EnhanceOptions(preset="fidelity", overrides=("superres.scale=2", "superres.models=[]"))
                      ).enhance(buf.getvalue())
    assert result.record["notes"] == ["EXIF tags not carried, unknown to the EXIF writer: unknown (40000)"]
    with tifffile.TiffFile(io.BytesIO(result.data)) as tif:
        carried = [{tag.code: tag.value for tag in page.tags if tag.code in (285, 286, 297)} for page in tif.pages]
    assert carried == [{285: "f. 12r", 286: (3, 2), 297: (0, 2)}, {285: "f. 12v", 286: (3, 2), 297: (1, 2)}]


def test_a_later_page_pillow_cannot_open_is_named() -> None:
    buf = io.BytesIO()
    with tifffile.TiffWriter(buf) as tif:
        tif.write(RGB8, photometric="rgb")
        tif.write(RGB8.astype(np.float32), photometric="rgb")
    with pytest.raises(UnsupportedImageError, match="float32 samples are not processed"):
        codecs.decode(buf.getvalue(), frame=1)


@pytest.mark.parametrize("bigtiff", [False, True])
def test_a_broken_directory_chain_is_said_not_passed_over(bigtiff: bool) -> None:
    """tifffile stops listing pages, with no error, at a next-directory offset past the end
    of the file: the third page would have gone missing without a word."""
    buf = io.BytesIO()
    tifffile.imwrite(buf, np.stack([RGB8, 255 - RGB8, RGB8]), photometric="rgb", bigtiff=bigtiff)
    data = bytearray(buf.getvalue())
    with tifffile.TiffFile(io.BytesIO(bytes(data))) as tif:
        second = tif.pages[1].offset
    count, pointer, entry = ("<Q", "<Q", 20) if bigtiff else ("<H", "<I", 12)
    entries = struct.unpack_from(count, data, second)[0]
    struct.pack_into(pointer, data, second + struct.calcsize(count) + entry * entries, len(data) + 5000)
    pages = codecs.pages(bytes(data))
    assert pages.frames == (0,) and not pages.complete and pages.notes == (
        f"the pages after the first cannot be read (ValueError: a directory offset ({len(data) + 5000}) points "
        "outside the file or back into the chain): only the first is enhanced",)


def _artist_damaged() -> bytes:
    """A two-page TIFF whose second page's Artist tag points past the end of the file."""
    buf = io.BytesIO()
    with tifffile.TiffWriter(buf) as tif:
        for page in (RGB8, 255 - RGB8):
            tif.write(page, photometric="rgb", extratags=[(315, "s", 0, "A. Clerk of the Court", True)], metadata=None)
    data = bytearray(buf.getvalue())
    with tifffile.TiffFile(io.BytesIO(bytes(data))) as tif:
        artist = tif.pages[1].tags["Artist"]
    struct.pack_into("<I", data, artist.offset + 8, len(data) + 1000)
    return bytes(data)


def test_a_damaged_tag_skipped_in_reading_is_noted_not_only_logged() -> None:
    """tifffile logs the tag it skips and Pillow warns; neither reached the ledger, so the
    Artist of page 2 was lost with the task log as the only trace."""
    data = _artist_damaged()
    pages = codecs.pages(data)
    assert pages.frames == (0, 1) and pages.notes == (
        "page 2: TIFF tag 315 (Artist) is damaged (invalid value offset %d) and was skipped: it is not in the "
        "derivative" % (len(data) + 1000),)
    assert codecs.decode(data, frame=1).metadata.exif["0th"].get(315) is None  # lost indeed
    assert codecs.decode(data).metadata.exif["0th"][315] == b"A. Clerk of the Court"  # page 1's is whole
    assert codecs.pages(save(RGB8, "TIFF")).notes == ()
    from enhance_ops.enhance import EnhanceOptions, Enhancer

    result = Enhancer(EnhanceOptions(preset="fidelity", overrides=("superres.scale=2", "superres.models=[]"))
                      ).enhance(data)
    assert pages.notes[0] in result.record["notes"]
    artists = [codecs.decode(result.data, frame=n).metadata.exif["0th"].get(315) for n in (0, 1)]
    assert artists == [b"A. Clerk of the Court", None]


def test_a_tiff_whose_samples_would_not_fit_the_pixel_limits_memory_is_refused_before_decoding() -> None:
    """Found by fuzzing: a damaged SamplesPerPixel (57,859 on an RGB page whose width read
    48,152) passed the pixel limit, and tifffile asked for 41.5 GiB; without an address-space
    limit a worker would have been killed rather than the image failed."""
    buf = io.BytesIO()
    tifffile.imwrite(buf, RGB8[:16], photometric="rgb", compression="zlib")
    data = bytearray(buf.getvalue())
    with tifffile.TiffFile(io.BytesIO(bytes(data))) as tif:
        width, samples = tif.pages[0].tags["ImageWidth"], tif.pages[0].tags["SamplesPerPixel"]
    struct.pack_into("<I" if width.dtype == 4 else "<H", data, width.offset + 8, 48_152)
    struct.pack_into("<H", data, samples.offset + 8, 57_859)
    with pytest.raises(ImageTooLargeError, match="TIFF page of 48152x16 with 57,859 samples per pixel would take "
                                                 "44,576,425,088 bytes decoded, past 50,000,000 pixels"):
        codecs.decode(bytes(data), max_pixels=50_000_000)


_QUIET_CHECK = """
import sys
from hostile_corpus import build
from enhance_ops import codecs
from enhance_ops.errors import EnhanceError
cases = build()
for name in ("tiled.tif", "bit-rot-deflate.tif", "multipage-cut-chain.tif", "truncated.gif"):
    try:
        print(name, codecs.decode(cases[name].data).pixels.shape)
    except EnhanceError as exc:
        print(name, exc.code)
"""


def _png_with_pixel_data(png: bytes, raw: bytes) -> bytes:
    """``png`` with its IDAT chunks replaced by one holding ``raw`` (filtered rows), compressed."""
    chunks = [png[start:end] for kind, start, end in png_chunks._chunks(png) if kind != b"IDAT"]
    return png[:8] + b"".join(chunks[:-1]) + png_chunks.chunk(b"IDAT", zlib.compress(raw)) + chunks[-1]


def test_a_png_whose_pixel_data_cannot_be_decoded_says_why() -> None:
    """OpenCV gives None, and libpng's reason went to stderr naming no file: the ledger said
    only "damaged file" (until 2026-12-05). zlib's words, or the rows', are now the error's."""
    png = save(RGB8, "PNG")
    at = png.index(b"IDAT")
    raw = zlib.decompress(png[at + 4 : at + 4 + struct.unpack(">I", png[at - 4 : at])[0]])
    row = 1 + RGB8.shape[1] * 3
    flipped = bytearray(png)
    flipped[at + 20] ^= 0x10
    bad_filter = bytearray(raw)
    bad_filter[4 * row] = 7
    for data, why in ((bytes(flipped), r"the compressed data is damaged \(zlib: [a-z/ -]+\)"),
                      (_png_with_pixel_data(png, bytes(bad_filter)), r"row 5 names filter type 7 \(0 to 4 exist\)"),
                      (_png_with_pixel_data(png, raw[: 10 * row]), f"the data holds 10 of {RGB8.shape[0]} rows")):
        with pytest.raises(CorruptImageError, match=f"^PNG pixel data cannot be decoded: {why}$"):
            codecs.decode(data)


def test_opencv_says_nothing_on_stderr_of_files_it_cannot_read() -> None:
    """OpenCV logged libtiff's errors and its own on stderr, with no file named, in the middle
    of task logs and progress bars: "TIFF_Error Invalid tile byte count" for a sound tiled
    TIFF, which tifffile then read. What it could not read is read otherwise or is the image's
    own error in the ledger."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _QUIET_CHECK], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(str(PROJECT / p) for p in ("plugins", "tests"))})
    assert done.returncode == 0 and done.stderr == "", done.stderr[-2000:]
    assert done.stdout.splitlines() == ["tiled.tif (16, 24, 3)", "bit-rot-deflate.tif (16, 24, 3)",
                                        "multipage-cut-chain.tif (16, 24, 3)", "truncated.gif truncated"]


def test_a_bigtiff_is_known_as_a_tiff_by_its_first_bytes() -> None:
    """BigTIFF's first bytes were not among TIFF's: a 12-bit one, which Pillow does not open,
    was "not a recognised image file" rather than read by tifffile, as a classic TIFF is, and
    a damaged entry cost its other tags (``tiff_entries``). A big-endian one, whose header
    Pillow reads as a classic TIFF's and so cannot open, is refused by name."""
    twelve = (RGB8.astype(np.uint16) * 4095 // 255).astype(np.uint16)
    buf = io.BytesIO()
    tifffile.imwrite(buf, twelve, photometric="rgb", bigtiff=True, bitspersample=12)
    decoded = codecs.decode(buf.getvalue())
    assert decoded.bits_per_sample == 12
    np.testing.assert_array_equal(np.rint(decoded.pixels * 65535).astype(np.uint16) >> 4, twelve)
    buf = io.BytesIO()
    tifffile.imwrite(buf, RGB8, photometric="rgb", bigtiff=True, byteorder=">")
    with pytest.raises(UnsupportedImageError, match="big-endian BigTIFF images are not processed; save it as a "
                                                    r"little-endian \(Intel\) TIFF"):
        codecs.decode(buf.getvalue())


@pytest.mark.parametrize("order, big", [("<", False), (">", False), ("<", True)], ids=["II", "MM", "BigTIFF"])
def test_one_damaged_tag_costs_itself_alone_not_the_profile_resolution_and_exif_after_it(order: str, big: bool) -> None:
    """Pillow adds up the sizes of a directory's values and skips every value after the total
    passes the file's size: a description whose count was damaged to 50 million took the
    Adobe RGB profile, the 600 dpi and the Artist read after it, with no note, and the
    derivative was taken for sRGB; a CMYK page's press profile so, and it was converted naively."""
    from enhance_ops.chain.icc import SPACES, build_profile

    adobe = build_profile(SPACES["Adobe RGB"])
    for samples, profile, photometric in ((RGB8, adobe, "rgb"), (_cmyk_ramp()[:8, :8], cmyk_profile(), "separated")):
        buf = io.BytesIO()
        tifffile.imwrite(buf, samples, photometric=photometric, description="Box 7, folder 2, the harbour",
                         byteorder=order, bigtiff=big,
                         resolution=(600, 600), resolutionunit="INCH", iccprofile=profile,
                         extratags=[(315, "s", 0, "A. Clerk of the Court", True)], metadata=None)
        data = bytearray(buf.getvalue())
        with tifffile.TiffFile(io.BytesIO(bytes(data))) as tif:
            description = tif.pages[0].tags["ImageDescription"]
        struct.pack_into(order + ("Q" if big else "I"), data, description.offset + 4, 50_000_000)  # its count
        data = bytes(data)
        assert codecs.pages(data).notes == (f"TIFF tag 270 (ImageDescription) is damaged (invalid value offset "
                                            f"{description.valueoffset}) and was skipped: it is not in the derivative",)
        decoded = codecs.decode(data)
        assert decoded.metadata.dpi == (600, 600) and decoded.metadata.exif["0th"][315] == b"A. Clerk of the Court"
        if photometric == "rgb":
            assert decoded.metadata.icc_profile == adobe
        else:
            assert "CMYK converted to sRGB at 16 bits through the embedded ICC profile" in decoded.notes
        assert 270 not in decoded.metadata.exif["0th"]


def test_a_directory_with_one_entry_of_a_damaged_type_is_mended_one_with_more_is_not_a_directory() -> None:
    """Bit rot in one entry's type leaves the directory a directory (Pillow passes over that
    entry); bytes with more entries of no TIFF type are taken for pixel data, not touched."""
    from enhance_ops import tiff_entries

    buf = io.BytesIO()
    tifffile.imwrite(buf, RGB8, photometric="rgb", description="Box 7, folder 2, the harbour",
                     extratags=[(315, "s", 0, "A. Clerk of the Court", True)], metadata=None)
    data = bytearray(buf.getvalue())
    with tifffile.TiffFile(io.BytesIO(bytes(data))) as tif:
        tags = tif.pages[0].tags
        description, software, unit = tags[270].offset, tags[305].offset, tags[296].offset
    struct.pack_into("<I", data, description + 4, 50_000_000)
    struct.pack_into("<H", data, software + 2, 108)
    assert codecs.decode(bytes(data)).metadata.exif["0th"][315] == b"A. Clerk of the Court"
    mended = tiff_entries.for_pillow(bytes(data))  # Pillow's view: the damaged count's entry typed 0, nothing else
    expected = bytearray(data)
    expected[description + 2:description + 4] = b"\x00\x00"
    assert mended.read(7) + mended.read(1000) + mended.read() == expected
    mended.seek(description)
    assert mended.read(4) == bytes(expected[description:description + 4])
    struct.pack_into("<H", data, unit + 2, 108)
    assert tiff_entries.past_the_end(bytes(data)) == []


def test_a_damaged_entry_of_a_tiffs_exif_directory_costs_itself_alone_and_is_noted() -> None:
    """The same in a page's EXIF directory, which tifffile passes over without a word: the
    lens and every value after a damaged date were lost, and the date with no note."""
    exif = piexif.dump({"0th": {piexif.ImageIFD.Make: b"Linhof"}, "Exif": {
        piexif.ExifIFD.DateTimeOriginal: b"1931:05:02 10:00:00", piexif.ExifIFD.LensModel: b"Zeiss Tessar 4,5/105"}})
    data = bytearray(reencode(codecs.decode(save(RGB8, "JPEG", exif=exif)), "TIFF"))
    with tifffile.TiffFile(io.BytesIO(bytes(data))) as tif:
        directory = tif.pages[0].tags["ExifTag"].valueoffset
    order = "<" if data[:2] == b"II" else ">"
    entries = [struct.unpack_from(order + "HHII", data, directory + 2 + 12 * n)
               for n in range(struct.unpack_from(order + "H", data, directory)[0])]
    date = [tag for tag, *_ in entries].index(piexif.ExifIFD.DateTimeOriginal)
    struct.pack_into(order + "I", data, directory + 2 + 12 * date + 4, 50_000_000)  # its count
    data = bytes(data)
    assert codecs.pages(data).notes == ("EXIF tag 36867 (DateTimeOriginal) is damaged (its value runs past the end "
                                        "of the file) and was skipped: it is not in the derivative",)
    kept = codecs.decode(data).metadata.exif
    assert kept["Exif"][piexif.ExifIFD.LensModel] == b"Zeiss Tessar 4,5/105" and kept["0th"][271] == b"Linhof"
    assert piexif.ExifIFD.DateTimeOriginal not in kept["Exif"]


def test_what_tifffile_says_in_another_thread_is_that_threads_own() -> None:
    import threading

    from enhance_ops import tiff_log

    notes: list[str] = []
    elsewhere: list[codecs.Pages] = []
    with tiff_log.gathered(notes):  # a shard reads the next master while the chain runs
        reader = threading.Thread(target=lambda: elsewhere.append(codecs.pages(_artist_damaged())))
        reader.start()
        reader.join()
    assert notes == [] and "Artist" in elsewhere[0].notes[0]


def test_a_page_opencv_raises_on_is_read_otherwise_not_an_internal_error() -> None:
    """OpenCV raised (a cv2.error, so an internal error in the ledger) decoding page 2 when
    page 3's Photometric tag declares more values than it has (found by fuzzing)."""
    buf = io.BytesIO()
    tifffile.imwrite(buf, np.stack([RGB8, 255 - RGB8, RGB8[::-1]]), photometric="rgb", metadata=None)
    data = bytearray(buf.getvalue())
    with tifffile.TiffFile(io.BytesIO(bytes(data))) as tif:
        photometric = tif.pages[2].tags["PhotometricInterpretation"].offset
    struct.pack_into("<I", data, photometric + 4, 7 << 16)
    decoded = codecs.decode(bytes(data), frame=1, samples=True)
    assert np.array_equal(decoded.pixels, 255 - RGB8)


def test_a_tiff_resolution_that_is_not_a_number_is_noted_not_an_internal_error() -> None:
    """A damaged XResolution read as text (b'\\x02', found by fuzzing) made float() raise,
    an internal error for a scan whose pixels are sound."""
    buf = io.BytesIO()
    tifffile.imwrite(buf, RGB8, photometric="rgb", metadata=None, resolution=(300, 300))
    data = bytearray(buf.getvalue())
    with tifffile.TiffFile(io.BytesIO(bytes(data))) as tif:
        entries = [tif.pages[0].tags[code].offset for code in (282, 283)]
    for at in entries:  # RATIONAL turned UNDEFINED, one byte, held in the entry
        struct.pack_into("<HI4s", data, at + 2, 7, 1, b"\x02\x00\x00\x00")
    decoded = codecs.decode(bytes(data), samples=True)
    assert np.array_equal(decoded.pixels, RGB8) and decoded.metadata.dpi is None
    assert "TIFF resolution not read: XResolution b'\\x02' and YResolution b'\\x02' are not numbers" in decoded.notes


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "TIFF"])
def test_a_resolution_past_the_jfif_density_is_carried_whole(fmt: str) -> None:
    """A 20,000-dpi microfilm scan at x4 is 80,000 dpi. JFIF's 16-bit density had it as
    14,464 (its low bits), so the derivative said a page 5.5 times larger; the EXIF block
    carries it now, which readers take where JFIF gives no unit."""
    meta = ImageMetadata(dpi=(20000.0, 20000.0))
    out = encoders.encode(RGB8[:16, :16] / 255, None, fmt=fmt, bit_depth=8, meta=meta, scale=4, provenance=PROV)
    assert Image.open(io.BytesIO(out)).info["dpi"] == pytest.approx((80000, 80000), rel=1e-6)
    assert codecs.decode(out).metadata.dpi == pytest.approx((80000, 80000), rel=1e-6)


def test_a_fine_resolution_with_a_fraction_fits_a_rational() -> None:
    """A micrograph's 100,000.05 px/cm at x4 (1,016,000.508 dpi): the nearest fraction of
    denominator 10,000 had a numerator past 32 bits, and the derivative failed to encode."""
    meta = ImageMetadata(dpi=(254000.127, 254000.127))
    out = encoders.encode(RGB8[:16, :16] / 255, None, fmt="TIFF", bit_depth=8, meta=meta, scale=4, provenance=PROV)
    assert codecs.decode(out).metadata.dpi == pytest.approx((1016000.508, 1016000.508), rel=1e-9)
    assert png_chunks.phys((2e8, 2e8)) is None  # past pHYs' 32 bits: the EXIF block carries it


@pytest.mark.parametrize("fmt", ["PNG", "TIFF", "JPEG"])
def test_a_pixel_aspect_no_32_bit_fraction_holds_is_left_out_not_a_failed_derivative(fmt: str) -> None:
    """Unitless densities of 2^32 - 1 and 1/(2^32 - 1), too far apart to be squared, are kept
    as the master's: their ratio overflowed the PNG's pHYs and raised struct.error."""
    meta = ImageMetadata(aspect=(float(2**32 - 1), 1 / (2**32 - 1)))
    out = encoders.encode(RGB8[:16, :16] / 255, None, fmt=fmt, bit_depth=8, meta=meta, scale=2, provenance=PROV)
    assert codecs.decode(out).size == (16, 16) and b"pHYs" not in out


def test_a_resolution_finer_than_any_instrument_is_a_tagging_error_not_a_failed_derivative() -> None:
    """XResolution 4294967295/1: x4, no rational holds it, and encoding the derivative raised
    struct.error, an internal error that also ended a local run."""
    buf = io.BytesIO()
    tifffile.imwrite(buf, RGB8, photometric="rgb", metadata=None, resolution=((2**32 - 1, 1), (2**32 - 1, 1)),
                     resolutionunit=2)
    decoded = codecs.decode(buf.getvalue())
    assert decoded.metadata.dpi is None and any("taken for a tagging error" in n for n in decoded.notes)
    out = encoders.encode(decoded.pixels, None, fmt="TIFF", bit_depth=8, meta=decoded.metadata, scale=4,
                          provenance=PROV)
    assert codecs.decode(out).metadata.dpi is None


def test_one_page_files_are_one_page() -> None:
    assert codecs.pages(save(RGB8, "PNG")) == codecs.Pages((0,), ((48, 48),), 48 * 48 * 3, complete=True)


def test_a_damaged_later_page_is_named_and_does_not_cost_the_first() -> None:
    """Pillow read every page directory to count the pages; the second one's width tag is
    damaged here (renumbered), which failed the whole scan with a bare TypeError."""
    buf = io.BytesIO()
    tifffile.imwrite(buf, np.stack([RGB8, 255 - RGB8]), photometric="rgb")
    data = bytearray(buf.getvalue())
    with tifffile.TiffFile(io.BytesIO(bytes(data))) as tif:
        second = tif.pages[1].offset
    (count,) = struct.unpack_from("<H", data, second)
    entries = [second + 2 + 12 * i for i in range(count)]
    [width] = [at for at in entries if struct.unpack_from("<H", data, at)[0] == 256]
    struct.pack_into("<H", data, width, 65000)
    decoded = codecs.decode(bytes(data), samples=True)
    assert np.array_equal(decoded.pixels, RGB8) and decoded.notes == []
    assert codecs.pages(bytes(data)).frames == (0, 1)
    with pytest.raises(CorruptImageError, match="declares no width or height: the file is damaged"):
        codecs.decode(bytes(data), frame=1)


def test_animated_webp_uses_the_first_frame_and_says_so() -> None:
    frames = [Image.fromarray(RGB8), Image.fromarray(255 - RGB8)]
    buf = io.BytesIO()
    frames[0].save(buf, "WEBP", save_all=True, append_images=frames[1:], lossless=True, duration=100)
    decoded = codecs.decode(buf.getvalue())
    assert np.array_equal((decoded.pixels * 255).round().astype(np.uint8), RGB8)
    pages = codecs.pages(buf.getvalue())
    assert pages.notes == ("file holds 2 frames: only the first is enhanced",) and not pages.complete


@pytest.mark.parametrize(("second_type", "left_out", "complete"), [
    (None, "1 image of undefined kind (a depth map, say)", True),
    (0x010002, "1 reduced copy (a preview)", True),  # a camera's Full-HD preview
    (0x020002, "1 other view of the subject (a stereo pair's, a panorama's or a multi-angle set's)", False),
])
def test_a_multi_picture_jpeg_is_its_primary_image(second_type: int | None, left_out: str, complete: bool) -> None:
    """Cameras that store a preview after the photo write MPF files, which Pillow calls MPO:
    they were refused as "MPO images are not processed"."""
    data = multi_picture(RGB8, second_type, exif=CAMERA_EXIF)
    primary = data[: data.index(b"\xff\xd9") + 2]  # the first image's own stream: SOI to its EOI
    decoded = codecs.decode(data)
    assert (decoded.format, decoded.output_format) == ("JPEG", "JPEG")
    assert np.array_equal(decoded.pixels, codecs.decode(primary).pixels)
    assert decoded.metadata.exif["0th"][piexif.ImageIFD.Make] == b"Epson"
    pages = codecs.pages(data)
    assert pages.frames == (0,) and pages.complete is complete
    assert pages.notes == (f"multi-picture JPEG: its primary image is enhanced; not in the derivative: {left_out}",)
    assert codecs.decode(reencode(decoded)).size == decoded.size


# --- orientation ---------------------------------------------------------------------------


def _oriented(fmt: str, orientation: int) -> bytes:
    rect = (photo("astronaut", None)[:30, :50] * 255).astype(np.uint8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    return save(rect, fmt, exif=exif.tobytes(), **({"quality": 100} if fmt == "JPEG" else {}))


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "TIFF", "WEBP"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_like_pillow_does(fmt: str, orientation: int) -> None:
    data = _oriented(fmt, orientation)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))), dtype=np.float32) / 255
    decoded = codecs.decode(data)
    assert decoded.pixels.shape == expected.shape
    assert np.abs(decoded.pixels - expected).max() <= 1 / 255
    assert codecs.oriented_size(data) == decoded.size
    assert _exif_of(reencode(decoded))["0th"].get(piexif.ImageIFD.Orientation, 1) == 1


def _xmp_turned(orientation: int, element: bool) -> bytes:
    said = (f"<tiff:Orientation>{orientation}</tiff:Orientation>" if element else "")
    return (f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            f'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/"'
            f'{"" if element else f" tiff:Orientation={chr(34)}{orientation}{chr(34)}"}>{said}'
            "</rdf:Description></rdf:RDF></x:xmpmeta>").encode()


@pytest.mark.parametrize(("fmt", "element"), [("PNG", False), ("TIFF", True), ("WEBP", False)])
def test_an_orientation_only_xmp_states_is_applied(fmt: str, element: bool) -> None:
    """Adobe's tools turn a file by its XMP tiff:Orientation where no EXIF orientation says
    otherwise; the derivative's XMP says upright, so its pixels must be."""
    rect = RGB8[:30]
    xmp = _xmp_turned(6, element)
    if fmt == "PNG":
        info = PngImagePlugin.PngInfo()
        info.add_itxt("XML:com.adobe.xmp", xmp.decode())
        data = save(rect, "PNG", pnginfo=info)
    elif fmt == "TIFF":
        buf = io.BytesIO()
        tifffile.imwrite(buf, rect, photometric="rgb", extratags=[(700, "B", len(xmp), xmp, True)])
        data = buf.getvalue()
    else:
        data = save(rect, "WEBP", lossless=True, xmp=xmp)
    decoded = codecs.decode(data, samples=True)
    assert np.array_equal(decoded.pixels, np.rot90(rect, -1)) and codecs.oriented_size(data) == (30, 48)
    assert decoded.notes == ["orientation 6 read from the XMP (tiff:Orientation): the file has no EXIF orientation"]
    again = codecs.decode(reencode(codecs.decode(data)))  # the derivative, upright, and its XMP saying so
    assert again.size == (30, 48) and again.metadata.orientation == 1 and again.notes == []


def test_an_exif_orientation_outranks_the_xmps() -> None:
    rect = RGB8[:30]
    exif = Image.Exif()
    exif[0x0112] = 1
    data = save(rect, "WEBP", lossless=True, exif=exif.tobytes(), xmp=_xmp_turned(6, False))
    decoded = codecs.decode(data, samples=True)
    assert np.array_equal(decoded.pixels, rect) and decoded.notes == []


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "TIFF"])
def test_the_masters_compression_ratio_is_not_said_of_the_derivative(fmt: str) -> None:
    exif = piexif.dump({"0th": {piexif.ImageIFD.Make: b"Canon"},
                        "Exif": {piexif.ExifIFD.CompressedBitsPerPixel: (5, 1), piexif.ExifIFD.FNumber: (8, 1)}})
    decoded = codecs.decode(save(RGB8, "JPEG", exif=exif))
    assert decoded.metadata.exif["Exif"][piexif.ExifIFD.CompressedBitsPerPixel] == (5, 1)
    carried = Image.open(io.BytesIO(reencode(decoded, fmt, scale=2))).getexif().get_ifd(0x8769)
    assert piexif.ExifIFD.CompressedBitsPerPixel not in carried and carried[piexif.ExifIFD.FNumber] == 8


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "TIFF", "WEBP"])
def test_the_derivatives_xmp_says_upright_and_its_own_size_as_its_exif_does(fmt: str) -> None:
    xmp = (  # as Lightroom writes it: orientation and size as attributes and as elements
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" xmlns:exif="http://ns.adobe.com/exif/1.0/" '
        'tiff:Orientation="6" exif:PixelXDimension="10"><tiff:ImageWidth>10</tiff:ImageWidth>'
        '<tiff:XResolution>300/1</tiff:XResolution><exif:PixelYDimension>12</exif:PixelYDimension>'
        "</rdf:Description></rdf:RDF></x:xmpmeta>"
    )
    meta = ImageMetadata(xmp=xmp.encode(), dpi=(300.0, 300.0), orientation=6)  # a 12 x 10 master, stored sideways
    decoded = codecs.decode(encoders.encode(RGB8[:40] / 255, None, fmt=fmt, bit_depth=8, meta=meta, scale=4,
                                            provenance=PROV))
    carried = decoded.metadata.xmp.decode()
    assert 'tiff:Orientation="1"' in carried  # a viewer trusting it turns nothing again
    assert 'exif:PixelXDimension="48"' in carried and "<tiff:ImageWidth>48<" in carried  # the pixels' own
    assert "<exif:PixelYDimension>40<" in carried and "<tiff:XResolution>1200/1<" in carried
    assert decoded.size == (48, 40)


# --- metadata ------------------------------------------------------------------------------


def _exif_of(data: bytes) -> dict:
    im = Image.open(io.BytesIO(data))
    raw = im.info.get("exif") or im.getexif().tobytes()
    return piexif.load(raw)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF"])
def test_metadata_is_carried_scaled_and_marked(fmt: str) -> None:
    options: dict[str, object] = {"exif": CAMERA_EXIF, "icc_profile": SRGB_ICC, "xmp": XMP}
    if fmt != "WEBP":
        options["dpi"] = (300, 300)
    if fmt == "PNG":
        options.pop("xmp")
        from PIL import PngImagePlugin

        info = PngImagePlugin.PngInfo()
        info.add_itxt("XML:com.adobe.xmp", XMP.decode())
        options["pnginfo"] = info
    if fmt == "TIFF":  # Pillow's TIFF writer takes its tags (XMP too) from one Exif object
        options.pop("xmp")
        tags = Image.Exif()
        tags.load(CAMERA_EXIF)
        tags[700] = XMP
        options["exif"] = tags
    decoded = codecs.decode(save(RGB8, fmt, **options))
    assert decoded.metadata.icc_profile == SRGB_ICC and decoded.metadata.xmp == XMP
    out = reencode(decoded, scale=4)
    im = Image.open(io.BytesIO(out))
    assert im.info.get("icc_profile") == SRGB_ICC
    assert (im.info.get("xmp") or im.info.get("XML:com.adobe.xmp", "").encode()) == XMP
    if fmt != "WEBP":
        assert im.info["dpi"] == pytest.approx((1200, 1200), abs=0.1)
    exif = _exif_of(out)
    assert exif["0th"][piexif.ImageIFD.Make] == b"Epson"
    assert exif["0th"][piexif.ImageIFD.Software] == b"archive-enhance test"
    assert exif["0th"][piexif.ImageIFD.ImageDescription].startswith(b"Enhanced derivative")
    assert exif["Exif"][piexif.ExifIFD.DateTimeOriginal] == b"1962:05:01 10:00:00"
    assert exif["Exif"][piexif.ExifIFD.PixelXDimension] == 48


def test_png_masters_text_is_carried_with_our_marking_first() -> None:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Copyright", "© 1931 City Archive")  # tEXt, Latin-1
    info.add_text("Author", "J. Smith", zip=True)  # zTXt
    info.add_itxt("Title", "Hafen, Großaufnahme", lang="de", zip=True)  # compressed iTXt
    info.add_text("Description", "Harbour at low tide")
    info.add_text("Software", "ScanStation 4.2")
    decoded = codecs.decode(save(RGB8, "PNG", pnginfo=info))
    out = Image.open(io.BytesIO(reencode(decoded, scale=2)))
    out.load()
    assert out.text == {
        "Software": "archive-enhance test",
        "Description": f"{PROV.description} | master's description: Harbour at low tide",
        "Copyright": "© 1931 City Archive",
        "Author": "J. Smith",
        "Title": "Hafen, Großaufnahme",
    }


def _png_with_chunks(*chunks: tuple[bytes, bytes], before_pixels: bool = False, image: np.ndarray = RGB8) -> bytes:
    """The test photo as a PNG with these chunks after its pixel data, or before it (after IHDR)."""
    png = save(image, "PNG")
    at = 33 if before_pixels else png.index(b"IEND") - 4
    added = b"".join(struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
                     for kind, body in chunks)
    return png[:at] + added + png[at:]


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "TIFF"])
def test_a_png_told_linear_by_its_gama_chunk_keeps_looking_so_in_every_derivative(fmt: str) -> None:
    """Browsers honour gAMA where a PNG has no profile: a linear scan (gAMA 1.0) shown as
    sRGB would be far darker. The chunk becomes a profile every format carries."""
    decoded = codecs.decode(_png_with_chunks((b"gAMA", struct.pack(">I", 100_000)), before_pixels=True))
    assert decoded.notes == ["PNG gAMA 1 carried as an ICC profile, so the derivative displays as the master does"]
    out = Image.open(io.BytesIO(reencode(decoded, fmt=fmt)))
    profile = ImageCms.ImageCmsProfile(io.BytesIO(out.info["icc_profile"]))
    as_displayed = np.asarray(ImageCms.profileToProfile(out.convert("RGB"), profile, ImageCms.createProfile("sRGB")))
    linear = (RGB8 / 255.0) ** 1.0
    srgb = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055) * 255
    assert np.abs(as_displayed - srgb).mean() < (3 if fmt == "JPEG" else 1.5)


@pytest.mark.parametrize(("alpha", "fmt", "written"), [
    (False, "PNG", "L"), (False, "TIFF", "L"), (False, "WEBP", "RGB"),
    (True, "PNG", "LA"), (True, "TIFF", "LA"), (True, "WEBP", "RGBA"),
])
def test_a_grey_png_told_linear_by_its_gama_chunk_keeps_looking_so_however_its_grey_is_stored(
        alpha: bool, fmt: str, written: str) -> None:
    """A grey PNG gets a grey profile, which is only valid on grey samples: where the
    derivative stores the grey as colour (WebP has no grey; PNG's grey with alpha was RGBA
    while OpenCV wrote it, until 2026-12-06) it is carried as the same grey in an RGB profile. Before, a grey profile went onto RGB
    samples, which libpng refuses ("Gray color space not permitted on RGB PNG") and viewers
    ignore, and a grey PNG with alpha got no profile at all from its gAMA."""
    grey = RGB8[:, :, 1]
    image = np.dstack([grey, RGB8[:, :, 0]]) if alpha else grey
    decoded = codecs.decode(_png_with_chunks((b"gAMA", struct.pack(">I", 100_000)), before_pixels=True, image=image))
    assert decoded.notes == ["PNG gAMA 1 carried as an ICC profile, so the derivative displays as the master does"]
    out = Image.open(io.BytesIO(reencode(decoded, fmt=fmt)))
    profile = ImageCms.ImageCmsProfile(io.BytesIO(out.info["icc_profile"]))
    colour = out.convert(written[:-1] if alpha else written)
    assert out.mode == written and profile.profile.xcolor_space == ("GRAY" if colour.mode == "L" else "RGB ")
    as_displayed = np.asarray(ImageCms.profileToProfile(colour, profile, ImageCms.createProfile("sRGB"),
                                                        outputMode="RGB"))
    linear = grey / 255.0
    srgb = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055) * 255
    assert np.abs(as_displayed - srgb[:, :, None]).mean() < (3 if fmt == "WEBP" else 1.5)


def test_a_grey_profile_as_rgb_puts_every_grey_where_the_grey_profile_does() -> None:
    from enhance_ops.chain import icc

    dot_gain = icc.build_grey_profile("Dot Gain 20%", icc.Curve(table=tuple(np.linspace(0, 1, 256) ** 1.8)))
    rgb = ImageCms.ImageCmsProfile(io.BytesIO(icc.grey_as_rgb(dot_gain)))
    assert rgb.profile.xcolor_space == "RGB " and rgb.profile.profile_description == "Dot Gain 20% (as RGB)"
    ramp = np.tile(np.arange(256, dtype=np.uint8), (4, 1))
    lab = ImageCms.createProfile("LAB")
    from_grey = ImageCms.profileToProfile(Image.fromarray(ramp), ImageCms.ImageCmsProfile(io.BytesIO(dot_gain)), lab,
                                          outputMode="LAB")
    from_rgb = ImageCms.profileToProfile(Image.fromarray(np.dstack([ramp] * 3)), rgb, lab, outputMode="LAB")
    difference = np.abs(np.asarray(from_grey, np.int16) - np.asarray(from_rgb, np.int16))
    assert difference.max() <= 1  # L*, a*, b* within one step of 8-bit Lab
    assert icc.grey_as_rgb(icc.build_profile(icc.SPACES["sRGB"])) is None  # not grey: nothing to do
    assert icc.grey_as_rgb(dot_gain[:-40]) is None  # its curve cut short: left as it is


def _tag_moved(profile: bytes, sig: bytes, offset: int) -> bytes:
    """``profile`` with tag ``sig`` said to lie at ``offset``, as one flipped byte can make it."""
    at = profile.index(sig, 132, 132 + 12 * struct.unpack_from(">I", profile, 128)[0])
    return profile[:at + 4] + struct.pack(">I", offset) + profile[at + 8:]


def _grey_profile() -> bytes:
    from enhance_ops.chain import icc

    return icc.build_grey_profile("Grey gamma 2.2", icc.SRGB_CURVE)


@pytest.mark.parametrize(("image", "fmt", "profile", "why"), [
    (RGB8, "JPEG", _grey_profile, "it is for GRAY data, and the image is RGB"),
    (RGB8, "TIFF", _grey_profile, "it is for GRAY data, and the image is RGB"),
    (RGB8[:, :, 1], "JPEG", lambda: SRGB_ICC, "it is for RGB data, and the image is grey"),
    (RGB8[:, :, 1], "PNG", lambda: SRGB_ICC, "it is for RGB data, and the image is grey"),
    (RGB8, "PNG", lambda: SRGB_ICC[:200], "it is not a whole ICC profile (damaged or cut short)"),
    (RGB8, "JPEG", lambda: _tag_moved(SRGB_ICC, b"rTRC", 2**20),
     f"it is damaged: its rTRC tag lies past the profile's {len(SRGB_ICC):,} bytes"),
    (RGB8, "PNG", lambda: SRGB_ICC[:128] + struct.pack(">I", 2**20) + SRGB_ICC[132:],
     f"it is damaged: its table of 1,048,576 tags runs past the profile's {len(SRGB_ICC):,} bytes"),
])
def test_a_profile_that_cannot_describe_the_pixels_is_dropped_with_a_note(
        image: np.ndarray, fmt: str, profile: Callable[[], bytes], why: str) -> None:
    """A grey profile on RGB samples, an RGB one on grey (libpng refuses it, viewers ignore or
    misapply it), a cut-off one: each was carried into the derivative as it was."""
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, fmt, icc_profile=profile())
    decoded = codecs.decode(buf.getvalue())
    assert decoded.metadata.icc_profile is None
    assert decoded.notes == [f"embedded ICC profile dropped: {why}; the derivative carries none, so viewers take sRGB"]
    assert "icc_profile" not in Image.open(io.BytesIO(reencode(decoded))).info
    fitting = _grey_profile() if image.ndim == 2 else SRGB_ICC  # a profile that fits is kept, byte for byte
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, fmt, icc_profile=fitting)
    assert codecs.decode(buf.getvalue()).metadata.icc_profile == fitting


def _camera_jpeg(image: np.ndarray, colour_space: int, interop: bytes | None) -> bytes:
    exif = {"0th": {piexif.ImageIFD.Make: b"NIKON CORPORATION"}, "Exif": {piexif.ExifIFD.ColorSpace: colour_space}}
    if interop is not None:
        exif["Interop"] = {piexif.InteropIFD.InteroperabilityIndex: interop}
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=95, exif=piexif.dump(exif))
    return buf.getvalue()


@pytest.mark.parametrize(("colour_space", "interop"), [(0xFFFF, b"R03"), (2, None)])
def test_a_camera_jpeg_in_adobe_rgb_without_a_profile_gets_one(colour_space: int, interop: bytes | None) -> None:
    """A camera (or copy stand) in its Adobe RGB mode embeds no profile; its EXIF says so
    (uncalibrated with InteropIndex R03, or the non-standard ColorSpace 2). Taken as sRGB,
    its derivative was duller than the master wherever the EXIF was read, and converting it
    to sRGB did nothing."""
    decoded = codecs.decode(_camera_jpeg(RGB8, colour_space, interop))
    assert md.exif_colour_space(decoded.metadata.exif) == "Adobe RGB"
    profile = ImageCms.ImageCmsProfile(io.BytesIO(decoded.metadata.icc_profile))
    assert profile.profile.profile_description == "Adobe RGB (1998)"
    assert decoded.notes == ["no ICC profile, but the EXIF says Adobe RGB, as a camera in its Adobe RGB mode writes: "
                             "Adobe RGB (1998) assumed, and its profile embedded in the derivative"]
    assert Image.open(io.BytesIO(reencode(decoded))).info["icc_profile"] == decoded.metadata.icc_profile


@pytest.mark.parametrize(("target", "colour_space", "index", "description"), [
    (None, 0xFFFF, b"R03", "Adobe RGB (1998)"),  # kept as it is: the EXIF already says so
    ("sRGB", 1, b"R98", "sRGB"),
    ("Display P3", 0xFFFF, None, "Display P3"),  # a space DCF has no index for
])
def test_a_derivative_converted_to_another_colour_space_has_its_exif_say_so(
        target: str | None, colour_space: int, index: bytes | None, description: str) -> None:
    """A camera's Adobe RGB JPEG converted to sRGB had kept EXIF saying Adobe RGB beside an
    sRGB profile: a reader going by the EXIF took the derivative for what it no longer was."""
    from enhance_ops.enhance import EnhanceOptions, Enhancer

    overrides = ("superres.scale=2", "superres.models=[]") + ((f"colour_space.target={target}",) if target else ())
    enhancer = Enhancer(EnhanceOptions(preset="fidelity", overrides=overrides))
    xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
           b'<rdf:Description rdf:about="" xmlns:exif="http://ns.adobe.com/exif/1.0/" exif:ColorSpace="65535" '
           b'xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/"><photoshop:ICCProfile>Adobe RGB (1998)'
           b"</photoshop:ICCProfile></rdf:Description></rdf:RDF></x:xmpmeta>")  # as Photoshop states it
    master = _camera_jpeg(RGB8, 0xFFFF, b"R03")
    result = enhancer.enhance(master[:2] + b"\xff\xe1" + struct.pack(">H", 31 + len(xmp))
                              + b"http://ns.adobe.com/xap/1.0/\x00" + xmp + master[2:])
    derivative = codecs.decode(result.data)
    exif = derivative.metadata.exif
    assert exif["Exif"][piexif.ExifIFD.ColorSpace] == colour_space
    said = derivative.metadata.xmp.decode()
    assert f'exif:ColorSpace="{colour_space}"' in said and f"<photoshop:ICCProfile>{description}<" in said
    assert exif.get("Interop", {}).get(piexif.InteropIFD.InteroperabilityIndex) == index
    profile = ImageCms.ImageCmsProfile(io.BytesIO(derivative.metadata.icc_profile))
    assert profile.profile.profile_description == description


@pytest.mark.parametrize(("image", "colour_space", "interop"), [
    (RGB8, 1, b"R98"),  # sRGB
    (RGB8, 0xFFFF, None),  # uncalibrated, and nothing says what
    (RGB8[:, :, 1], 0xFFFF, b"R03"),  # a grey image: no RGB space applies
])
def test_a_camera_jpeg_whose_exif_names_no_other_space_stays_without_a_profile(
        image: np.ndarray, colour_space: int, interop: bytes | None) -> None:
    decoded = codecs.decode(_camera_jpeg(image, colour_space, interop))
    assert decoded.metadata.icc_profile is None and decoded.notes == []


@pytest.mark.parametrize("chunks", [
    [(b"gAMA", struct.pack(">I", 45455))],  # sRGB's gamma, as most writers add it
    [(b"sRGB", b"\x00"), (b"gAMA", struct.pack(">I", 100_000))],  # an sRGB chunk overrides gAMA
], ids=["gama-2.2", "srgb-chunk"])
def test_a_png_that_is_srgb_gets_no_profile_of_its_own(chunks: list[tuple[bytes, bytes]]) -> None:
    decoded = codecs.decode(_png_with_chunks(*chunks, before_pixels=True))
    assert decoded.metadata.icc_profile is None and decoded.notes == []


def test_jpeg_comment_is_carried() -> None:
    comment = "Box 12, folder 3; scanned by the reading-room team".encode()
    decoded = codecs.decode(save(RGB8, "JPEG", comment=comment))
    assert Image.open(io.BytesIO(reencode(decoded))).info["comment"] == comment


def test_every_jpeg_comment_is_carried_byte_for_byte_and_read_as_the_text_it_is() -> None:
    """Pillow keeps a JPEG's last comment segment: a scanner's comment before the archive's
    was lost; and a Latin-1 comment, decoded as UTF-8 with replacement, reached the
    derivative as "M\ufffdnchen", in a JPEG as in a PNG. A PNG's long comment, past one JPEG
    segment, had failed the image; it takes two."""
    jpeg = save(RGB8, "JPEG", comment=b"(c) Stadtarchiv M\xfcnchen 1931")
    scanner = b"Scanned by Epson V850"
    master = jpeg[:2] + b"\xff\xfe" + struct.pack(">H", len(scanner) + 2) + scanner + jpeg[2:]
    decoded = codecs.decode(master)
    assert decoded.metadata.text["Comment"] == "Scanned by Epson V850\n(c) Stadtarchiv München 1931"
    carried = Image.open(io.BytesIO(reencode(decoded)))
    assert [s for app, s in carried.applist if app == "COM"] == [scanner, b"(c) Stadtarchiv M\xfcnchen 1931"]
    as_png = Image.open(io.BytesIO(reencode(decoded, "PNG")))
    assert as_png.info["Comment"] == "Scanned by Epson V850\n(c) Stadtarchiv München 1931"
    info = PngImagePlugin.PngInfo()
    info.add_itxt("Comment", "Ledger of the harbour office. " * 3_000)  # 90 kB
    long = Image.open(io.BytesIO(reencode(codecs.decode(save(RGB8, "PNG", pnginfo=info)), "JPEG")))
    assert b"".join(s for app, s in long.applist if app == "COM") == ("Ledger of the harbour office. " * 3_000).encode()


def test_tiff_masters_description_is_kept_after_our_marking() -> None:
    buf = io.BytesIO()
    tifffile.imwrite(buf, RGB8, photometric="rgb", description="Harbour, 1931", metadata=None)
    out = Image.open(io.BytesIO(reencode(codecs.decode(buf.getvalue()))))
    assert out.getexif()[270] == f"{PROV.description} | master's description: Harbour, 1931"


RIGHTS = "© Stadtarchiv München".encode()  # UTF-8, as exiftool writes it
ARTIST = "Jürgen Weiß".encode("latin-1")  # Latin-1, as older scanner software does
AERIAL = "Luftbild über Köln, 1931".encode()


def _tiff_with_text() -> bytes:
    buf = io.BytesIO()
    tifffile.imwrite(buf, RGB8, photometric="rgb", metadata=None, description=AERIAL,
                     extratags=[(33432, 2, 0, RIGHTS, True), (315, 2, 0, ARTIST, True)])
    return buf.getvalue()


@pytest.mark.parametrize("master", ["JPEG", "TIFF"])
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "TIFF", "WEBP"])
def test_exif_text_that_is_not_ascii_is_carried_byte_for_byte(master: str, fmt: str) -> None:
    """A TIFF derivative of such a master raised "TIFF strings must be 7-bit ASCII" (an
    internal error), and a TIFF master's text came out with a '?' for each other byte: the
    rights statement "?? Stadtarchiv M??nchen"."""
    exif = piexif.dump({"0th": {piexif.ImageIFD.Copyright: RIGHTS, piexif.ImageIFD.Artist: ARTIST,
                                piexif.ImageIFD.ImageDescription: AERIAL}, "Exif": {}})
    data = save(RGB8, "JPEG", exif=exif) if master == "JPEG" else _tiff_with_text()
    zeroth = codecs.decode(reencode(codecs.decode(data), fmt)).metadata.exif["0th"]
    assert (zeroth[piexif.ImageIFD.Copyright], zeroth[piexif.ImageIFD.Artist]) == (RIGHTS, ARTIST)
    assert zeroth[piexif.ImageIFD.ImageDescription] == f"{PROV.description} | master's description: ".encode() + AERIAL


OWNER = "Jürgen Weiß".encode("latin-1")
LENS = "Zeiss Tessar 4,5/105 – Nr. 2".encode()
DATUM = "Potsdam – Rauenberg".encode()


@pytest.mark.parametrize("big", [False, True], ids=["classic", "bigtiff"])
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "TIFF", "WEBP"])
def test_a_tiff_masters_text_in_its_exif_and_gps_directories_is_carried_byte_for_byte(
        big: bool, fmt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A camera owner, a lens or a map datum came out of a TIFF master with a '?' for each
    byte that is not ASCII ("J?rgen Wei?"), without a word."""
    exif = {"0th": {}, "Exif": {piexif.ExifIFD.CameraOwnerName: OWNER, piexif.ExifIFD.LensModel: LENS,
                                piexif.ExifIFD.DateTimeOriginal: b"1931:05:02 10:00:00"},
            "GPS": {piexif.GPSIFD.GPSLatitudeRef: b"N", piexif.GPSIFD.GPSMapDatum: DATUM}, "Interop": {}}
    with monkeypatch.context() as patched:
        if big:
            patched.setattr(encoders, "CLASSIC_TIFF_BYTES", 1000)
        master = encoders.encode(RGB8 / 255.0, None, fmt="TIFF", bit_depth=8, meta=ImageMetadata(exif=exif), scale=1,
                                 provenance=PROV)
    assert master[:4] == (b"II+\x00" if big else b"II*\x00")
    with tifffile.TiffFile(io.BytesIO(master)) as tif:  # another reader finds the text in the master, as written
        tags = tif.pages.first.tags
        assert tags["ExifTag"].value["LensModel"] == LENS.decode()
        assert tags["GPSTag"].value["GPSMapDatum"] == DATUM.decode()
    read = codecs.decode(master).metadata.exif
    assert (read["Exif"][piexif.ExifIFD.CameraOwnerName], read["GPS"][piexif.GPSIFD.GPSMapDatum]) == (OWNER, DATUM)
    carried = codecs.decode(reencode(codecs.decode(master), fmt)).metadata.exif
    assert {tag: carried["Exif"][tag] for tag in exif["Exif"]} == exif["Exif"]
    assert carried["GPS"] == exif["GPS"]


def test_png_whose_xmp_carries_years_of_history_is_read_and_keeps_it() -> None:
    from PIL import PngImagePlugin

    history = "".join(f"<rdf:li>xmp.did:{i:032x}</rdf:li>" for i in range(60_000))  # 3 MB, past Pillow's 1 MiB
    ancestors = f"<photoshop:DocumentAncestors>{history}</photoshop:DocumentAncestors>"
    xmp = f'<x:xmpmeta xmlns:x="adobe:ns:meta/">{ancestors}</x:xmpmeta>'
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", xmp, zip=True)
    decoded = codecs.decode(save(RGB8, "PNG", pnginfo=info))
    assert decoded.metadata.xmp == xmp.encode() and decoded.notes == []
    assert codecs.decode(reencode(decoded)).metadata.xmp == xmp.encode()


def test_a_jpegs_extended_xmp_is_read_and_carried_whole() -> None:
    """Pillow reads the main XMP packet alone: the 152 kB of DocumentAncestors in Photoshop's
    extension segments were left out of the derivative without a word, and its main packet
    named an extension it did not have. A JPEG derivative carries the segments; one in another
    format gets the extension merged into its single packet."""
    from enhance_ops.enhance import EnhanceOptions, Enhancer

    master, extension, guid = extended_xmp(RGB8)
    decoded = codecs.decode(master)
    assert decoded.metadata.xmp_extension == extension and decoded.notes == []
    for fmt in ("JPEG", "PNG", "TIFF", "WEBP"):
        result = Enhancer(EnhanceOptions(preset="fidelity", overrides=("superres.scale=2", "superres.models=[]"),
                                         output_format=fmt)).enhance(master)
        carried = codecs.decode(result.data).metadata
        assert b'photoshop:Credit="City Archive"' in carried.xmp, fmt
        if fmt == "JPEG":
            assert carried.xmp_extension == extension and f'HasExtendedXMP="{guid}"'.encode() in carried.xmp
        else:
            assert carried.xmp_extension is None and b"HasExtendedXMP" not in carried.xmp, fmt
            assert carried.xmp.count(b"<rdf:li>xmp.did:") == 4_000, fmt
        assert not any("XMP" in note for note in result.record["notes"]), (fmt, result.record["notes"])


def test_an_extension_pointer_written_as_an_element_is_dropped_whole_when_the_extension_joins() -> None:
    """exiftool writes the pointer as an element: its "<" was left behind, the joined packet did
    not parse, and the extension was left out of every derivative but a JPEG."""
    from enhance_ops import xmp_extension

    rdf = 'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"'
    guid = "0123456789ABCDEF0123456789ABCDEF"
    main = (f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF {rdf}><rdf:Description rdf:about="" '
            'xmlns:xmpNote="http://ns.adobe.com/xmp/note/">'
            f"<xmpNote:HasExtendedXMP>{guid}</xmpNote:HasExtendedXMP></rdf:Description></rdf:RDF></x:xmpmeta>").encode()
    extension = (f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF {rdf}><rdf:Description rdf:about="" '
                 'xmlns:dc="http://purl.org/dc/elements/1.1/" dc:source="Box 12"/></rdf:RDF></x:xmpmeta>').encode()
    joined = xmp_extension.merged(main, extension)
    assert joined is not None and b"HasExtendedXMP" not in joined and b'dc:source="Box 12"' in joined


@pytest.mark.parametrize(("damage", "said"), [
    (dict(lose_chunk=True), "missing or incomplete"), (dict(flip=True), "does not match its GUID (damaged)")])
def test_a_damaged_extended_xmp_is_named_and_left_out(damage: dict[str, bool], said: str) -> None:
    master, _, guid = extended_xmp(RGB8, **damage)
    decoded = codecs.decode(master)
    assert decoded.metadata.xmp_extension is None
    assert decoded.notes == [f"extended XMP {guid} " + ("named by the XMP is " if "missing" in said else "") +
                             f"{said}: not carried"]


def _iptc(*records: tuple[int, int, bytes]) -> bytes:
    return b"".join(b"\x1c" + struct.pack(">BBH", rec, field, len(value)) + value for rec, field, value in records)


CAPTION = _iptc((1, 90, b"\x1b%G"), (2, 120, "Hafen bei Ebbe, 1931".encode()), (2, 116, b"(c) City Archive 1931"))


def test_jpeg_iptc_records_are_carried() -> None:
    app13 = b"Photoshop 3.0\x00" + b"8BIM" + struct.pack(">HHI", 0x0404, 0, len(CAPTION)) + CAPTION + b"\x00"
    jpeg = save(RGB8, "JPEG", extra=b"\xff\xed" + struct.pack(">H", len(app13) + 2) + app13)
    out = Image.open(io.BytesIO(reencode(codecs.decode(jpeg))))
    assert out.info["photoshop"][0x0404] == CAPTION


def test_tiff_iptc_stored_as_longs_the_photoshop_way_is_carried_whole() -> None:
    longs = struct.unpack("<9I", CAPTION[:36])  # Pillow would keep the first of these
    buf = io.BytesIO()
    tifffile.imwrite(buf, RGB8, photometric="rgb", extratags=[(33723, "I", len(longs), longs, True)])
    decoded = codecs.decode(buf.getvalue())
    assert decoded.metadata.iptc == CAPTION[:36]
    with tifffile.TiffFile(io.BytesIO(reencode(decoded))) as tif:
        assert tif.pages.first.tags.valueof(33723) == CAPTION[:36]


@pytest.mark.parametrize("fmt", ["JPEG", "TIFF", "WEBP"])
def test_a_pngs_copyright_author_and_description_reach_the_exif_of_a_derivative_in_another_format(fmt: str) -> None:
    """Each had been left out as text the format had no place for: a JPEG of a PNG master
    lost its rights statement."""
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    for keyword, text in (("Copyright", "© Stadtarchiv München"), ("Author", "Fotoatelier Weiß"),
                          ("Description", "Hafen bei Ebbe"), ("Title", "Hafen, 1931")):
        info.add_itxt(keyword, text)
    decoded = codecs.decode(save(RGB8, "PNG", pnginfo=info))
    meta, notes = dmd.fitted_to(decoded.metadata, fmt, software=PROV.software, description=PROV.description)
    assert notes == [f"text not carried, {fmt} has no place for it: Title"]
    out = encoders.encode(decoded.pixels, None, fmt=fmt, bit_depth=8, meta=meta, scale=1, provenance=PROV)
    carried = codecs.decode(out).metadata.exif  # (Pillow hands a TIFF's text back with a '?' for each such byte)
    assert carried["0th"][piexif.ImageIFD.Copyright] == "© Stadtarchiv München".encode()
    assert carried["0th"][piexif.ImageIFD.Artist] == "Fotoatelier Weiß".encode()
    assert carried["0th"][piexif.ImageIFD.ImageDescription] == f"{PROV.description} | master's description: Hafen " \
                                                              "bei Ebbe".encode()


@pytest.mark.parametrize(("fmt", "comment", "stored"), [
    ("TIFF", "Straße am Hafen", b"UNICODE\x00" + "Straße am Hafen".encode("utf-16-le")),
    ("WEBP", "Box 12, folder 3", b"ASCII\x00\x00\x00Box 12, folder 3"),
])
def test_a_jpegs_comment_reaches_the_user_comment_of_a_tiff_or_webp_derivative(fmt: str, comment: str,
                                                                                stored: bytes) -> None:
    """Neither holds a comment of its own, and the comment had been left out as text; EXIF's
    UserComment says its character code, and UCS-2 goes in the block's byte order."""
    decoded = codecs.decode(save(RGB8, "JPEG", comment=comment.encode("utf-8")))
    meta, notes = dmd.fitted_to(decoded.metadata, fmt)
    assert notes == []
    out = encoders.encode(decoded.pixels, None, fmt=fmt, bit_depth=8, meta=meta, scale=1, provenance=PROV)
    assert codecs.decode(out).metadata.exif["Exif"][piexif.ExifIFD.UserComment] == stored


def test_a_pngs_text_that_its_exif_contradicts_is_named() -> None:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Copyright", "(c) City Archive")
    exif = piexif.dump({"0th": {piexif.ImageIFD.Copyright: b"(c) Photo Studio Weiss"}})
    decoded = codecs.decode(save(RGB8, "PNG", pnginfo=info, exif=exif))
    meta, notes = dmd.fitted_to(decoded.metadata, "JPEG")
    assert notes == ["text not carried, the EXIF saying otherwise: Copyright"]
    assert meta.exif["0th"][piexif.ImageIFD.Copyright] == b"(c) Photo Studio Weiss"


def test_metadata_a_format_cannot_hold_is_left_out_with_a_note_and_never_fails_the_derivative() -> None:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Title", "Harbour, 1931")
    info.add_text("Comment", "box 12")
    xmp = f'<x:xmpmeta xmlns:x="adobe:ns:meta/">{" " * 70_000}</x:xmpmeta>'  # past one JPEG segment
    info.add_itxt("XML:com.adobe.xmp", xmp)
    decoded = codecs.decode(save(RGB8, "PNG", pnginfo=info))
    meta, notes = dmd.fitted_to(decoded.metadata, "JPEG")
    assert notes == [f"XMP of {len(xmp):,} bytes not carried: a JPEG holds 65,440",
                     "text not carried, JPEG has no place for it: Title"]
    out = Image.open(io.BytesIO(encoders.encode(decoded.pixels, None, fmt="JPEG", bit_depth=8, meta=meta, scale=1,
                                                provenance=PROV)))
    assert out.info["comment"] == b"box 12" and "xmp" not in out.info
    assert dmd.fitted_to(decoded.metadata, "PNG") == (decoded.metadata, [])
    long_iptc = _iptc(*[(2, 25, b"keyword %05d" % i) for i in range(5_000)])  # 90,000 bytes of keywords
    assert dmd.fitted_to(md.ImageMetadata(iptc=long_iptc), "JPEG")[1] == [
        "IPTC records of 90,000 bytes not carried: a JPEG holds 65,506"]
    assert dmd.fitted_to(md.ImageMetadata(iptc=long_iptc), "TIFF") == (md.ImageMetadata(iptc=long_iptc), [])
    assert dmd.fitted_to(md.ImageMetadata(iptc=CAPTION), "WEBP")[1] == [
        "IPTC records not carried: WEBP has no place for them"]


def test_exif_that_leaves_no_room_for_the_derivatives_marking_loses_its_largest_tag_in_a_jpeg() -> None:
    """A camera's MakerNote can fill most of a JPEG's EXIF segment; the derivative's marking
    then pushed the block past it, and Pillow's refusal was an internal error."""
    exif = piexif.dump({"0th": {piexif.ImageIFD.Make: b"Nikon"},
                        "Exif": {piexif.ExifIFD.DateTimeOriginal: b"1962:05:01 10:00:00",
                                 piexif.ExifIFD.MakerNote: bytes(65_420)}})  # 65,516 bytes
    decoded = codecs.decode(save(RGB8, "JPEG", exif=exif))
    meta, notes = dmd.fitted_to(decoded.metadata, "JPEG", software=PROV.software, description=PROV.description)
    assert len(notes) == 1 and notes[0].startswith("EXIF tag 37500 (MakerNote) of 65,420 bytes not carried: the "
                                                   "derivative's EXIF came to ")
    out = codecs.decode(encoders.encode(decoded.pixels, None, fmt="JPEG", bit_depth=8, meta=meta, scale=2,
                                        provenance=PROV))
    assert out.metadata.exif["0th"][piexif.ImageIFD.Make] == b"Nikon"
    assert out.metadata.exif["Exif"][piexif.ExifIFD.DateTimeOriginal] == b"1962:05:01 10:00:00"
    assert piexif.ExifIFD.MakerNote not in out.metadata.exif["Exif"]
    assert dmd.fitted_to(decoded.metadata, "PNG", software=PROV.software, description=PROV.description) == (
        decoded.metadata, [])  # other formats hold EXIF of any size


@pytest.mark.parametrize("kind,body,why", [
    (b"zTXt", b"Comment\x00\x00" + zlib.compress(b" " * (64 << 20)), "inflates past"),  # 64 MiB of text in 64 kB
    (b"tEXt", b"x" * 100, "no valid keyword"),
])
def test_a_text_bomb_or_damaged_text_chunk_is_dropped_with_a_note(kind: bytes, body: bytes, why: str) -> None:
    decoded = codecs.decode(_png_with_chunks((kind, body)))
    assert decoded.metadata.text == {} and decoded.pixels.shape == (48, 48, 3)
    assert len(decoded.notes) == 1 and why in decoded.notes[0] and kind.decode() in decoded.notes[0]


def _exif_block(ifd0: list[tuple[int, int, int, bytes]], exif_ifd: list[tuple[int, int, int, bytes]]) -> bytes:
    """A little-endian EXIF block written by hand, so each tag's stored type is the test's choice."""
    def ifd(entries: list[tuple[int, int, int, bytes]], at: int) -> bytes:
        data_at = at + 2 + 12 * len(entries) + 4
        head, tail = struct.pack("<H", len(entries)), b""
        for tag, kind, count, raw in sorted(entries):
            if len(raw) <= 4:
                head += struct.pack("<HHI", tag, kind, count) + raw.ljust(4, b"\x00")
            else:
                head += struct.pack("<HHII", tag, kind, count, data_at + len(tail))
                tail += raw + b"\x00" * (len(raw) % 2)
        return head + b"\x00\x00\x00\x00" + tail

    first = ifd([*ifd0, (0x8769, 4, 1, struct.pack("<I", 0))], 8)
    first = ifd([*ifd0, (0x8769, 4, 1, struct.pack("<I", 8 + len(first)))], 8)
    return b"Exif\x00\x00II*\x00" + struct.pack("<I", 8) + first + ifd(exif_ifd, 8 + len(first))


def test_exif_tags_stored_in_unexpected_types_are_mended_or_dropped_alone() -> None:
    maker_note = b"\x01\x02vendor-private-data"
    exif = _exif_block(
        [(271, 2, 6, b"Epson\x00")],
        [
            (36867, 2, 20, b"1931:07:04 12:00:00\x00"),  # DateTimeOriginal, as it should be
            (33434, 11, 1, struct.pack("<f", 0.004)),  # ExposureTime as FLOAT, not RATIONAL
            (37500, 1, len(maker_note), maker_note),  # MakerNote as BYTE, not UNDEFINED
            (37396, 12, 2, struct.pack("<2d", 10.5, 20.5)),  # SubjectArea as DOUBLEs: no SHORTs to make of them
        ],
    )
    decoded = codecs.decode(save(RGB8, "JPEG", exif=exif))
    assert decoded.notes == ["EXIF tags rewritten in the type EXIF expects: Exif 33434",  # the BYTEs silently
                             "EXIF tags dropped, not writable as stored: Exif 37396"]
    carried = _exif_of(reencode(decoded))
    assert carried["0th"][piexif.ImageIFD.Make] == b"Epson"
    assert carried["Exif"][piexif.ExifIFD.DateTimeOriginal] == b"1931:07:04 12:00:00"
    assert carried["Exif"][piexif.ExifIFD.ExposureTime] == (1, 250)
    assert carried["Exif"][piexif.ExifIFD.MakerNote] == maker_note
    assert piexif.ExifIFD.SubjectArea not in carried["Exif"]


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_every_exif_directory_of_a_derivative_ends_in_its_next_directory_offset(fmt: str) -> None:
    exif = piexif.dump({
        "0th": {piexif.ImageIFD.Make: b"Epson"},
        "Exif": {piexif.ExifIFD.DateTimeOriginal: b"1931:07:04 12:00:00", piexif.ExifIFD.ExposureTime: (1, 250)},
        "GPS": {piexif.GPSIFD.GPSLatitudeRef: b"N", piexif.GPSIFD.GPSLatitude: ((52, 1), (22, 1), (0, 1))},
        "Interop": {piexif.InteropIFD.InteroperabilityIndex: b"R98"},
    })
    out = reencode(codecs.decode(save(RGB8, "JPEG", exif=exif)), fmt=fmt)
    tiff = Image.open(io.BytesIO(out)).info["exif"].removeprefix(b"Exif\x00\x00")
    order = "<" if tiff[:2] == b"II" else ">"

    def next_offset(at: int) -> int:  # the 4 bytes after a directory's entries
        (count,) = struct.unpack_from(order + "H", tiff, at)
        return struct.unpack_from(order + "I", tiff, at + 2 + 12 * count)[0]

    def pointer(at: int, tag: int) -> int:
        (count,) = struct.unpack_from(order + "H", tiff, at)
        entries = [struct.unpack_from(order + "HHII", tiff, at + 2 + 12 * i) for i in range(count)]
        return next(value for t, _, _, value in entries if t == tag)

    ifd0 = struct.unpack_from(order + "I", tiff, 4)[0]
    exif_ifd = pointer(ifd0, 0x8769)
    directories = [ifd0, exif_ifd, pointer(ifd0, 0x8825), pointer(exif_ifd, 0xA005)]
    assert [next_offset(at) for at in directories] == [0, 0, 0, 0]  # piexif's dump ran a date on here
    carried = _exif_of(out)
    assert carried["Exif"][piexif.ExifIFD.DateTimeOriginal] == b"1931:07:04 12:00:00"
    assert carried["GPS"][piexif.GPSIFD.GPSLatitude] == ((52, 1), (22, 1), (0, 1))
    assert carried["Interop"][piexif.InteropIFD.InteroperabilityIndex] == b"R98"


def test_bigtiff_master_keeps_its_exif_and_gps() -> None:
    exif = piexif.dump({
        "0th": {piexif.ImageIFD.Make: b"Phase One", piexif.ImageIFD.Artist: b"Digitisation Unit"},
        "Exif": {piexif.ExifIFD.DateTimeOriginal: b"1931:07:04 12:00:00", piexif.ExifIFD.FNumber: (8, 1)},
        "GPS": {piexif.GPSIFD.GPSLatitudeRef: b"N", piexif.GPSIFD.GPSLatitude: ((52, 1), (22, 1), (0, 1))},
    })
    buf = io.BytesIO()
    Image.fromarray(RGB8).save(buf, "TIFF", exif=exif, big_tiff=True)  # large-scan writers default to BigTIFF
    assert buf.getvalue()[:4] == b"II+\x00"
    decoded = codecs.decode(buf.getvalue())
    assert decoded.notes == [] and decoded.metadata.exif is not None
    assert decoded.metadata.exif["0th"][piexif.ImageIFD.Make] == b"Phase One"
    assert decoded.metadata.exif["Exif"][piexif.ExifIFD.DateTimeOriginal] == b"1931:07:04 12:00:00"
    assert decoded.metadata.exif["GPS"][piexif.GPSIFD.GPSLatitude] == ((52, 1), (22, 1), (0, 1))
    again = Image.open(io.BytesIO(reencode(decoded))).getexif()
    assert again[piexif.ImageIFD.Artist] == "Digitisation Unit" and again.get_ifd(0x8769)[36867] == "1931:07:04 12:00:00"


@pytest.mark.parametrize("big", [False, True], ids=["classic", "bigtiff"])
def test_tiff_keeps_gps_and_exif_sub_directories_at_16_bits(big: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past a classic TIFF's 4 GiB the derivative is a BigTIFF, whose sub-directories are laid
    out in 8-byte offsets; this small image stands in for such a one."""
    if big:
        monkeypatch.setattr(encoders, "CLASSIC_TIFF_BYTES", 1000)
    exif = piexif.dump({
        "0th": {piexif.ImageIFD.Make: b"Hasselblad"},
        "Exif": {piexif.ExifIFD.DateTimeOriginal: b"1931:07:04 12:00:00", piexif.ExifIFD.FNumber: (8, 1),
                 piexif.ExifIFD.ISOSpeedRatings: 100},
        "GPS": {piexif.GPSIFD.GPSLatitudeRef: b"N", piexif.GPSIFD.GPSLatitude: ((52, 1), (22, 1), (0, 1))},
    })
    samples = (photo("astronaut", 24, top=40, left=200) * 65535).astype(np.uint16)
    meta = ImageMetadata(exif=piexif.load(exif), icc_profile=SRGB_ICC, dpi=(600.0, 600.0))
    out = encoders.encode(samples / 65535.0, None, fmt="TIFF", bit_depth=16, meta=meta, scale=2, provenance=PROV)
    assert out[:4] == (b"II+\x00" if big else b"II*\x00")
    tags = Image.open(io.BytesIO(out)).getexif()
    assert tags[271] == "Hasselblad"
    assert tags.get_ifd(0x8769)[36867] == "1931:07:04 12:00:00" and tags.get_ifd(0x8769)[33437] == 8.0
    assert tags.get_ifd(0x8825)[2] == (52.0, 22.0, 0.0)
    with tifffile.TiffFile(io.BytesIO(out)) as tif:  # a second reader agrees, and the pixels are intact
        assert tif.pages[0].tags["ExifTag"].value["DateTimeOriginal"] == "1931:07:04 12:00:00"
        assert tif.pages[0].tags["GPSTag"].value["GPSLatitudeRef"] == "N"
        assert np.array_equal(tif.pages[0].asarray(), samples)
    again = codecs.decode(out)  # and so does this pipeline, reading the derivative as a master
    assert again.metadata.exif["GPS"][piexif.GPSIFD.GPSLatitude] == ((52, 1), (22, 1), (0, 1))
    assert again.metadata.icc_profile == SRGB_ICC and again.metadata.dpi == pytest.approx((1200, 1200))


@pytest.mark.parametrize("fmt", ["PNG", "TIFF", "JPEG"])
def test_a_tiff_masters_places_in_its_own_bytes_are_not_carried_into_the_derivatives_exif(fmt: str) -> None:
    """A pyramid writer puts the reduced resolutions in SubIFDs, whose entry holds places in the
    master's bytes; carried, it sent a reader of the derivative's EXIF to other bytes, and
    LERC's parameters were said to be an unknown tag lost."""
    buf = io.BytesIO()
    with tifffile.TiffWriter(buf) as tif:
        tif.write(RGB8, subifds=1, compression="lerc", extratags=[(271, "s", 0, "Phase One", True)])
        tif.write(RGB8[::2, ::2], subfiletype=1, compression="lerc")
    with tifffile.TiffFile(io.BytesIO(buf.getvalue())) as tif:  # the master is as described
        assert {"SubIFDs", "LercParameters"} <= {tag.name for tag in tif.pages[0].tags.values()}
    decoded = codecs.decode(buf.getvalue())
    assert decoded.notes == [] and np.array_equal(np.round(decoded.pixels * 255), RGB8)
    assert decoded.metadata.exif["0th"][piexif.ImageIFD.Make] == b"Phase One"
    exif = Image.open(io.BytesIO(reencode(decoded, fmt, scale=2))).getexif()
    assert exif[piexif.ImageIFD.Make] == "Phase One"
    assert not {330, 50674} & set(exif)


def test_a_tiff_derivative_is_written_without_copies_of_itself() -> None:
    """A derivative can be gigabytes: the sub-directories are added to tifffile's stream in
    place, where three more copies of the file were held before."""
    import tracemalloc

    noise = np.random.default_rng(0).integers(0, 65535, (600, 800, 3), dtype=np.uint16)  # incompressible
    meta = ImageMetadata(exif=piexif.load(CAMERA_EXIF))
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        out = encoders.encode_samples(noise, fmt="TIFF", meta=meta, scale=1, provenance=PROV)
        peak = tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()
    assert len(out) > 0.9 * noise.nbytes and peak < 1.5 * len(out)
    assert _exif_of(out)["Exif"][piexif.ExifIFD.DateTimeOriginal] == b"1962:05:01 10:00:00"


def test_png_derivative_carries_text_provenance() -> None:
    decoded = codecs.decode(save(RGB8, "PNG"))
    im = Image.open(io.BytesIO(reencode(decoded)))
    assert im.info["Software"] == PROV.software and im.info["Description"] == PROV.description


def test_master_description_is_kept_inside_the_new_one() -> None:
    exif = piexif.dump({"0th": {piexif.ImageIFD.ImageDescription: b"Harbour, 1931"}})
    decoded = codecs.decode(save(RGB8, "JPEG", exif=exif))
    desc = _exif_of(reencode(decoded))["0th"][piexif.ImageIFD.ImageDescription]
    assert desc.startswith(b"Enhanced derivative") and b"Harbour, 1931" in desc


@pytest.mark.parametrize(
    "bad_exif",
    [
        b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x05\x01\x0f",  # directory cut short
        b"Exif\x00\x00II*\x00\xff\xff\xff\x7f",  # first IFD offset far outside the block
        b"Exif\x00\x00garbage-not-a-tiff-header",
    ],
)
def test_corrupt_exif_never_blocks_the_pixels(bad_exif: bytes) -> None:
    data = save(RGB8, "JPEG", quality=98)
    app1 = b"\xff\xe1" + struct.pack(">H", len(bad_exif) + 2) + bad_exif
    damaged = data[:2] + app1 + data[2:]
    decoded = codecs.decode(damaged)
    assert decoded.pixels.shape == (48, 48, 3)
    assert decoded.metadata.exif is None and any("corrupt EXIF dropped" in n for n in decoded.notes)
    exif = _exif_of(reencode(decoded))
    assert exif["0th"][piexif.ImageIFD.Software] == b"archive-enhance test"


def test_an_exif_entry_declaring_more_values_than_the_block_holds_costs_only_that_entry() -> None:
    """piexif made a struct format of one letter a declared value: one flipped byte in a
    67-byte block (four thousand million LONGs) took 4.5 GB and 24 s, and then the whole
    block, capture date and camera included, was dropped."""
    exif = tiff_exif.block({
        "0th": {piexif.ImageIFD.Make: b"Epson", piexif.ImageIFD.Model: b"V850"},
        "Exif": {piexif.ExifIFD.DateTimeOriginal: b"1962:05:01 10:00:00", piexif.ExifIFD.ExposureTime: (1, 60)}})
    order = "<" if exif[6:8] == b"II" else ">"
    (exif_ifd,) = struct.unpack_from(order + "I", exif, exif_entry(exif, 8, piexif.ImageIFD.ExifTag) + 8)
    damaged = bytearray(exif)
    struct.pack_into(order + "I", damaged, exif_entry(exif, exif_ifd, piexif.ExifIFD.ExposureTime) + 4, 1_000_000)
    damaged = bytes(damaged)
    data = save(RGB8, "JPEG", quality=98)
    decoded = codecs.decode(data[:2] + b"\xff\xe1" + struct.pack(">H", len(damaged) + 2) + damaged + data[2:])
    assert decoded.notes == [f"EXIF tag 33434 (ExposureTime) in the Exif directory declares 1,000,000 values, which "
                             f"run past the end of the {len(exif) - 6:,}-byte block: dropped as damaged"]
    tags = decoded.metadata.exif
    assert tags["0th"][piexif.ImageIFD.Make] == b"Epson" and piexif.ExifIFD.ExposureTime not in tags["Exif"]
    assert tags["Exif"][piexif.ExifIFD.DateTimeOriginal] == b"1962:05:01 10:00:00"
    assert exif_check.repaired(exif) == (exif, [])  # a sound block is left as it is


def test_an_exif_directory_running_past_its_block_drops_the_block_before_piexif_reads_it() -> None:
    """piexif reads such a directory's entries until it fails: on the way, the garbage read as
    entries declared millions of values (a 67-byte block, 3.5 GB and 17 s, from fuzzing)."""
    exif = bytearray(piexif.dump({"0th": {piexif.ImageIFD.Make: b"Epson"}}))
    struct.pack_into(">H", exif, 6 + 8, 29955)  # the 0th directory's entry count
    with pytest.raises(ValueError, match=f"^the 0th directory declares 29,955 entries, past the end of the "
                                         f"{len(exif) - 6}-byte block$"):
        exif_check.repaired(bytes(exif))
    data = save(RGB8, "JPEG", quality=98)
    decoded = codecs.decode(data[:2] + b"\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif + data[2:])
    assert decoded.metadata.exif is None and decoded.notes == [
        f"corrupt EXIF dropped (ValueError: the 0th directory declares 29,955 entries, past the end of the "
        f"{len(exif) - 6}-byte block)"]
    whole = piexif.dump({"0th": {piexif.ImageIFD.Make: b"Epson"}, "Exif": {piexif.ExifIFD.DateTimeOriginal: b"1931"},
                         "Interop": {piexif.InteropIFD.InteroperabilityIndex: b"R98"}})
    assert exif_check.repaired(whole) == (whole, [])  # piexif ends its last sub-directory without a next offset


def test_an_exif_block_with_a_damaged_byte_order_mark_is_checked_as_piexif_reads_it() -> None:
    """piexif reads any mark but "II" as big-endian; the check had passed such a block over,
    and one so damaged (from fuzzing) took piexif 54 s and 20 GB."""
    exif = bytearray(piexif.dump({"0th": {piexif.ImageIFD.Make: b"Epson", piexif.ImageIFD.XResolution: (300, 1)}}))
    assert exif[6:8] == b"MM"
    struct.pack_into(">I", exif, exif_entry(bytes(exif), 8, piexif.ImageIFD.XResolution) + 4, 1_000_000)
    exif[6] = 0xC1
    _, notes = exif_check.repaired(bytes(exif))
    assert notes == [f"EXIF tag 282 (XResolution) in the 0th directory declares 1,000,000 values, which run past "
                     f"the end of the {len(exif) - 6:,}-byte block: dropped as damaged"]


# --- bad files -----------------------------------------------------------------------------


def _png_header(width: int, height: int, idat: bytes = zlib.compress(b"")) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (png_chunks.PNG_SIGNATURE + png_chunks.chunk(b"IHDR", header) + png_chunks.chunk(b"IDAT", idat)
            + png_chunks.chunk(b"IEND", b""))


def test_headers_past_what_the_decoders_take_are_refused_by_name() -> None:
    """OpenCV raised a bare assertion (an internal error) past 1,048,576 px a side or 2^30
    pixels, and libpng's refusal of a side over a million px read as a damaged file."""
    tall = _png_header(2, 1_000_001, zlib.compress(b"\x00\x00\x00" * 1_000_001))  # sound, 3 MB of samples
    with pytest.raises(UnsupportedImageError, match=r"^2x1000001: images with a side over 1,000,000 px"):
        codecs.decode(tall)
    with pytest.raises(UnsupportedImageError, match=r"over 1,073,741,824 pixels are not decoded"):
        codecs.decode(_png_header(40_000, 30_000), max_pixels=2_000_000_000)
    frames = [Image.fromarray(RGB8), Image.fromarray(255 - RGB8)]
    buf = io.BytesIO()
    frames[0].save(buf, "WEBP", save_all=True, append_images=frames[1:], lossless=True, duration=100)
    webp = bytearray(buf.getvalue())
    assert webp[12:16] == b"VP8X"
    webp[27:30] = (1_900_559).to_bytes(3, "little")  # the canvas height less one: a flipped byte, as fuzzing found
    with pytest.raises(CorruptImageError, match=r"WEBP header declares 48x1900560, past the format's 16,383 px"):
        codecs.decode(bytes(webp))


def test_empty_file() -> None:
    with pytest.raises(EmptyFileError, match="empty"):
        codecs.decode(b"")


@pytest.mark.parametrize("data", [b"%PDF-1.7 not an image", b"hello world\n" * 10, bytes(range(256))])
def test_not_an_image(data: bytes) -> None:
    with pytest.raises(NotAnImageError, match="not a recognised image"):
        codecs.decode(data)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "TIFF", "WEBP"])
def test_truncated_files(fmt: str) -> None:
    data = save(RGB8, fmt)
    with pytest.raises(TruncatedImageError, match="truncated|incomplete"):
        codecs.decode(data[: len(data) // 2])


def test_a_png_chunk_declaring_more_than_the_file_holds_is_refused_before_decoding() -> None:
    """OpenCV's PNG decoder allocates a chunk's declared length before reading it: a
    349-byte file whose IDAT length had a flipped byte (found by fuzzing) took 4 GB and 9 s
    before failing as 'damaged'."""
    data = bytearray(save(RGB8, "PNG"))
    idat = data.index(b"IDAT") - 4
    struct.pack_into(">I", data, idat, 64 << 20)
    with pytest.raises(TruncatedImageError, match=rf"^PNG chunk IDAT declares 67,108,864 bytes, past the end of the "
                                                  rf"{len(data):,}-byte file: the file is truncated"):
        codecs.decode(bytes(data))


def test_a_tile_size_past_the_image_is_refused_before_the_decoders_allocate_it() -> None:
    buf = io.BytesIO()
    tifffile.imwrite(buf, RGB8, photometric="rgb", tile=(16, 16), metadata=None)
    data = bytearray(buf.getvalue())
    with tifffile.TiffFile(io.BytesIO(bytes(data))) as tif:
        width = tif.pages[0].tags["TileWidth"]
    assert width.dtype == 4  # a LONG
    struct.pack_into("<I", data, width.valueoffset, 1 << 22)  # 16 × 4 million px a tile: 200 MB to decode one
    with pytest.raises(CorruptImageError, match="^TIFF declares tiles of 4194304x16 for a 48x48 image: its "
                                                "directory is damaged"):
        codecs.decode(bytes(data))
    roomy = io.BytesIO()  # tiles larger than a small image, as some writers use whatever the size
    tifffile.imwrite(roomy, RGB8, photometric="rgb", tile=(256, 256), metadata=None)
    assert np.array_equal(codecs.decode(roomy.getvalue(), samples=True).pixels, RGB8)


def _tiff_of(samples: np.ndarray) -> bytes:
    buf = io.BytesIO()
    tifffile.imwrite(buf, samples, photometric="rgb")
    return buf.getvalue()


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.uint32])
def test_whole_tiff_of_samples_we_do_not_process_is_not_called_truncated(dtype: type) -> None:
    data = _tiff_of(RGB8.astype(dtype))  # Pillow opens none of these; the file itself is sound
    with pytest.raises(UnsupportedImageError, match=f"{np.dtype(dtype)} samples are not processed"):
        codecs.decode(data)
    with pytest.raises(TruncatedImageError, match="pixel data is incomplete"):
        codecs.decode(data[: len(data) // 2])


@pytest.mark.parametrize("layout, named", [
    (dict(data=RGB8.astype(np.uint16) << 4, photometric="cielab", bitspersample=12),
     "TIFF of 3 × 12-bit CIELAB samples per pixel is not processed; convert it to 8 or 16 bits per sample"),
    (dict(data=np.dstack([RGB8, RGB8[:, :, :1]]).astype(np.uint16) * 16, photometric="separated", bitspersample=12),
     "TIFF of 4 × 12-bit SEPARATED samples per pixel is not processed; convert it to 8 or 16 bits per sample"),
], ids=["lab12", "cmyk12"])
def test_tiff_layout_nothing_here_opens_is_named_in_its_error(layout: dict, named: str) -> None:
    buf = io.BytesIO()
    tifffile.imwrite(buf, **layout)
    with pytest.raises(UnsupportedImageError, match=named):
        codecs.decode(buf.getvalue())


def test_tiff_compression_no_decoder_knows_is_named_in_its_error() -> None:
    buf = io.BytesIO()
    tifffile.imwrite(buf, RGB8, photometric="rgb")
    data = bytearray(buf.getvalue())
    with tifffile.TiffFile(io.BytesIO(data)) as tif:  # a code tifffile does not write: set in the directory
        at = tif.pages[0].tags["Compression"].valueoffset
    data[at:at + 2] = struct.pack("<H", 60000)
    with pytest.raises(UnsupportedImageError, match="TIFF compressed with 60000 is not processed"):
        codecs.decode(bytes(data))


@pytest.mark.parametrize("compression", ["jpeg2000", "jpegxl", "lerc"])
def test_tiffs_compressed_as_pillow_does_not_decode_are_read(compression: str) -> None:
    """Pillow opens none of these (they were refused); tifffile decodes them, losslessly here."""
    buf = io.BytesIO()
    lossless = {"jpeg2000": {"reversible": True}, "jpegxl": {"level": 100, "effort": 1, "distance": 0},
                "lerc": {"level": 0}}
    tifffile.imwrite(buf, RGB8, photometric="rgb", compression=compression, compressionargs=lossless[compression],
                     resolution=(600, 600), resolutionunit="INCH")
    decoded = codecs.decode(buf.getvalue(), samples=True)
    assert np.array_equal(decoded.pixels, RGB8) and decoded.metadata.dpi == (600, 600)


def _replicated(codes: np.ndarray, bits: int) -> np.ndarray:
    return (codes.astype(np.uint16) << (16 - bits)) | (codes.astype(np.uint16) >> (2 * bits - 16))


CODES12 = (RGB8.astype(np.uint16) << 4) | (RGB8 >> 4)
GREY16 = RGB8[:, :, 1].astype(np.uint16) * 257


@pytest.mark.parametrize("layout, colour, alpha", [
    (dict(data=CODES12, photometric="rgb", bitspersample=12), _replicated(CODES12, 12), None),
    (dict(data=CODES12[:, :, :1] >> 2, photometric="minisblack", bitspersample=10),
     _replicated(CODES12[:, :, :1] >> 2, 10), None),
    (dict(data=np.dstack([CODES12, CODES12[:, :, :1]]), photometric="rgb", bitspersample=12,
          extrasamples=["unassalpha"]), _replicated(CODES12, 12), _replicated(CODES12[:, :, 0], 12)),
    (dict(data=np.dstack([GREY16, np.full_like(GREY16, 65535)]), photometric="minisblack", extrasamples=["assocalpha"],
          compression="zlib"), GREY16[:, :, None], np.full_like(GREY16, 65535)),
    (dict(data=GREY16, photometric="miniswhite", byteorder=">"), 65535 - GREY16[:, :, None], None),
    (dict(data=np.dstack([CODES12, CODES12, CODES12[:, :, :2]]), photometric="rgb",  # Pillow takes up to six
          extrasamples=["unassalpha", "unspecified", "unspecified", "unspecified", "unspecified"]),
     CODES12, CODES12[:, :, 0]),
], ids=["rgb12", "grey10", "rgba12", "grey16-alpha", "grey16-white-is-zero-big-endian", "eight-samples"])
def test_sound_tiff_layouts_pillow_has_no_mode_for_are_read(layout: dict, colour: np.ndarray,
                                                           alpha: np.ndarray | None,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    """Pillow opens none of these, though each is a sound scan: they had been refused. Its
    refusal is of the layout alone, so their tags and metadata read as any TIFF's, and no
    error is logged for them (Pillow's own for eight samples read as a failure in a worker's log)."""
    profile = SRGB_ICC if colour.shape[2] == 3 else None  # an RGB profile: a grey page's would be dropped
    buf = io.BytesIO()
    tifffile.imwrite(buf, **layout, resolution=(1200, 1200), resolutionunit="INCH", iccprofile=profile)
    with caplog.at_level(logging.WARNING):
        decoded = codecs.decode(buf.getvalue(), samples=True)
    assert not [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
    assert decoded.bit_depth == 16 and np.array_equal(decoded.pixels, colour)
    assert (decoded.alpha is None) == (alpha is None) and (alpha is None or np.array_equal(decoded.alpha, alpha))
    assert decoded.metadata.dpi == (1200, 1200) and decoded.metadata.icc_profile == profile


def test_a_page_pillow_has_no_mode_for_is_read_after_pages_it_opens() -> None:
    """The second page of a file Pillow opens, turned by its Orientation tag as any page is."""
    buf = io.BytesIO()
    with tifffile.TiffWriter(buf) as tif:
        tif.write(RGB8, photometric="rgb")
        tif.write(CODES12, photometric="rgb", bitspersample=12, extratags=[(274, "H", 1, 6, True)])
    assert codecs.pages(buf.getvalue()).frames == (0, 1)
    decoded = codecs.decode(buf.getvalue(), samples=True, frame=1)
    assert decoded.size == (48, 48) and decoded.metadata.orientation == 6
    assert np.array_equal(decoded.pixels, np.rot90(_replicated(CODES12, 12), -1))


@pytest.mark.parametrize("name", ["scan.pcd", "scan.jxr", "scan.qoi", "scan.dds", "scan.sgi", "scan.xpm"])
def test_image_formats_an_archive_may_hold_are_taken_and_refused_by_name(name: str) -> None:
    """Kodak Photo CD (the 1990s' photo digitization), JPEG XR and the rest had been left out
    of a run as files that are no images (named in the report's list of other files, not in
    the ledger); now each is taken, and fails as unsupported, naming its format."""
    kind = name.rsplit(".", 1)[1].upper()
    if kind in ("PCD", "XPM"):  # ImageMagick writes these; Pillow reads them
        data = written(RGB8, kind=kind)
    elif kind == "JXR":
        data = imagecodecs.jpegxr_encode(RGB8)
    else:
        buf = io.BytesIO()
        Image.fromarray(RGB8).save(buf, kind)
        data = buf.getvalue()
    assert formats.is_master_name(name)
    with pytest.raises(UnsupportedImageError, match=f"{'JPEG XR' if kind == 'JXR' else kind} images are not processed"):
        codecs.decode(data)


def test_a_one_bit_rgb_tiff_is_read_in_its_eight_colours() -> None:
    """One bit a sample in colour (a map printed in pure inks, scanned so): refused as "bool
    samples" until 2026-12-07, though tifffile reads it; each channel on or off, 0 or 255."""
    on = RGB8 > 127
    buf = io.BytesIO()
    tifffile.imwrite(buf, on.astype(np.uint8), photometric="rgb", bitspersample=1)
    decoded = codecs.decode(buf.getvalue(), samples=True)
    assert decoded.bit_depth == 8 and np.array_equal(decoded.pixels, on.astype(np.uint8) * 255)


def _paletted() -> tuple[np.ndarray, np.ndarray]:
    """RGB8 as 64 palette indices and its 16-bit ColorMap."""
    quantised = Image.fromarray(RGB8).quantize(64)
    colours = np.array(quantised.getpalette()[:64 * 3], np.uint16).reshape(64, 3)
    colormap = np.zeros((3, 256), np.uint16)
    colormap[:, :64] = colours.T * 257
    return np.asarray(quantised), colormap


@pytest.mark.parametrize("first", ["cmyk-alpha", "grey-2-bit"])
@pytest.mark.parametrize("later", ["palette", "bilevel", "rgb"])
def test_a_page_after_one_opencv_cannot_read_decodes_as_it_does_alone(first: str, later: str) -> None:
    """OpenCV reads a multi-page TIFF's page by walking the pages before it, and stops at one
    it cannot read: a palette or bilevel page after it was refused ("TIFF with PALETTE pixels
    cannot be decoded here"), though the same page alone decodes."""
    index, colormap = _paletted()
    firsts = {"cmyk-alpha": (np.dstack([255 - RGB8, RGB8[:, :, :2]]).astype(np.uint16) * 257,
                             dict(photometric="separated", extrasamples=["unassalpha"])),
              "grey-2-bit": (RGB8[:, :, 0] >> 6, dict(photometric="minisblack", bitspersample=2))}
    laters = {"palette": (index, dict(photometric="palette", colormap=colormap)),
              "bilevel": (RGB8[:, :, 1] > 128, dict(photometric="miniswhite")),
              "rgb": (RGB8, dict(photometric="rgb"))}
    alone, both = io.BytesIO(), io.BytesIO()
    tifffile.imwrite(alone, laters[later][0], **laters[later][1])
    with tifffile.TiffWriter(both) as tif:
        tif.write(firsts[first][0], **firsts[first][1])
        tif.write(laters[later][0], **laters[later][1])
    expected = codecs.decode(alone.getvalue(), samples=True)
    decoded = codecs.decode(both.getvalue(), samples=True, frame=1)
    assert np.array_equal(decoded.pixels, expected.pixels) and decoded.alpha is None
    if later == "palette":  # the colours themselves, as the palette gives them
        assert np.array_equal(decoded.pixels, (colormap >> 8).T[index])


def _png_declaring(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_decompression_bomb_is_refused_before_decoding() -> None:
    bomb = _png_declaring(60_000, 60_000)
    assert len(bomb) < 200
    with pytest.raises(ImageTooLargeError, match=r"3,600,000,000 pixels exceeds the limit"):
        codecs.decode(bomb)


def test_pixel_limit_is_configurable() -> None:
    data = save(RGB8, "PNG")
    with pytest.raises(ImageTooLargeError, match="2,304 pixels exceeds the limit of 1,000"):
        codecs.decode(data, max_pixels=1000)
    assert codecs.decode(data, max_pixels=48 * 48).size == (48, 48)


DEEP = np.ascontiguousarray((photo("astronaut", 48, top=100, left=180) * 4095 + 0.5).astype(np.uint16))


def _with_metadata(jpeg: bytes, exif: dict, icc: bytes) -> bytes:
    return (jpeg[:2] + _segment_of(0xE1, piexif.dump(exif)) + _segment_of(0xE2, b"ICC_PROFILE\x00\x01\x01" + icc)
            + jpeg[2:])


@pytest.mark.parametrize("grey", [False, True], ids=["colour", "grey"])
def test_a_12_bit_jpeg_is_read_at_16_bits_with_its_metadata_and_written_as_png(grey: bool) -> None:
    """Refused until 2026-12-05 (Pillow takes 8-bit JPEGs only, OpenCV none of these): a
    microscope's or a medical archive's 12-bit JPEGs. A JPEG derivative would cut them to 8 bits."""
    import imagecodecs

    from enhance_ops.chain import icc

    samples = np.ascontiguousarray(DEEP[:, :, 1]) if grey else DEEP
    profile = (icc.build_grey_profile("Gamma 2.2", icc.Curve(gamma=2.2)) if grey
               else icc.build_profile(icc.SPACES["Adobe RGB"]))
    exif = {"0th": {piexif.ImageIFD.Make: b"Zeiss", piexif.ImageIFD.Orientation: 6}, "Exif": {}}
    data = _with_metadata(imagecodecs.jpeg8_encode(samples, bitspersample=12, level=95), exif, profile)
    decoded = codecs.decode(data)
    assert (decoded.bit_depth, decoded.bits_per_sample, decoded.output_format) == (16, 12, "PNG")
    assert decoded.metadata.exif["0th"][piexif.ImageIFD.Make] == b"Zeiss" and decoded.metadata.icc_profile == profile
    upright = np.rot90(samples.reshape(48, 48, -1), -1) / 4095  # orientation 6: turned a quarter clockwise
    assert psnr(decoded.pixels, upright) > 38  # a lossy JPEG's difference: turned, and at the full 12-bit range
    assert len(np.unique(decoded.pixels)) > 256  # not cut to 8 bits
    assert decoded.damage is None and decoded.notes == []
    with pytest.raises(OSError, match="12-bit samples"):  # the header stands in for no pixels
        deep_jpeg.open_header(data).load()
    with pytest.raises(EncodeError, match="JPEG holds 8 bits per sample"):
        encoders.check_writable("JPEG", decoded.bit_depth, False)


@pytest.mark.parametrize(("bits", "channels"), [(16, 1), (12, 3), (4, 1)])
def test_a_lossless_jpeg_of_other_than_8_bits_is_read_exactly(bits: int, channels: int) -> None:
    """As a DICOM archive's or a DNG's lossless JPEG holds them; refused until 2026-12-05."""
    import imagecodecs

    stored = (DEEP >> (12 - bits) if bits < 12 else DEEP << (bits - 12))[:, :, :channels]
    stored = np.ascontiguousarray(stored.astype(np.uint8 if bits <= 8 else np.uint16).squeeze())
    decoded = codecs.decode(imagecodecs.jpeg8_encode(stored, lossless=True, bitspersample=bits))
    top = 2**bits - 1
    assert decoded.bits_per_sample == bits and decoded.bit_depth == (16 if bits > 8 else 8)
    np.testing.assert_array_equal(np.rint(decoded.pixels * top).reshape(stored.shape), stored)


@pytest.mark.parametrize("options", [{"bitspersample": 12, "level": 95}, {"bitspersample": 16, "lossless": True}],
                         ids=["12-bit", "lossless 16-bit"])
def test_a_damaged_or_cut_off_deep_jpeg_is_noted_as_damaged(options: dict) -> None:
    """imagecodecs' libjpeg decodes on past a changed byte or the end of a 12- or 16-bit scan
    in silence, and simplejpeg's, which says so, reads 8-bit JPEGs only: the scan is checked
    with its frame header told 8 bits. Until 2026-12-06 only a cut was found, by its missing
    end-of-image marker."""
    import imagecodecs

    whole = imagecodecs.jpeg8_encode(DEEP << 4 if options["bitspersample"] == 16 else DEEP, **options)
    hit = bytearray(whole)
    hit[int(len(whole) * 0.4)] ^= 0x5A  # one that libjpeg meets as a bad code (not every changed byte is)
    decoded = codecs.decode(bytes(hit))
    assert decoded.damage == "libjpeg: Corrupt JPEG data: bad Huffman code"
    assert decoded.notes[-1].startswith("the JPEG's pixel data is damaged (libjpeg: Corrupt JPEG data")
    assert codecs.decode(whole[: len(whole) * 3 // 4]).damage == "libjpeg: Premature end of JPEG file"
    sound = codecs.decode(whole + b"\x00" * 200)  # bytes after the end are no damage
    assert sound.damage is None and sound.notes == [] and sound.bits_per_sample == options["bitspersample"]


def test_jpegs_no_reader_here_decodes_are_named_not_called_corrupt() -> None:
    import imagecodecs

    twelve = imagecodecs.jpeg8_encode(DEEP, bitspersample=12, level=95)
    frame = jpeg_segments.frame(twelve)
    sixteen = bytearray(twelve)
    sixteen[frame.start + 4] = 16  # no lossy process has 16-bit samples
    with pytest.raises(UnsupportedImageError, match="JPEG of 3 × 16-bit samples is not processed"):
        codecs.decode(bytes(sixteen))
    ycbcr = imagecodecs.jpeg8_encode(DEEP, lossless=True, bitspersample=12, colorspace="YCbCr", outcolorspace="YCbCr")
    with pytest.raises(UnsupportedImageError, match="lossless JPEG in this colour space is not processed"):
        codecs.decode(ycbcr)


def test_a_gif_reads_as_its_palette_says_with_its_transparency_and_its_comment() -> None:
    """GIF was refused; an archive's web-era digitisations are GIFs. Written back as PNG."""
    buffer = io.BytesIO()
    Image.fromarray(RGB8).quantize(64).save(buffer, "GIF", transparency=0, comment=b"Box 7: postcard, 1911")
    decoded = codecs.decode(buffer.getvalue())
    expected = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGBA"))
    assert decoded.format == "GIF" and decoded.output_format == "PNG" and decoded.bit_depth == 8
    np.testing.assert_array_equal(np.rint(decoded.pixels * 255), expected[:, :, :3])
    np.testing.assert_array_equal(np.rint(decoded.alpha * 255), expected[:, :, 3])
    assert decoded.metadata.text == {"Comment": "Box 7: postcard, 1911"}
    assert codecs.pages(buffer.getvalue()).sample_bytes == RGB8.shape[0] * RGB8.shape[1] * 4  # decoded as RGBA
    with pytest.raises(TruncatedImageError, match="GIF pixel data is incomplete"):
        codecs.decode(buffer.getvalue()[:-1])  # no trailer


def test_an_animated_gif_without_transparency_gains_no_alpha() -> None:
    """OpenCV gives an animated GIF's first frame four channels: its derivative had an opaque
    alpha channel its master never declared, and the ledger counted 4 channels."""
    frames = [Image.fromarray(RGB8).quantize(64), Image.fromarray(RGB8[::-1]).quantize(64)]
    plain, keyed = io.BytesIO(), io.BytesIO()
    frames[0].save(plain, "GIF", save_all=True, append_images=frames[1:])
    frames[0].save(keyed, "GIF", save_all=True, append_images=frames[1:], transparency=0)
    decoded = codecs.decode(plain.getvalue())
    assert decoded.alpha is None and decoded.pixels.shape == (48, 48, 3)
    np.testing.assert_array_equal(np.rint(decoded.pixels * 255), np.asarray(frames[0].convert("RGB")))
    assert codecs.decode(keyed.getvalue()).alpha.min() == 0  # a transparent colour declared: kept


def test_every_bad_input_error_has_its_own_code() -> None:
    from enhance_ops import errors

    kinds = [errors.EmptyFileError, errors.NotAnImageError, errors.UnsupportedImageError,
             errors.TruncatedImageError, errors.CorruptImageError, errors.ImageTooLargeError]
    assert len({k.code for k in kinds}) == len(kinds)
    assert all(issubclass(k, errors.ImageError) for k in kinds)


PHOTO_JPEG = save((photo("astronaut", 128) * 255 + 0.5).astype(np.uint8), "JPEG", quality=92)


def _scan_cut_short(jpeg: bytes) -> bytes:
    """The scan's second half lost and the file closed with EOI, as a copy interrupted by a
    tool that still ends what it writes leaves it."""
    scan = scan_data(jpeg)
    return jpeg[: (scan.start + scan.stop) // 2] + b"\xff\xd9"


def _zeroed(jpeg: bytes) -> bytes:
    """Sixty-four bytes of the scan lost to zeros (a bad block on a disk)."""
    scan, data = scan_data(jpeg), bytearray(jpeg)
    middle = (scan.start + scan.stop) // 2
    data[middle:middle + 64] = bytes(64)
    return bytes(data)


@pytest.mark.parametrize(("damaged", "said"), [
    (_scan_cut_short, "Corrupt JPEG data: premature end of data segment"),
    (_zeroed, "Corrupt JPEG data: "),
])
def test_damage_in_a_jpegs_pixel_data_is_found_and_noted(damaged: Callable[[bytes], bytes], said: str) -> None:
    """OpenCV decodes past all of these without a word; the image is garbled or blank from the damage on."""
    data = damaged(PHOTO_JPEG)
    decoded, sound = codecs.decode(data), codecs.decode(PHOTO_JPEG)
    assert decoded.size == sound.size and not np.array_equal(decoded.pixels, sound.pixels)
    assert decoded.damage is not None and decoded.damage.startswith(f"libjpeg: {said}")
    assert decoded.notes == [f"the JPEG's pixel data is damaged ({decoded.damage}): part of the image "
                             "decodes garbled or blank; restore the master from another copy"]
    if damaged is _scan_cut_short:  # OpenCV filled the rows it had no data for with one grey
        assert np.ptp(decoded.pixels[-8:]) == 0 and np.ptp(sound.pixels[-8:]) > 0.3


def _segment_of(marker: int, body: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(body) + 2) + body


WITHOUT_JFIF = PHOTO_JPEG[:2] + PHOTO_JPEG[4 + int.from_bytes(PHOTO_JPEG[4:6], "big"):]  # Pillow's APP0 left out
ODD_HEADERS = {  # each makes libjpeg warn before the scan, about a header the image does not depend on
    "JFIF revision 2.01": PHOTO_JPEG[:11] + b"\x02" + PHOTO_JPEG[12:],
    "ICC segment numbered 0 of 0": PHOTO_JPEG[:2] + _segment_of(0xE2, b"ICC_PROFILE\x00\x00\x00" + bytes(16))
    + PHOTO_JPEG[2:],
    "Adobe transform 7": WITHOUT_JFIF[:2] + _segment_of(0xEE, b"Adobe\x00\x64\x00\x00\x00\x00\x07") + WITHOUT_JFIF[2:],
}


@pytest.mark.parametrize("odd", ODD_HEADERS)
def test_damage_in_the_pixel_data_is_found_past_a_header_libjpeg_warns_about(odd: str) -> None:
    """libjpeg's warning about such a header ended the check before the scan: the damage went unseen."""
    sound = ODD_HEADERS[odd]
    with pytest.raises(ValueError):  # the header warning the check used to stop at
        simplejpeg.decode_jpeg(sound, colorspace="GRAY", strict=True)
    assert damage.in_jpeg(sound) is None and codecs.decode(sound).damage is None
    for damaged in (_scan_cut_short, _zeroed):
        assert codecs.decode(damaged(sound)).damage.startswith("libjpeg: Corrupt JPEG data: ")


@pytest.mark.parametrize("options", [{}, {"progressive": True}, {"subsampling": 0}, {"restart_marker_blocks": 2},
                                     {"optimize": True, "quality": 100}], ids=str)
def test_sound_jpegs_show_no_damage(options: dict) -> None:
    rgb, cmyk = (photo("astronaut", 128) * 255 + 0.5).astype(np.uint8), io.BytesIO()
    Image.fromarray(rgb).convert("CMYK").save(cmyk, "JPEG", **options)
    for data in (save(rgb, "JPEG", **options), save(rgb[..., 0], "JPEG", **options), cmyk.getvalue(),
                 multi_picture(rgb, exif=CAMERA_EXIF)):
        assert damage.in_jpeg(data) is None and codecs.decode(data).damage is None


def test_a_4_4_1_jpeg_is_read_and_checked_for_damage() -> None:
    """Luma sampled 1 × 4 (ImageMagick's ``-sampling-factor 1x4``; jpegtran turning a 4:1:1
    JPEG): simplejpeg has no name for that subsampling and raised a KeyError in the damage
    check, so a sound scan failed as an internal error."""
    rgb = (photo("astronaut", 128) * 255 + 0.5).astype(np.uint8)
    sound = written(rgb, "-sampling-factor", "1x4", "-quality", "92", kind="JPEG")
    found = jpeg_segments.frame(sound)
    assert found is not None and sound[found.start + 11] == 0x14  # the first component's sampling, 1 × 4
    with pytest.raises(KeyError):
        simplejpeg.decode_jpeg_header(sound)
    decoded = codecs.decode(sound)
    assert damage.in_jpeg(sound) is None and decoded.damage is None and psnr(decoded.pixels, rgb / 255) > 30
    assert codecs.decode(_scan_cut_short(sound)).damage == "libjpeg: Corrupt JPEG data: premature end of data segment"


_LOSSLESS_CHECK = """
import sys
import imagecodecs, numpy as np
from enhance_ops import codecs
from skimage import data
rgb = np.ascontiguousarray(data.astronaut()[100:164, 100:180])
for name, samples in (("grey", np.ascontiguousarray(rgb[:, :, 1])), ("rgb", rgb)):
    jpeg = imagecodecs.jpeg8_encode(samples, lossless=True)
    sound = codecs.decode(jpeg)
    hit = bytearray(jpeg)
    hit[len(jpeg) // 2] ^= 0x5A
    print(name, sound.damage, np.array_equal(np.rint(sound.pixels * 255).reshape(samples.shape), samples),
          codecs.decode(bytes(hit)).damage)
"""


def test_a_lossless_jpeg_is_checked_for_damage_whole_without_corrupting_memory() -> None:
    """libjpeg scales no lossless image: the damage check asked simplejpeg for an eighth, and
    libjpeg wrote the whole image into the buffer sized for it. The process died later (a
    corrupted heap), so the check runs in a process of its own. A lossless RGB one, asked for
    grey, which lossless decoding cannot give, was called damaged."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _LOSSLESS_CHECK], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(PROJECT / "plugins")})
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line.split(" ", 3) for line in done.stdout.splitlines()]
    assert [line[:3] for line in lines] == [["grey", "None", "True"], ["rgb", "None", "True"]]
    assert all(line[3].startswith("libjpeg: Corrupt JPEG data") for line in lines), lines


def _tiff(pages: list[np.ndarray], photometric: str | None = None, **options: object) -> bytes:
    buf = io.BytesIO()
    with tifffile.TiffWriter(buf) as tif:
        for page in pages:
            tif.write(page, photometric=photometric or ("rgb" if page.ndim == 3 else "minisblack"), metadata=None,
                      **options)
    return buf.getvalue()


def _segment(data: bytes, frame: int, n: int) -> tuple[int, int]:
    """Where the n-th strip or tile (from 0) of the frame-th directory lies: (offset, byte count)."""
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        page = tif.pages[frame]
        return page.dataoffsets[n], page.databytecounts[n]


def _flipped(data: bytes, at: int) -> bytes:
    damaged = bytearray(data)
    damaged[at] ^= 0x10
    return bytes(damaged)


def _cut_segment(data: bytes, frame: int, n: int) -> bytes:
    """The segment's byte count in its directory halved, as a writer that crashed mid-strip leaves it."""
    offset, count = _segment(data, frame, n)
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        tag = tif.pages[frame].tags[325 if tif.pages[frame].is_tiled else 279]  # Tile/StripByteCounts
        kind = {3: "<H", 4: "<I"}[tag.dtype]  # SHORT or LONG counts, in tifffile's little-endian TIFF
        at = tag.valueoffset + struct.calcsize(kind) * n
    damaged = bytearray(data)
    struct.pack_into(kind, damaged, at, count // 2)
    return bytes(damaged)


TIFF_RGB = (photo("astronaut", 96) * 255 + 0.5).astype(np.uint8)


@pytest.mark.parametrize(("compression", "damaging", "said"), [
    ("zlib", lambda d: _flipped(d, sum(_segment(d, 0, 2)) - 40), "strip 3 of 6 cannot be expanded: "),
    ("lzw", lambda d: _cut_segment(d, 0, 2), "strip 3 of 6 expands to "),
    ("packbits", lambda d: _cut_segment(d, 0, 2), "strip 3 of 6 cannot be expanded: "),  # a run cut short
])
@pytest.mark.parametrize("lanes", ["1", "3"], ids=["check after the decoder", "check beside it"])
def test_damage_in_a_tiffs_strips_is_found_and_noted(compression: str, damaging: Callable[[bytes], bytes],
                                                     said: str, lanes: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """OpenCV (libtiff) returned these with the strip's rows garbled or zero, without a word."""
    monkeypatch.setenv(strips.LANES_VARIABLE, lanes)
    sound = _tiff([TIFF_RGB], compression=compression, rowsperstrip=16)
    data = damaging(sound)
    decoded = codecs.decode(data)
    assert not np.array_equal(decoded.pixels, codecs.decode(sound).pixels)
    assert decoded.damage is not None and decoded.damage.startswith(said)
    assert decoded.notes == [f"the TIFF's pixel data is damaged ({decoded.damage}): part of the image decodes "
                             "garbled or blank; restore the master from another copy"]


@pytest.mark.parametrize("bits", [8, 16])
def test_a_tiff_derivative_is_deflated_after_the_horizontal_predictor_and_reads_back_exactly(bits: int) -> None:
    """Each sample stored as its difference from the one to its left, as archives write their
    deflate TIFFs: an enlarged photo's derivative had taken twice the bytes at 8 bits and a
    quarter more at 16 (docs/benchmarks.md)."""
    enlarged = cv2.resize(photo("astronaut", 128, top=60, left=200), (512, 512), interpolation=cv2.INTER_CUBIC)
    samples = encoders.to_samples(np.clip(enlarged, 0, 1), None, bits)
    out = encoders.encode_samples(samples.copy(), fmt="TIFF", meta=ImageMetadata(), scale=4.0,
                                  provenance=encoders.Provenance("archive-enhance test", "Enhanced derivative: test"))
    with tifffile.TiffFile(io.BytesIO(out)) as tif:
        assert (tif.pages[0].compression, tif.pages[0].predictor) == (8, 2)
    np.testing.assert_array_equal(cv2.imdecode(np.frombuffer(out, np.uint8), cv2.IMREAD_UNCHANGED)[:, :, ::-1], samples)
    without = io.BytesIO()
    tifffile.imwrite(without, samples, photometric="rgb", compression="zlib", metadata=None)
    assert len(out) < 0.9 * len(without.getvalue())  # 0.51 and 0.83 of it here


DEEP_RGB = TIFF_RGB.astype(np.uint16) * 257 + np.arange(96, dtype=np.uint16)[None, :, None]  # low bits that matter


@pytest.mark.parametrize(("pages", "options"), [
    ([TIFF_RGB[:, :, 0]], {}),
    ([DEEP_RGB[:, :, 1]], {"predictor": True}),
    ([TIFF_RGB], {"rowsperstrip": 7}),
    ([DEEP_RGB], {"predictor": True}),
    ([TIFF_RGB], {"tile": (32, 48)}),
    ([np.moveaxis(TIFF_RGB, 2, 0)], {"planarconfig": "separate"}),  # a plane of each colour
    ([TIFF_RGB[:, :, 2]], {"photometric": "miniswhite"}),
    ([TIFF_RGB], {"extratags": [(274, "H", 1, 6, True)]}),  # stored turned: Orientation 6
    ([TIFF_RGB[:48], DEEP_RGB], {}),  # its second page
], ids=["grey8", "grey16-predictor", "rgb8-strips", "rgb16-predictor", "rgb8-tiles", "rgb8-planes",
        "white-is-zero", "orientation-6", "second-page"])
@pytest.mark.parametrize("lanes", ["1", "3"])
def test_a_deflate_tiff_read_by_libdeflate_gives_what_libtiff_gives_for_the_same_samples(
        pages: list[np.ndarray], options: dict, lanes: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Deflate pages are read by libdeflate on the strip lanes, 2.7-3.9 times as fast as
    libtiff under OpenCV; the same samples stored uncompressed still go to OpenCV."""
    monkeypatch.setenv(strips.LANES_VARIABLE, lanes)
    frame = len(pages) - 1
    opencv, by_opencv = codecs._opencv_decode, []
    monkeypatch.setattr(codecs, "_opencv_decode", lambda *args: by_opencv.append(args) or opencv(*args))
    deflated = codecs.decode(_tiff(pages, compression="zlib", **options), frame=frame)
    assert not by_opencv
    options.pop("predictor", None)
    stored = codecs.decode(_tiff(pages, **options), frame=frame)
    assert by_opencv
    np.testing.assert_array_equal(deflated.pixels, stored.pixels)
    assert deflated.bit_depth == stored.bit_depth and deflated.damage is None and deflated.notes == stored.notes


def test_a_deflate_page_libdeflate_reads_is_not_expanded_again_to_look_for_damage(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """libdeflate refuses a strip whose checksum or expanded size is wrong, so a page it has
    read is sound: the damage check, which expanded every strip a second time beside it, had
    doubled a deflate TIFF's read (503 against 234 ms for 16.8 Mpx at 16 bits). A page it
    refuses goes to OpenCV, and the check then names the damaged strip."""
    checked, check = [], damage.in_tiff_page
    monkeypatch.setattr(damage, "in_tiff_page", lambda *args: checked.append(args) or check(*args))
    sound = codecs.decode(_tiff([DEEP_RGB], compression="zlib", rowsperstrip=16))
    assert sound.damage is None and not checked
    rotted = codecs.decode(build()["bit-rot-deflate.tif"].data)
    assert len(checked) == 1 and rotted.damage.startswith("strip 1 of 2 cannot be expanded")


@pytest.mark.parametrize(("options", "damaged"), [
    ({"rowsperstrip": 16}, (slice(16, 32), slice(None), slice(None))),
    ({"tile": (16, 16)}, (slice(0, 16), slice(16, 32), slice(None))),
    ({"rowsperstrip": 16, "planarconfig": "separate"}, (slice(16, 32), slice(None), slice(0, 1))),  # red's 2nd strip
], ids=["strips", "tiles", "planes"])
def test_a_deflate_page_with_a_strip_that_inflates_short_is_decoded_past_it(options: dict, damaged: tuple) -> None:
    """A strip whose stream is sound but ends early is refused by libdeflate and by libtiff
    under OpenCV alike, and the whole master had failed as corrupt. The other strips or tiles
    are now read one by one, the short one left blank, and the damage check names it."""
    stored = np.moveaxis(DEEP_RGB, 2, 0) if options.get("planarconfig") else DEEP_RGB
    data = bytearray(_tiff([stored], compression="zlib", predictor=True, **options))
    with tifffile.TiffFile(io.BytesIO(bytes(data))) as tif:
        at, count = tif.pages[0].dataoffsets[1], tif.pages[0].databytecounts[1]
    short = zlib.compress(zlib.decompress(bytes(data[at:at + count]))[:-100])  # the second segment, ending early
    data[at:at + len(short)] = short
    decoded = codecs.decode(bytes(data), samples=True)
    assert re.match(r"(strip|tile) 2 of \d+ expands to [\d,]+ bytes, not [\d,]+$", decoded.damage)
    wrong = np.zeros(DEEP_RGB.shape, bool)
    wrong[damaged] = True
    assert (decoded.pixels != DEEP_RGB)[~wrong].sum() == 0 and (decoded.pixels[damaged] == 0).any()


@pytest.mark.parametrize("colour", [False, True], ids=["grey", "colour"])
def test_a_12_bit_jpeg_compressed_tiff_is_read_and_called_damaged_only_where_it_is(colour: bool) -> None:
    """Its strips were checked by simplejpeg's libjpeg, which reads 8-bit JPEGs only: "libjpeg:
    Unsupported JPEG data precision 12" went into the ledger as damage, and a sound scan was
    held for review with a note to restore it from another copy. A colour one, stored as
    JPEG-compressed YCbCr (as colour TIFFs' JPEG strips are written), was refused."""
    samples = (TIFF_RGB if colour else np.ascontiguousarray(TIFF_RGB[:, :, 1])).astype(np.uint16) * 16
    data = _tiff([samples], compression="jpeg", compressionargs={"level": 95}, bitspersample=12, rowsperstrip=16,
                 extratags=[(271, "s", 0, "Zeiss", True)])
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        assert tif.pages[0].photometric == (tifffile.PHOTOMETRIC.YCBCR if colour else tifffile.PHOTOMETRIC.MINISBLACK)
    decoded = codecs.decode(data)
    assert decoded.damage is None and decoded.notes == []
    assert (decoded.bit_depth, decoded.bits_per_sample) == (16, 12)
    assert decoded.metadata.exif["0th"][271] == b"Zeiss"
    assert psnr(decoded.pixels.squeeze(), samples / 4095) > 40
    # and a strip cut short is found, as in an 8-bit one (until 2026-12-06 not: libjpeg was not asked)
    assert codecs.decode(_cut_segment(data, 0, 2)).damage == "strip 3 of 6: libjpeg: Premature end of JPEG file"


def test_damage_on_a_later_page_of_a_tiff_is_that_pages() -> None:
    sound = _tiff([TIFF_RGB, TIFF_RGB[::-1]], compression="zlib", rowsperstrip=16)
    data = _flipped(sound, sum(_segment(sound, 1, 0)) - 20)
    assert codecs.decode(data, frame=0).damage is None
    assert codecs.decode(data, frame=1).damage.startswith("strip 1 of 6 cannot be expanded: ")


def test_an_extrasamples_tag_naming_alpha_on_a_page_without_the_channel_gives_no_alpha() -> None:
    """Found by fuzzing: an RGB page whose XResolution code is damaged into ExtraSamples (its
    (1, 1) reads as associated alpha) and whose Compression count is damaged, so that libtiff
    gives up and tifffile reads it: the missing alpha channel raised IndexError, an internal error."""
    buf = io.BytesIO()
    tifffile.imwrite(buf, RGB8, photometric="rgb", resolution=(1, 1), metadata=None)
    data = bytearray(buf.getvalue())
    with tifffile.TiffFile(io.BytesIO(bytes(data))) as tif:
        tags = tif.pages[0].tags  # each tag's offset: where its 12-byte entry is
        struct.pack_into("<H", data, tags[282].offset, 338)  # XResolution's code, as ExtraSamples'
        struct.pack_into("<I", data, tags[259].offset + 4, 0xDB000001)  # Compression's count
    decoded = codecs.decode(bytes(data))
    assert decoded.alpha is None and np.array_equal((decoded.pixels * 255).round().astype(np.uint8), RGB8)


def test_a_tiff_directory_too_damaged_to_size_its_strips_is_left_to_the_decoders() -> None:
    data = bytearray(_tiff([TIFF_RGB], compression="lzw", rowsperstrip=16))
    with tifffile.TiffFile(io.BytesIO(bytes(data))) as tif:
        tag = tif.pages[0].tags[278]  # RowsPerStrip
        struct.pack_into({3: "<H", 4: "<I"}[tag.dtype], data, tag.valueoffset, 0)
    assert damage.in_tiff_page(bytes(data), 0) is None  # it raised ZeroDivisionError, a bare exception
    with pytest.raises(CorruptImageError):
        codecs.decode(bytes(data))


PRINTED_PAGE = np.tile(skdata.page() > 128, (2, 2))  # a bitonal page of print, 382 × 768


# How libtiff stores a bitonal page in each CCITT coding TIFF names: Pillow's compression and
# the T4Options tag (bit 0: rows coded two-dimensionally, bit 2: fill bits before end-of-line codes).
CCITT_CODINGS = {
    "group4": ("group4", {}),
    "group3": ("group3", {}),
    "group3 2-D": ("group3", {292: 1}),
    "group3 2-D, fill bits, 300 dpi": ("group3", {292: 5, 282: 300.0, 283: 300.0}),  # every 4th row 1-D
    "modified huffman": ("tiff_ccitt", {}),
}


def _ccitt(coding: str = "group4", tags: dict[int, object] | None = None, page: np.ndarray = PRINTED_PAGE) -> bytes:
    """A bitonal page as document scanners and fax software store it, written by libtiff (through Pillow)."""
    compression, options = CCITT_CODINGS[coding]
    buf = io.BytesIO()
    Image.fromarray(page).save(buf, "TIFF", compression=compression, tiffinfo={**options, **(tags or {})})
    return buf.getvalue()


def _ccitt_read(data: bytes) -> list[list[int]]:
    """Every row's changing elements, read strip by strip as ``damage`` reads them."""
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        page = tif.pages[0]
        strips = [data[o:o + n] for o, n in zip(page.dataoffsets, page.databytecounts)]
        height, width, per_strip = page.imagelength, page.imagewidth, page.rowsperstrip
        coding = damage.ccitt_coding(page)
        lsb_first = page.fillorder == 2
    return [change for n, strip in enumerate(strips)
            for change in ccitt.read(strip, width, min(per_strip, height - n * per_strip), lsb_first=lsb_first,
                                     coding=coding)]


def _changes(page: np.ndarray) -> list[list[int]]:
    return [np.flatnonzero(np.diff(row, prepend=False)).tolist() for row in page]


def _zeroed_in(data: bytes, n: int) -> bytes:
    """Four bytes in the middle of the n-th strip lost to zeros (a bad block on a disk)."""
    offset, count = _segment(data, 0, n)
    return data[:offset + count // 2] + bytes(4) + data[offset + count // 2 + 4:]


@pytest.mark.parametrize("coding", CCITT_CODINGS)
@pytest.mark.parametrize(("damaging", "said"), [
    (lambda d: _zeroed_in(d, 0), {"group4": "strip 1 of 1: no code word at row "}),
    (lambda d: _flipped(d, sum(_segment(d, 0, 0)) // 2), {}),
    (lambda d: _cut_segment(d, 0, 0), {"group4": "strip 1 of 1: the code ends in row "}),
], ids=["zeroed", "bit flipped", "cut short"])
def test_damage_in_a_ccitt_bitonal_page_is_found_and_noted(coding: str, damaging: Callable[[bytes], bytes],
                                                         said: dict[str, str]) -> None:
    """libtiff decoded on past a bad code word, garbling every row after it (Group 4) or the
    rest of its row (Group 3 looks for the next end-of-line code), and said so only to its
    error handler, which neither OpenCV nor Pillow hands back; a Group 3 page had no check at all."""
    sound = _ccitt(coding)
    decoded = codecs.decode(damaging(sound))
    assert not np.array_equal(decoded.pixels[..., 0] > 0.5, codecs.decode(sound).pixels[..., 0] > 0.5)
    assert decoded.damage is not None and decoded.damage.startswith(said.get(coding, "strip 1 of 1: "))
    assert decoded.notes == [f"the TIFF's pixel data is damaged ({decoded.damage}): part of the image decodes "
                             "garbled or blank; restore the master from another copy"]


@pytest.mark.parametrize("coding", CCITT_CODINGS)
@pytest.mark.parametrize("tags", [{}, {278: 9}, {278: 1}, {266: 2}, {278: 9, 266: 2}],
                         ids=["one strip", "9-row strips", "1-row strips", "bits LSB first", "both"])
def test_sound_ccitt_pages_show_no_damage_and_each_of_their_strips_is_looked_at(coding: str,
                                                                              tags: dict[int, int]) -> None:
    sound = _ccitt(coding, tags)
    decoded = codecs.decode(sound)
    assert decoded.damage is None and np.array_equal(decoded.pixels[..., 0] > 0.5, PRINTED_PAGE)
    assert _ccitt_read(sound) == _changes(PRINTED_PAGE)  # row by row, in runs or against the row above
    last = len(tifffile.TiffFile(io.BytesIO(sound)).pages[0].dataoffsets)
    assert damage.in_tiff_page(_zeroed_in(sound, last - 1), 0).startswith(f"strip {last} of {last}: ")


@pytest.mark.parametrize("coding", CCITT_CODINGS)
def test_every_run_length_code_is_read_as_libtiff_writes_it(coding: str) -> None:
    """Rows of runs of every length class, each in both colours: every terminating code
    (0-63), every make-up code (64-1728) and the shared ones past it (1792-2560), and a run
    that takes two make-up codes. Each row is a strip of its own, so Group 4 codes it in runs
    (horizontal mode) against an imaginary white row, and Group 3 in runs as its first row;
    a code read wrong puts the row's changes elsewhere, or its end past the row's."""
    lengths = [*range(1, 64), *(m + (m // 64) % 64 for m in range(64, 2561, 64)), 4357]
    runs = [run for length in lengths for run in (length, length)]  # each in white, then in black
    row, rows, width = [], [], 6000
    for n, run in enumerate(runs):
        if len(row) + run > width:
            rows.append(np.resize(row, width) if row else np.zeros(width, bool))
            row = []
        row += [n % 2 == 1] * run
    rows.append(np.array(row + [False] * (width - len(row)), bool))
    stored = np.array(rows)  # the bits as stored: the code's "white" is a 0
    data = _ccitt(coding, {278: 1}, stored)
    assert _ccitt_read(data) == _changes(stored)
    assert codecs.decode(data).damage is None


RTC_1D = "000000000001" * 6  # T.4's return to control: six end-of-line codes
RTC_2D = "0000000000011" * 6  # each with the tag bit of a one-dimensional row


@pytest.mark.parametrize(("coding", "rtc"), [(ccitt.GROUP3, RTC_1D), (ccitt.GROUP3_2D, RTC_2D)])
def test_a_group3_strip_may_end_in_a_return_to_control_but_not_in_other_code(coding: str, rtc: str) -> None:
    """libtiff writes no RTC in a TIFF, other fax software does; after it only padding may follow."""
    sound = _ccitt("group3" if coding == ccitt.GROUP3 else "group3 2-D")
    offset, count = _segment(sound, 0, 0)
    strip = sound[offset:offset + count]
    bits = "".join(f"{byte:08b}" for byte in strip) + rtc
    with_rtc = int(bits.ljust(-(-len(bits) // 8) * 8, "0"), 2).to_bytes(-(-len(bits) // 8), "big")
    height, width = PRINTED_PAGE.shape
    assert ccitt.strip_damage(with_rtc, width, height, coding=coding) is None
    assert ccitt.read(with_rtc, width, height, coding=coding) == _changes(PRINTED_PAGE)
    assert ccitt.strip_damage(with_rtc + b"\x5a", width, height, coding=coding).startswith(
        f"code is left over after its {height:,} rows, in the last ")


def test_a_group3_page_whose_t4options_is_damaged_is_left_to_the_decoders() -> None:
    """Fuzzing found a T4Options entry damaged into two SHORTs, read as a pair of numbers:
    a bare TypeError, an internal error in the ledger."""
    data = bytearray(_ccitt("group3 2-D"))
    with tifffile.TiffFile(io.BytesIO(bytes(data))) as tif:
        entry = tif.pages[0].tags[292].offset  # the directory entry: tag, type, count, value
    struct.pack_into("<HI", data, entry + 2, 3, 2)  # SHORT, two of them: the LONG's four bytes read as (1, 0)
    with tifffile.TiffFile(io.BytesIO(bytes(data))) as tif:
        assert isinstance(tif.pages[0].tags[292].value, tuple)
    assert damage.in_tiff_page(bytes(data), 0) is None
    codecs.decode(bytes(data))  # decoded (or refused) by the codecs, as any damaged directory


def test_a_tiff_whose_compression_entry_holds_two_values_is_left_to_the_decoders() -> None:
    """Fuzzing found a Compression entry whose count was damaged to 2, read as (3, 0): a bare
    TypeError from the damage check (an internal error in the ledger), while libtiff reads
    the page by its first value."""
    data = bytearray(_ccitt("group3"))
    with tifffile.TiffFile(io.BytesIO(bytes(data))) as tif:
        entry = tif.pages[0].tags[259].offset  # the directory entry: tag, type, count, value
    struct.pack_into("<I", data, entry + 4, 2)  # two SHORTs, in the four bytes of the value: 3, then 0
    with tifffile.TiffFile(io.BytesIO(bytes(data))) as tif:
        assert tif.pages[0].compression == (3, 0)
    assert damage.in_tiff_page(bytes(data), 0) is None
    assert np.array_equal(codecs.decode(bytes(data)).pixels[..., 0] > 0.5, PRINTED_PAGE)


def test_a_group3_page_that_allows_the_uncompressed_mode_is_not_judged() -> None:
    """T4Options bit 1: rows may switch to the uncompressed mode, which the reader does not
    follow (nor does libtiff); judging such a page would call its sound rows damaged."""
    damaged = _zeroed_in(_ccitt("group3", {292: 2}), 0)
    assert damage.in_tiff_page(damaged, 0) is None
    assert damage.in_tiff_page(_zeroed_in(_ccitt("group3"), 0), 0) is not None


@pytest.mark.parametrize(("compression", "layout"), [
    (compression, layout) for compression in ("lzw", "zlib", "packbits", "jpeg")
    for layout in ({}, {"rowsperstrip": 7}, {"tile": (32, 32)}, {"grey": True}, {"planarconfig": "separate"})
    if not (compression == "jpeg" and layout.get("planarconfig"))  # JPEG compresses interleaved samples
], ids=str)
def test_sound_tiffs_show_no_damage(compression: str, layout: dict) -> None:
    options = dict(layout)
    image = TIFF_RGB[..., 0] if options.pop("grey", False) else TIFF_RGB
    if options.get("planarconfig") == "separate":
        image = np.ascontiguousarray((image.astype(np.uint16) * 257).transpose(2, 0, 1))  # 16-bit planes
    data = _tiff([image], compression=compression, **options)
    assert damage.in_tiff_page(data, 0) is None and codecs.decode(data).damage is None


# --- encoding refusals ---------------------------------------------------------------------


def test_16bit_cannot_be_written_as_jpeg() -> None:
    with pytest.raises(EncodeError, match="8 bits"):
        encoders.encode(np.zeros((4, 4, 3), np.float32), None, fmt="JPEG", bit_depth=16,
                        meta=ImageMetadata(), scale=1, provenance=PROV)


def test_alpha_cannot_be_written_as_jpeg() -> None:
    with pytest.raises(EncodeError, match="no alpha"):
        encoders.encode(np.zeros((4, 4, 3), np.float32), np.ones((4, 4), np.float32), fmt="JPEG",
                        bit_depth=8, meta=ImageMetadata(), scale=1, provenance=PROV)


def test_nan_pixels_are_refused() -> None:
    pixels = np.zeros((4, 4, 3), np.float32)
    pixels[1, 1, 1] = np.nan
    with pytest.raises(EncodeError, match="NaN"):
        encoders.encode(pixels, None, fmt="PNG", bit_depth=8, meta=ImageMetadata(), scale=1, provenance=PROV)


@pytest.mark.parametrize("fmt,dtype,scale", [("PNG", np.uint8, 255), ("TIFF", np.uint16, 65535)])
def test_samples_are_the_files_integers_behind_the_float_pixels(fmt: str, dtype: type, scale: int) -> None:
    rgba = (np.random.default_rng(2).random((12, 18, 4)) * scale).astype(dtype)
    buf = io.BytesIO()
    if fmt == "TIFF":
        tifffile.imwrite(buf, rgba, photometric="rgb", extrasamples=["unassalpha"])
    else:
        Image.fromarray(rgba, "RGBA").save(buf, fmt)
    as_float, as_samples = codecs.decode(buf.getvalue()), codecs.decode(buf.getvalue(), samples=True)
    assert as_samples.pixels.dtype == dtype and as_samples.alpha is not None and as_samples.alpha.dtype == dtype
    assert np.array_equal(as_samples.pixels, rgba[:, :, :3]) and np.array_equal(as_samples.alpha, rgba[:, :, 3])
    assert as_float.pixels.dtype == np.float32
    assert np.array_equal(as_float.pixels, as_samples.pixels.astype(np.float32) / scale)
    assert as_samples.bit_depth == as_float.bit_depth


def test_cmyk_samples_are_the_converted_srgb_bytes() -> None:
    buf = io.BytesIO()
    Image.fromarray(RGB8).convert("CMYK").save(buf, "JPEG", quality=98)
    as_float, as_samples = codecs.decode(buf.getvalue()), codecs.decode(buf.getvalue(), samples=True)
    assert as_samples.pixels.dtype == np.uint8
    assert np.array_equal(as_float.pixels, as_samples.pixels.astype(np.float32) / 255)
