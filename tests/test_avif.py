"""AVIF masters are read at their own depth, turned as their boxes say, in the colour their nclx box names."""
from __future__ import annotations

import io
import struct
from pathlib import Path

import imagecodecs
import numpy as np
import piexif
import heif_files
import pytest
from conftest import photo
from PIL import Image, ImageCms, ImageOps

from enhance_ops import codecs, formats, jp2_boxes
from enhance_ops.chain import icc
from enhance_ops.cli import main
from enhance_ops.errors import CorruptImageError, TruncatedImageError, UnsupportedImageError

RGB8 = (photo("astronaut", 64, top=40, left=180) * 255 + 0.5).astype(np.uint8)
RGB10 = (RGB8.astype(np.uint16) << 2) | (RGB8 >> 6)  # 10-bit samples, as a camera or an HDR-capable scanner writes


def avif(samples: np.ndarray, **options: int) -> bytes:
    return imagecodecs.avif_encode(samples, level=100, **options)  # lossless: the decoded samples are these


def test_a_ten_bit_avif_is_read_at_its_depth_in_the_colour_its_nclx_box_names() -> None:
    """Refused by name as AVIF until 2026-12-05; Pillow's reader gives 8 bits whatever the file holds."""
    decoded = codecs.decode(avif(RGB10, bitspersample=10, primaries=12, transfer=13))
    assert (decoded.format, decoded.bit_depth, decoded.bits_per_sample) == ("AVIF", 16, 10)
    assert decoded.output_format == "PNG"
    widened = (RGB10.astype(np.uint32) << 6 | RGB10 >> 4).astype(np.float32) / 65535  # 1023 → 65535, 0 → 0
    np.testing.assert_allclose(decoded.pixels, widened, atol=1e-6)
    space = icc.parse_profile(decoded.metadata.icc_profile)
    np.testing.assert_allclose(space.to_pcs, icc.SPACES["Display P3"].to_pcs, atol=1e-4)
    np.testing.assert_allclose(space.curves[0].params, icc.SRGB_CURVE.params, atol=1e-4)  # s15Fixed16
    assert decoded.notes == ["colour named by the AVIF's nclx colour box (Display P3 (SMPTE EG 432-1) primaries, sRGB "
                             "transfer) carried as an ICC profile, so the derivative displays as the master does"]


def test_an_avif_in_srgb_needs_no_profile_and_one_with_a_profile_keeps_it() -> None:
    plain = codecs.decode(avif(RGB8, primaries=1, transfer=13))
    np.testing.assert_array_equal(np.rint(plain.pixels * 255), RGB8)
    assert (plain.bit_depth, plain.metadata.icc_profile, plain.notes) == (8, None, [])
    adobe = icc.build_profile(icc.SPACES["Adobe RGB"])
    buffer = io.BytesIO()
    Image.fromarray(RGB8).save(buffer, "AVIF", quality=100, icc_profile=adobe)
    assert codecs.decode(buffer.getvalue()).metadata.icc_profile == adobe  # the profile decides, not the nclx box


def test_an_avif_is_turned_as_its_boxes_say_and_keeps_its_exif_and_xmp() -> None:
    """Pillow writes EXIF orientation 6 as the image's rotation and mirroring boxes, as AVIF wants."""
    exif = piexif.dump({"0th": {piexif.ImageIFD.Orientation: 6, piexif.ImageIFD.Make: b"Fujifilm"},
                        "Exif": {piexif.ExifIFD.DateTimeOriginal: b"1968:05:01 10:00:00"}})
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/>' \
          b"</x:xmpmeta>"
    buffer = io.BytesIO()
    Image.fromarray(RGB8[:, :48]).save(buffer, "AVIF", quality=100, exif=exif, xmp=xmp)
    decoded = codecs.decode(buffer.getvalue())
    upright = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(buffer.getvalue()))))
    assert decoded.size == (64, 48) == codecs.oriented_size(buffer.getvalue())
    np.testing.assert_array_equal(np.rint(decoded.pixels * 255), upright)
    assert decoded.metadata.exif["0th"][piexif.ImageIFD.Make] == b"Fujifilm"
    assert decoded.metadata.exif["Exif"][piexif.ExifIFD.DateTimeOriginal] == b"1968:05:01 10:00:00"
    assert decoded.metadata.xmp == xmp


@pytest.mark.parametrize("bits", [8, 12])
def test_a_grey_avif_is_grey_and_its_alpha_is_kept(bits: int) -> None:
    grey = RGB8[:, :, 1].astype(np.uint16) << 4 | RGB8[:, :, 1] >> 4 if bits == 12 else RGB8[:, :, 1]
    alpha = np.full_like(grey, grey.max())
    alpha[:8] = 0
    decoded = codecs.decode(avif(np.dstack([grey, alpha]), bitspersample=bits))
    assert decoded.pixels.shape == (64, 64, 1) and decoded.bits_per_sample == bits
    top = (1 << bits) - 1
    np.testing.assert_allclose(decoded.pixels[:, :, 0], grey / top, atol=2e-5)  # bit replication: 2048 → 32776
    np.testing.assert_allclose(decoded.alpha, alpha / top, atol=2e-5)


def test_an_hdr_avif_is_refused_by_name() -> None:
    with pytest.raises(UnsupportedImageError, match=r"^the AVIF's nclx colour box says HDR \(PQ \(SMPTE ST 2084\) "
                                                    r"transfer, code points 9/16/9/1\): HDR images are not processed"):
        codecs.decode(avif(RGB10, bitspersample=10, primaries=9, transfer=16, matrix=9))


def test_a_cut_off_or_damaged_avif_fails_by_its_own_error() -> None:
    whole = avif(RGB8)
    with pytest.raises(TruncatedImageError, match="^AVIF file ends before its header is complete"):
        codecs.decode(whole[: len(whole) // 2])
    picture = next(start for kind, start, _ in jp2_boxes.boxes(whole, 0, len(whole)) if kind == b"mdat")
    damaged = whole[:picture] + bytes(16) + whole[picture + 16:]  # the coded picture's first headers zeroed
    with pytest.raises(CorruptImageError, match=r"^AVIF pixel data cannot be decoded: .*\(Unknown OBU type 0 of size "
                                                r"\d+\)$"):
        codecs.decode(bytes(damaged))
    with pytest.raises(CorruptImageError, match="^AVIF header cannot be read"):
        codecs.decode(b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1" + bytes(200))


def test_the_command_line_writes_a_16_bit_png_that_carries_the_colour(tmp_path: Path) -> None:
    folder, out = tmp_path / "scans", tmp_path / "enhanced"
    folder.mkdir()
    (folder / "slide.avif").write_bytes(avif(RGB10, bitspersample=10, primaries=12, transfer=13))
    assert formats.is_master_name("slide.avif") and formats.format_of((folder / "slide.avif").read_bytes()) == "AVIF"
    assert main(["enhance", str(folder), str(out), "--scale", "2", "--quiet"]) == 0
    derivative = Image.open(out / "slide.png")
    assert derivative.size == (128, 128) and derivative.mode == "RGB"
    assert ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(derivative.info["icc_profile"]))) \
        .strip() == "Display P3 (SMPTE EG 432-1) primaries, sRGB transfer"
    assert codecs.decode((out / "slide.png").read_bytes()).bit_depth == 16


def sequence(*frames: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(frames[0]).save(buffer, "AVIF", save_all=True, quality=100,
                                    append_images=[Image.fromarray(f) for f in frames[1:]])
    return buffer.getvalue()


def test_an_avif_sequence_gives_its_first_frame_and_says_the_others_are_left() -> None:
    """imagecodecs asked for one frame of a sequence corrupted the heap: the process aborted."""
    data = sequence(RGB8, RGB8[::-1])
    decoded = codecs.decode(data)
    first = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    np.testing.assert_array_equal(np.rint(decoded.pixels * 255), first)
    assert np.abs(first - RGB8.astype(float)).mean() < np.abs(first - RGB8[::-1].astype(float)).mean() / 4
    assert not codecs.pages(data).complete and codecs.pages(data).notes == ("file holds 2 frames: only the first is "
                                                                            "enhanced",)


def test_a_damaged_avif_sequence_is_corrupt_not_an_internal_error() -> None:
    """Found by fuzzing: Pillow's reader raised ZeroDivisionError for a time scale of 0, and
    RuntimeError for a frame that does not decode."""
    data = bytearray(sequence(RGB8, RGB8[::-1]))
    media_header = data.index(b"mdhd")
    struct.pack_into(">I", data, media_header + 4 + 4 + (16 if data[media_header + 4] == 1 else 8), 0)  # its time scale
    with pytest.raises(CorruptImageError, match="^AVIF pixel data cannot be decoded: the sequence's time scale is 0$"):
        codecs.decode(bytes(data))
    data = sequence(RGB8, RGB8[::-1])
    picture = next(start for kind, start, _ in jp2_boxes.boxes(data, 0, len(data)) if kind == b"mdat")
    with pytest.raises(CorruptImageError, match="^AVIF pixel data cannot be decoded: Failed to decode frame 0: "):
        codecs.decode(data[:picture] + bytes(16) + data[picture + 16:])


def test_colour_stored_multiplied_by_its_alpha_comes_back_straight() -> None:
    """libavif divides premultiplied colour (a ``prem`` reference) back itself, as libheif does
    not (``test_heif``): dividing it again here would brighten every partly transparent part."""
    straight = np.full((32, 32, 3), (200, 100, 40), np.uint8)
    rgba = Image.fromarray(np.dstack([straight, np.full((32, 32), 128, np.uint8)]), "RGBA")
    buffer = io.BytesIO()
    rgba.save(buffer, "AVIF", quality=100, alpha_premultiplied=True)
    decoded = codecs.decode(buffer.getvalue(), samples=True)
    assert np.abs(decoded.pixels.astype(int) - straight).max() <= 4 and (np.abs(decoded.alpha.astype(int) - 128) <= 1).all()


def test_an_xmp_orientation_is_not_applied_the_boxes_decide() -> None:
    """The format leaves turning to its rotation and mirroring boxes, and viewers show an AVIF
    so; an XMP tiff:Orientation had turned the derivative away from the master as shown."""
    xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
           b'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="6"/></rdf:RDF></x:xmpmeta>')
    buffer = io.BytesIO()
    Image.fromarray(RGB8[:, :48]).save(buffer, "AVIF", quality=100, xmp=xmp)
    decoded = codecs.decode(buffer.getvalue())
    assert decoded.size == (48, 64) and decoded.metadata.orientation == 1
    assert decoded.notes == ["the XMP says orientation 6 (tiff:Orientation), which in an AVIF its rotation and "
                             "mirroring boxes decide instead (as viewers show it): not applied"]


def test_an_avif_is_cut_to_its_clean_aperture_before_it_is_turned_as_libheif_cuts_a_heic() -> None:
    """libavif and Pillow leave an AVIF's clean aperture (``clap``) to the caller, libheif applies
    a HEIC's: the same box gave a HEIC's derivative the part its maker meant shown and an
    AVIF's the whole coded image, margins and all."""
    exif = piexif.dump({"0th": {piexif.ImageIFD.Orientation: 6}})
    buffer = io.BytesIO()
    Image.fromarray(heif_files.PHOTO).save(buffer, "AVIF", quality=100, exif=exif)  # turned by its rotation box
    heic = heif_files.with_property(heif_files.phone(), heif_files.clean_aperture(48, 32, (10, 1), (-4, 1)))
    data = heif_files.with_property(buffer.getvalue(), heif_files.clean_aperture(48, 32, (10, 1), (-4, 1)))
    decoded = codecs.decode(data, samples=True)
    shown = np.rot90(heif_files.PHOTO[12:44, 34:82], k=-1)  # the centre 10 px right of and 4 px above the coded one's
    assert decoded.pixels.shape == (48, 32, 3) and codecs.oriented_size(data) == (32, 48)
    assert np.abs(decoded.pixels - shown.astype(float)).mean() < 3  # a pixel off is over 8 in this photograph
    assert np.abs(codecs.decode(heic, samples=True).pixels - shown.astype(float)).mean() < 3
    assert decoded.notes == ["cropped to its clean aperture (clap box), as its maker meant it shown: 48x32 at (34, 12) "
                             "of the 96x64 coded image"]


@pytest.mark.parametrize("aperture", [heif_files.clean_aperture(47, 32), heif_files.clean_aperture(200, 32),
                                      heif_files.clean_aperture(48, 32, (0, 0))],
                         ids=["half-a-pixel-off", "wider-than-the-image", "a-zero-denominator"])
def test_a_clean_aperture_that_is_not_whole_pixels_inside_the_image_is_said_and_not_applied(aperture: bytes) -> None:
    decoded = codecs.decode(heif_files.with_property(avif(RGB8[:, :48]), aperture), samples=True)
    np.testing.assert_array_equal(decoded.pixels, RGB8[:, :48])
    assert decoded.notes == ["its clean-aperture (clap) box is not whole pixels inside the 48x64 coded image (damaged, "
                             "or not meant for it): not applied, the whole coded image is enhanced"]


def test_a_clean_aperture_associated_after_the_rotation_is_said_and_not_applied() -> None:
    """MIAF has the crop come first; where it comes after the turn its rectangle is not in the
    coded image's axes, and the whole image is enhanced rather than a wrong part of it."""
    buffer = io.BytesIO()
    Image.fromarray(heif_files.PHOTO).save(buffer, "AVIF", quality=100,
                                           exif=piexif.dump({"0th": {piexif.ImageIFD.Orientation: 6}}))
    data = heif_files.with_property(buffer.getvalue(), heif_files.clean_aperture(48, 32), ahead=False)
    decoded = codecs.decode(data)
    assert decoded.size == (64, 96) == codecs.oriented_size(data)
    assert decoded.notes == ["its clean-aperture (clap) box follows its rotation or mirroring, against MIAF: not "
                             "applied, the whole 96x64 coded image is enhanced"]


def _with_alpha() -> bytes:
    """48 x 64, with an alpha, which libavif writes as an auxiliary image."""
    return avif(np.dstack([RGB8[:, :48], np.full((64, 48), 200, np.uint8)]))


@pytest.mark.parametrize(("kind", "said"), [
    (b"urn:com:apple:photo:2020:aux:hdrgainmap", "its HDR gain map is not carried: the derivative holds the "
                                                 "standard-range picture, as a display without HDR shows it"),
    (b"urn:mpeg:mpegB:cicp:systems:auxiliary:depth", "its depth map (48x64) is not carried"),
], ids=["gain-map", "depth-map"])
def test_an_image_beside_the_picture_that_the_derivative_leaves_out_is_said_as_for_a_heic(kind: bytes,
                                                                                          said: str) -> None:
    """libavif writes an alpha as an auxiliary image; retyped, it stands for the gain map or
    depth map a HEIC holds, which Pillow and libavif pass over without a word."""
    alpha = b"urn:mpeg:mpegB:cicp:systems:auxiliary:alpha"
    with_alpha = _with_alpha()
    assert with_alpha.count(alpha) == 1 and codecs.decode(with_alpha).notes == []
    decoded = codecs.decode(with_alpha.replace(alpha, kind + bytes(len(alpha) - len(kind))))
    assert decoded.alpha is None and decoded.notes == [said]


def test_an_iso_gain_map_derived_from_the_picture_is_said() -> None:
    """An ISO 21496-1 gain map (libavif 1.2 on) is a tone-map item (``tmap``) derived from the
    picture and the gain map image, which Pillow and libavif pass over. Here libavif's alpha
    item is retyped as one, its reference to the picture as a derivation."""
    with_alpha = _with_alpha()
    tone_map = with_alpha.replace(b"\x00\x02\x00\x00av01Alpha", b"\x00\x02\x00\x00tmapAlpha").replace(b"auxl", b"dimg")
    assert tone_map.count(b"tmap") == 1 and tone_map.count(b"dimg") == 1
    decoded = codecs.decode(tone_map)
    assert decoded.size == (48, 64) and decoded.notes == [
        "its HDR gain map is not carried: the derivative holds the standard-range picture, as a display without HDR "
        "shows it"]
