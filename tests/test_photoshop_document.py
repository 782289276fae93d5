"""Photoshop masters (PSD, PSB) are read for their merged image, at 8 or 16 bits, with the
metadata their resources hold; what is not read is refused by name.

The documents are ImageMagick's (``photoshop_files``), and copies of them changed where it
writes no such file; the expected pixels are the ones ImageMagick was given."""
from __future__ import annotations

import io
import struct

import numpy as np
import piexif
import pytest
from colour_files import cmyk_profile
from conftest import photo
from PIL import Image, ImageCms
from photoshop_files import layout, raw_planes, row_zeroed, version_info, with_planes, with_resources, written

from enhance_ops import codecs, formats, photoshop_document
from enhance_ops.chain.icc import SPACES, build_profile
from enhance_ops.enhance import EnhanceOptions, Enhancer
from enhance_ops.errors import CorruptImageError, ImageTooLargeError, TruncatedImageError, UnsupportedImageError
from enhance_ops.photoshop_resources import IPTC, Resource

RGB8 = (photo("astronaut")[100:148, 180:244] * 255 + 0.5).astype(np.uint8)  # 64 x 48
RGB16 = RGB8.astype(np.uint16) * 256 + np.random.default_rng(7).integers(0, 256, RGB8.shape, dtype=np.uint16)
GREY8 = RGB8.mean(axis=2).astype(np.uint8)
CAPTION = b"\x1c\x02\x78\x00\x10Harbour, c. 1930"  # IPTC 2:120, the caption
XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
       b'<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/" dc:source="Box 12, folder 3"/>'
       b"</rdf:RDF></x:xmpmeta>")


def test_photoshop_files_are_masters_by_name_and_by_content() -> None:
    """They had been listed only to fail as unsupported."""
    assert formats.is_master_name("retouched.psd") and formats.is_master_name("PANORAMA.PSB")
    assert formats.format_of(written(RGB8)[:formats.HEAD_BYTES]) == "PSD"
    assert formats.format_of(written(RGB8, kind="PSB")[:formats.HEAD_BYTES]) == "PSD"


@pytest.mark.parametrize("kind", ["PSD", "PSB"])
@pytest.mark.parametrize("compression", ["None", "RLE"])
@pytest.mark.parametrize("source", [RGB8, RGB16, GREY8], ids=["rgb8", "rgb16", "grey8"])
def test_the_merged_image_is_read_sample_for_sample(kind: str, compression: str, source: np.ndarray) -> None:
    """Pillow read none of the 16-bit ones (a production master's usual depth) and no PSB."""
    data = written(source, "-compress", compression, kind=kind)
    decoded = codecs.decode(data, samples=True)
    assert np.array_equal(decoded.pixels, source.reshape(*source.shape[:2], -1))
    assert decoded.alpha is None and decoded.format == "PSD" and decoded.output_format == "PNG"
    assert decoded.bit_depth == decoded.bits_per_sample == source.dtype.itemsize * 8
    assert codecs.pages(data).frames == (0,)  # one page: the layers are not frames, as Pillow had them


@pytest.mark.parametrize("compression", [2, 3])
@pytest.mark.parametrize("source", [RGB8, RGB16], ids=["rgb8", "rgb16"])
def test_a_deflated_merged_image_is_read_with_or_without_prediction(compression: int, source: np.ndarray) -> None:
    data = written(source, "-compress", "None")
    depth = source.dtype.itemsize * 8
    deflated = with_planes(data, raw_planes(data), compression, depth)
    assert np.array_equal(codecs.decode(deflated, samples=True).pixels, source)


def test_cmyk_is_converted_to_srgb_through_its_profile_at_its_depth() -> None:
    """Photoshop stores CMYK as inverted ink (0 the most); 8-bit documents read as Pillow
    reads them, 16-bit ones at 16 bits, and an embedded press profile is used."""
    eight = written(RGB8, "-colorspace", "CMYK", "-depth", "8", "-compress", "RLE")
    decoded = codecs.decode(eight, samples=True)
    pillow = np.asarray(Image.open(io.BytesIO(eight)).convert("RGB"))  # the naive conversion
    assert decoded.pixels.dtype == np.uint8 and np.abs(decoded.pixels.astype(int) - pillow).max() <= 1
    assert "CMYK converted to sRGB naively, without an ICC profile" in decoded.notes
    sixteen = codecs.decode(written(RGB16, "-colorspace", "CMYK", "-depth", "16"), samples=True)
    assert sixteen.bit_depth == 16 and np.abs(sixteen.pixels / 257 - RGB16 / 257).max() <= 1.5
    profiled = codecs.decode(with_resources(eight, Resource(1039, b"\x00\x00", cmyk_profile(5))), samples=True)
    assert "CMYK converted to sRGB through the embedded ICC profile" in profiled.notes
    through = ImageCms.profileToProfile(Image.open(io.BytesIO(eight)), ImageCms.ImageCmsProfile(io.BytesIO(
        cmyk_profile(5))), ImageCms.createProfile("sRGB"), outputMode="RGB")
    assert np.abs(profiled.pixels.astype(int) - np.asarray(through)).max() <= 1


def test_a_palette_reads_as_its_colours_and_its_transparent_index_as_alpha() -> None:
    data = written(RGB8, "-colors", "16", "-type", "Palette")
    indices = np.asarray(Image.open(io.BytesIO(data)))
    decoded = codecs.decode(data, samples=True)
    assert np.array_equal(decoded.pixels, np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))
    assert decoded.alpha is None
    keyed = codecs.decode(with_resources(data, Resource(1047, b"\x00\x00", struct.pack(">H", indices[0, 0]))),
                          samples=True)
    assert np.array_equal(keyed.alpha == 0, indices == indices[0, 0]) and keyed.alpha.max() == 255


def test_a_bitmap_reads_one_as_black() -> None:
    """Pillow reads a bitmap document as its negative."""
    bilevel = np.where(GREY8 > 110, 255, 0).astype(np.uint8)
    data = written(bilevel, "-monochrome", "-depth", "1")
    assert struct.unpack_from(">HH", data, 22) == (1, 0)  # 1 bit, colour mode bitmap
    decoded = codecs.decode(data, samples=True)
    assert np.array_equal(decoded.pixels[:, :, 0], bilevel) and decoded.bits_per_sample == 1


def _rgba(alpha_low: int = 128) -> tuple[np.ndarray, bytes]:
    """A document with transparency whose merged colour is matted on white, as Photoshop
    stores it (ImageMagick stores it unmatted)."""
    alpha = np.linspace(alpha_low, 255, RGB8.shape[1]).round().astype(np.uint8)[None, :].repeat(RGB8.shape[0], 0)
    source = np.dstack([RGB8, alpha])
    data = written(source, "-compress", "None")
    planes = raw_planes(data)
    a = alpha.astype(np.float64)
    planes[:3] = np.rint(np.moveaxis(RGB8, 2, 0) * a / 255 + 255 - a)
    return source, with_planes(data, planes)


def test_transparency_is_read_and_the_colour_taken_off_its_white_matte() -> None:
    """Left matted, every half-transparent edge would have come out paler by what shows of
    the white behind it."""
    source, data = _rgba()
    decoded = codecs.decode(data, samples=True)
    assert np.array_equal(decoded.alpha, source[:, :, 3])
    assert np.abs(decoded.pixels.astype(int) - RGB8).max() <= 1


def test_a_saved_channel_past_the_colour_is_not_taken_for_transparency() -> None:
    """The first channel past the colour is the merged image's transparency only where the
    layer count is negative; otherwise it is a saved selection or mask, which is noted."""
    _, data = _rgba()
    _, resources_end, *_ = layout(data)
    count_at = resources_end + 8  # after the section's length and the layer info's
    assert struct.unpack_from(">h", data, count_at)[0] == -1
    saved = data[:count_at] + struct.pack(">h", 1) + data[count_at + 2:]
    decoded = codecs.decode(saved, samples=True)
    assert decoded.alpha is None and decoded.pixels.shape[2] == 3
    assert "1 saved channel(s) of the PSD (selections, masks or spot colours) not carried" in decoded.notes


def test_a_16_bit_documents_layers_are_found_in_their_tagged_block() -> None:
    """Photoshop keeps a 16-bit document's layers in an Lr16 block after an empty layer info;
    its layer count says whether the merged image has transparency."""
    layers = b"\xff\xfe" + bytes(40)  # two layers, the merged image transparent
    section = struct.pack(">I", 0) + struct.pack(">I", 0) + b"8BIMLr16" + struct.pack(">I", len(layers)) + layers
    assert photoshop_document._layer_count(section, 1) == -2
    wide = struct.pack(">Q", 0) + struct.pack(">I", 0) + b"8BIMLr16" + struct.pack(">Q", len(layers)) + layers
    assert photoshop_document._layer_count(wide, 2) == -2  # a PSB's long length


def test_metadata_in_the_resources_travels_to_the_derivative() -> None:
    adobe = build_profile(SPACES["Adobe RGB"])
    exif = piexif.dump({"0th": {piexif.ImageIFD.Make: b"Hasselblad"},
                        "Exif": {piexif.ExifIFD.DateTimeOriginal: b"1931:06:02 09:00:00"}})[6:]  # no "Exif\0\0"
    data = with_resources(written(RGB16, "-density", "600", "-units", "PixelsPerInch"),
                          Resource(1039, b"\x00\x00", adobe), Resource(1058, b"\x00\x00", exif),
                          Resource(1060, b"\x00\x00", XMP), Resource(IPTC, b"\x00\x00", CAPTION),
                          Resource(0x040A, b"\x00\x00", b"\x01"))  # copyright status: copyrighted
    master = codecs.decode(data)
    assert master.metadata.dpi == (600.0, 600.0) and master.metadata.icc_profile == adobe
    assert master.metadata.iptc == CAPTION and [r.ident for r in master.metadata.photoshop] == [0x040A]
    result = Enhancer(EnhanceOptions(preset="fidelity", overrides=("superres.scale=2", "superres.models=[]"))
                      ).enhance(data)
    derivative = codecs.decode(result.data)
    assert result.format == "PNG" and derivative.bit_depth == 16 and derivative.size == (128, 96)
    assert derivative.metadata.exif["0th"][piexif.ImageIFD.Make] == b"Hasselblad"
    assert derivative.metadata.icc_profile == adobe and b"Box 12, folder 3" in derivative.metadata.xmp
    assert derivative.metadata.iptc == CAPTION
    assert derivative.metadata.dpi == pytest.approx((1200, 1200), abs=0.01)  # a PNG's is per metre
    assert any("layer not carried: the merged image" in note for note in result.record["notes"])


def _header(data: bytes, **fields: int) -> bytes:
    """``data`` with header fields set: channels, height, width, depth, mode, version."""
    at = {"version": (4, ">H"), "channels": (12, ">H"), "height": (14, ">I"), "width": (18, ">I"),
          "depth": (22, ">H"), "mode": (24, ">H")}
    changed = bytearray(data)
    for name, value in fields.items():
        struct.pack_into(at[name][1], changed, at[name][0], value)
    return bytes(changed)


@pytest.mark.parametrize("change, message", [
    (dict(mode=9), r"^PSD in Lab colour is not processed; save it as a TIFF, which keeps Lab$"),
    (dict(mode=7), r"^PSD in multichannel colour is not processed; convert it to RGB or greyscale$"),
    (dict(depth=32), r"^PSD of 32-bit \(float\) samples is not processed"),
])
def test_what_is_not_read_is_refused_by_name(change: dict[str, int], message: str) -> None:
    with pytest.raises(UnsupportedImageError, match=message):
        codecs.decode(_header(written(RGB8), **change))


def test_a_document_saved_without_its_merged_image_is_refused_not_read_blank() -> None:
    """Without "Maximize Compatibility" Photoshop leaves the merged image white or empty: a
    blank derivative would have been published."""
    data = written(RGB8)
    assert codecs.decode(with_resources(data, version_info(merged=True))).size == (64, 48)
    with pytest.raises(UnsupportedImageError, match=r"saved without \"Maximize Compatibility\" holds no merged image"):
        codecs.decode(with_resources(data, version_info(merged=False)))


def _rle_counts_damaged(data: bytes) -> bytes:
    _, _, image_data, _, _ = layout(data)
    changed = bytearray(data)
    struct.pack_into(">H", changed, image_data + 2, 1)  # the first row's packed length
    return bytes(changed)


@pytest.mark.parametrize("damage, error, message", [
    (lambda d: d[:20], TruncatedImageError, "^PSD file ends before its header is complete"),
    (lambda d: d[:layout(d)[1] - 10], TruncatedImageError, "^PSD file ends before its header is complete"),
    (lambda d: d[:-500], TruncatedImageError, "^PSD pixel data is incomplete"),
    (_rle_counts_damaged, CorruptImageError, r"^PSD's run-length data is damaged \(channel 1: 4\d of 48 rows decode"),
    (lambda d: _header(d, version=3), CorruptImageError, r"^Photoshop header declares version 3"),
    (lambda d: _header(d, channels=0), CorruptImageError, "which no Photoshop document holds"),
    (lambda d: _header(d, depth=8, mode=0), CorruptImageError, "which no Photoshop document holds"),
    (lambda d: d[:layout(d)[2]] + b"\x00\x07" + d[layout(d)[2] + 2:], CorruptImageError, "declares compression 7"),
])
def test_a_damaged_document_is_refused_by_name(damage, error: type[Exception], message: str) -> None:
    data = with_resources(written(RGB8, "-compress", "RLE"), Resource(1039, b"\x00\x00", build_profile(SPACES["sRGB"])))
    with pytest.raises(error, match=message):
        codecs.decode(damage(data))


def test_a_damaged_row_is_decoded_past_and_the_master_held_for_review() -> None:
    """PackBits carries no checksum, but a damaged row decodes to the wrong length: the whole
    master had been refused as corrupt. Now the other rows are read, the damaged one as far as
    it decodes, and the damage is named, as for a TIFF's strips, so the derivative is held."""
    data = written(RGB8, "-compress", "RLE")
    zeroed = row_zeroed(data, 1, 10)  # a run of zeros in the green channel's 11th row
    decoded = codecs.decode(zeroed, samples=True)
    assert decoded.damage.startswith("channel 2: 1 of 48 rows decode to the wrong length, the first row 11 to ")
    assert f"the PSD's pixel data is damaged ({decoded.damage})" in " ".join(decoded.notes)
    wrong = np.argwhere(decoded.pixels != RGB8)
    assert len(wrong) and set(wrong[:, 0]) == {10} and set(wrong[:, 2]) == {1}  # that row of that channel alone
    assert codecs.decode(data).damage is None


def test_a_cut_off_deflated_image_is_truncated_and_a_short_one_corrupt() -> None:
    data = written(RGB8, "-compress", "None")
    planes = raw_planes(data)
    with pytest.raises(TruncatedImageError, match="^PSD pixel data is incomplete"):
        codecs.decode(with_planes(data, planes, 2)[:-200])
    with pytest.raises(CorruptImageError, match="deflated merged image ends after"):
        codecs.decode(with_planes(data, planes[:, :40], 2))


def test_a_huge_declared_size_is_refused_before_anything_is_allocated() -> None:
    data = _header(written(RGB8, kind="PSB"), width=300_000, height=300_000)
    with pytest.raises(ImageTooLargeError, match="300000x300000"):
        codecs.decode(data)
    assert codecs.pages(data).sample_bytes == 300_000 * 300_000 * 3  # listed from the header alone
