"""HEIC masters (a phone's photographs) are read upright, at their own depth, in their own colour."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import piexif
import pillow_heif
import pytest
from heif_files import PHOTO, burst, phone, ten_bit, thumbnailed, with_companion
from PIL import Image, ImageCms

from enhance_ops import codecs, formats, heif_boxes, orientation
from enhance_ops.chain import icc
from enhance_ops.cli import main
from enhance_ops.errors import CorruptImageError, TruncatedImageError, UnsupportedImageError

def test_a_phone_photograph_is_read_upright_with_its_profile_exif_and_xmp() -> None:
    """Refused by name as HEIF until 2026-12-05. The rotation box turns it, as the format says;
    the EXIF orientation (6 here, as phones write it beside the box) is not applied again."""
    data = phone()
    decoded = codecs.decode(data, samples=True)
    assert (decoded.format, decoded.size, decoded.bit_depth, decoded.output_format) == ("HEIF", (64, 96), 8, "PNG")
    assert codecs.oriented_size(data) == (64, 96)
    upright = np.rot90(PHOTO, -1).astype(int)
    assert np.abs(decoded.pixels.astype(int) - upright).mean() < 3  # quality 90, 4:2:0
    assert decoded.metadata.icc_profile == icc.build_profile(icc.SPACES["Display P3"]) and decoded.notes == []
    zeroth, exif = decoded.metadata.exif["0th"], decoded.metadata.exif["Exif"]
    assert (zeroth[piexif.ImageIFD.Make], zeroth[piexif.ImageIFD.Orientation]) == (b"Apple", 1)
    assert exif[piexif.ExifIFD.DateTimeOriginal] == b"2021:06:05 14:03:11"
    assert b"Moon suit, donated 2021" in decoded.metadata.xmp


@pytest.mark.parametrize("fmt", ["HEIF", "AVIF"])
@pytest.mark.parametrize("turn", range(1, 9))
def test_rotation_and_mirroring_boxes_are_read_as_the_exif_orientation_they_were_written_for(fmt: str,
                                                                                          turn: int) -> None:
    """libheif and libavif write an EXIF orientation as boxes (two ways for a transpose), and
    turn the pixels by them as they decode; the orientation they amount to is what turns the
    values counted along the stored pixels' axes."""
    buf = io.BytesIO()
    Image.fromarray(PHOTO).save(buf, fmt, exif=piexif.dump({"0th": {piexif.ImageIFD.Orientation: turn}}), quality=90)
    data = buf.getvalue()
    assert heif_boxes.read(data).turn == turn
    decoded = codecs.decode(data, samples=True)
    assert np.abs(decoded.pixels.astype(int) - orientation.upright(PHOTO, turn)).mean() < 3
    assert decoded.metadata.stored_turn == turn


def test_a_heics_resolution_is_turned_with_its_pixels_by_its_rotation_box() -> None:
    """The EXIF's resolution counts along the stored axes; libheif turns the pixels and
    pillow-heif says orientation 1, so a fax-like 204 x 98 dpi had stayed unturned."""
    exif = piexif.dump({"0th": {piexif.ImageIFD.Orientation: 6, piexif.ImageIFD.XResolution: (204, 1),
                                piexif.ImageIFD.YResolution: (98, 1), piexif.ImageIFD.ResolutionUnit: 2}})
    buf = io.BytesIO()
    Image.fromarray(PHOTO).save(buf, "HEIF", exif=exif, quality=90)
    decoded = codecs.decode(buf.getvalue())
    assert decoded.size == (64, 96) and decoded.metadata.orientation == 1
    assert decoded.metadata.dpi == (98, 204)


def test_a_ten_bit_heic_is_read_at_its_depth_in_the_colour_its_nclx_box_names() -> None:
    decoded = codecs.decode(ten_bit(9, 1, 9), samples=True)
    assert (decoded.bit_depth, decoded.bits_per_sample) == (16, 10)
    ten = PHOTO.astype(np.uint16) << 2 | PHOTO >> 6
    assert np.abs((decoded.pixels >> 6).astype(int) - ten).max() <= 1  # lossless but for the YCbCr matrix's rounding
    assert decoded.pixels.max() & 0x3F == decoded.pixels.max() >> 10  # spread over 16 bits, not shifted up
    space = icc.parse_profile(decoded.metadata.icc_profile)
    assert space.name == "BT.2020 primaries, BT.709 transfer"
    assert decoded.notes == ["colour named by the HEIF's nclx colour box (BT.2020 primaries, BT.709 transfer) "
                             "carried as an ICC profile, so the derivative displays as the master does"]


def test_an_hdr_heic_is_refused_by_name() -> None:
    with pytest.raises(UnsupportedImageError, match=r"^the HEIF's nclx colour box says HDR \(PQ \(SMPTE ST 2084\)"):
        codecs.decode(ten_bit(9, 16, 9))


@pytest.mark.parametrize("primary", [0, 1])
def test_a_burst_gives_its_primary_image_and_says_the_other_is_left(primary: int) -> None:
    data = burst(primary)
    decoded = codecs.decode(data, samples=True)
    assert np.abs(decoded.pixels.astype(int) - (PHOTO, PHOTO[::-1])[primary]).mean() < 3
    pages = codecs.pages(data)
    assert pages.notes == ("file holds 2 images: only its primary one is enhanced",) and not pages.complete


def test_a_cut_off_or_damaged_heic_fails_by_its_own_error() -> None:
    data = phone()
    with pytest.raises(TruncatedImageError, match="^HEIF pixel data is incomplete"):  # libheif decodes it garbled
        codecs.decode(data[:-100])
    picture = data.index(b"mdat") + 4
    with pytest.raises(CorruptImageError, match="^HEIF pixel data cannot be decoded: Invalid input: .*NAL unit "
                                                "size is invalid"):
        codecs.decode(data[:picture] + bytes(16) + data[picture + 16:])


def test_the_command_line_writes_a_png_that_carries_the_profile(tmp_path: Path) -> None:
    folder, out = tmp_path / "donations", tmp_path / "enhanced"
    folder.mkdir()
    (folder / "IMG_0412.HEIC").write_bytes(phone())
    assert formats.is_master_name("IMG_0412.HEIC") and formats.format_of(phone()) == "HEIF"
    assert main(["enhance", str(folder), str(out), "--scale", "2", "--quiet"]) == 0
    derivative = Image.open(out / "IMG_0412.png")
    assert derivative.size == (128, 192)
    assert ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(derivative.info["icc_profile"]))) \
        .strip() == "Display P3"
    assert derivative.getexif()[piexif.ImageIFD.Make] == "Apple"


@pytest.mark.parametrize(("brands", "named"), [(b"heic" + b"\0" * 4 + b"mif1heic", "HEIF"),
                                               (b"mif1" + b"\0" * 4 + b"mif1miafMA1B", "HEIF"),
                                               (b"mif1" + b"\0" * 4 + b"mif1avifmiaf", "AVIF"),
                                               (b"avis" + b"\0" * 4 + b"avismsf1", "AVIF")])
def test_an_iso_base_media_file_is_told_by_its_brands(brands: bytes, named: str) -> None:
    """An AVIF whose major brand names only the image file format is told by its compatible
    brands; a damaged file of either is corrupt, no longer refused by name."""
    head = (8 + len(brands)).to_bytes(4, "big") + b"ftyp" + brands
    assert formats.format_of(head) == named
    with pytest.raises(CorruptImageError, match=f"^{named} header cannot be read"):
        codecs.decode(head + bytes(200))


def test_colour_stored_multiplied_by_its_alpha_is_divided_back() -> None:
    """A HEIC whose alpha is premultiplied (a ``prem`` reference) darkened wherever it was
    partly transparent, as every derivative holds straight alpha."""
    straight = np.full((32, 32, 3), (200, 100, 40), np.uint8)
    alpha = np.full((32, 32, 1), 128, np.uint8)
    heif = pillow_heif.from_pillow(Image.fromarray(np.dstack([(straight * (128 / 255)).round().astype(np.uint8),
                                                              alpha]), "RGBA"))
    heif.premultiplied_alpha = True
    buffer = io.BytesIO()
    heif.save(buffer, quality=-1, chroma=444)
    decoded = codecs.decode(buffer.getvalue(), samples=True)
    assert np.abs(decoded.pixels.astype(int) - straight).max() <= 3 and (decoded.alpha == 128).all()


@pytest.mark.parametrize(("kind", "said"), [
    (b"urn:com:apple:photo:2020:aux:hdrgainmap", "its HDR gain map is not carried: the derivative holds the "
                                                 "standard-range picture, as a display without HDR shows it"),
    (b"urn:mpeg:hevc:2015:auxid:2", "its depth map (32x20) is not carried"),
    (b"urn:com:apple:photo:2018:aux:portraiteffectsmatte",
     "its auxiliary image (urn:com:apple:photo:2018:aux:portraiteffectsmatte) is not carried"),
], ids=["gain-map", "depth-map", "matte"])
def test_an_image_beside_the_photograph_that_the_derivative_leaves_out_is_said(kind: bytes, said: str) -> None:
    """An iPhone's HEIC holds an HDR gain map (iOS 14.1 on), a portrait's a depth map and mattes:
    the derivative, a PNG of the primary image, had dropped them without a word."""
    decoded = codecs.decode(with_companion(kind))
    assert decoded.size == (96, 64) and decoded.alpha is None
    assert decoded.notes == [said]


def test_an_alpha_image_beside_the_photograph_is_its_alpha_and_a_thumbnail_goes_unsaid() -> None:
    decoded = codecs.decode(with_companion(b"urn:mpeg:mpegB:cicp:systems:auxiliary:alpha"))
    assert decoded.alpha is not None and decoded.notes == []
    assert codecs.decode(thumbnailed()).notes == []
