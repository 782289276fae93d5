"""JPEG 2000 masters: every layout decoded to the right samples or refused by name, a cut-off
file called truncated, and the metadata in a JP2's boxes carried to the derivative."""
from __future__ import annotations

import io
import re
import struct

import numpy as np
import piexif
import pytest
from conftest import photo
from jp2_files import EXIF_UUID, IPTC_UUID, XMP_UUID, box, capture_resolution, codestream, jp2, palette_jp2, sycc, uuid
from PIL import Image
from test_codecs import CAPTION, PROV, XMP

from enhance_ops import codecs, encoders
from enhance_ops import derivative_metadata as dmd
from enhance_ops.chain.icc import SPACES, build_profile
from enhance_ops.errors import CorruptImageError, TruncatedImageError, UnsupportedImageError

RGB8 = (photo("astronaut", 40, top=60, left=180) * 255 + 0.5).astype(np.uint8)
RGB16 = (photo("astronaut", 40, top=60, left=180) * 65535 + 0.5).astype(np.uint16)
ADOBE_RGB = build_profile(SPACES["Adobe RGB"])


def _samples(data: bytes) -> codecs.DecodedImage:
    return codecs.decode(data, samples=True)


def _with_alpha(decoded: codecs.DecodedImage) -> np.ndarray:
    return decoded.pixels if decoded.alpha is None else np.dstack([decoded.pixels, decoded.alpha])


@pytest.mark.parametrize("samples", [RGB8, RGB16, RGB8[:, :, 1], RGB16[:, :, 0], np.dstack([RGB8, RGB8[:, :, 0]])],
                         ids=["rgb8", "rgb16", "grey8", "grey16", "rgba8"])
def test_lossless_jp2_decodes_to_its_exact_samples_and_is_written_as_png(samples: np.ndarray) -> None:
    decoded = _samples(jp2(samples))
    assert (decoded.format, decoded.output_format) == ("JPEG2000", "PNG")
    assert decoded.bit_depth == samples.dtype.itemsize * 8
    expected = samples if samples.ndim == 3 else samples[:, :, None]
    assert np.array_equal(_with_alpha(decoded), expected)
    derivative = codecs.decode(encoders.encode(*_float(decoded), fmt="PNG", bit_depth=decoded.bit_depth,
                                               meta=decoded.metadata, scale=1, provenance=PROV), samples=True)
    assert np.array_equal(_with_alpha(derivative), expected)


def _float(decoded: codecs.DecodedImage) -> tuple[np.ndarray, np.ndarray | None]:
    return codecs.to_unit(decoded.pixels), (None if decoded.alpha is None else codecs.to_unit(decoded.alpha))


def test_a_bare_codestream_decodes_as_its_jp2_does() -> None:
    assert np.array_equal(_samples(codestream(RGB8)).pixels, RGB8)


@pytest.mark.parametrize("lanes", ["1", "3"])
def test_a_lossless_jp2_decodes_exactly_on_one_thread_or_several(lanes: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """OpenJPEG decodes on as many threads as the strip lanes, its code-blocks shared among
    them; the samples are the same however many there are."""
    from enhance_ops.chain import strips

    monkeypatch.setenv(strips.LANES_VARIABLE, lanes)
    big = np.tile(RGB16, (4, 4, 1))  # 160 x 160: nine 64-px code-blocks a component at full resolution
    decoded = _samples(jp2(big, icc=ADOBE_RGB))
    assert decoded.bit_depth == 16 and np.array_equal(decoded.pixels, big)


@pytest.mark.parametrize("shape", [(40, 40), (40, 40, 3)], ids=["grey", "rgb"])
def test_12bit_samples_fill_the_16bit_range_not_a_sixteenth_of_it(shape: tuple[int, ...]) -> None:
    """OpenJPEG returns 12-bit samples as they are: read as 16-bit they would be 16 times too dark."""
    twelve = (RGB16[:, :, : shape[2]] if len(shape) == 3 else RGB16[:, :, 1]) >> 4
    twelve[0, 0], twelve[0, 1] = 0, 4095
    decoded = codecs.decode(jp2(twelve, bits=12))
    assert decoded.bit_depth == 16
    unit = (twelve / 4095).reshape(decoded.pixels.shape)
    assert np.abs(decoded.pixels - unit).max() < 2e-5
    assert (decoded.pixels.min(), decoded.pixels.max()) == (0.0, 1.0)


def test_sycc_palette_and_grey_with_alpha_come_out_as_they_look() -> None:
    """The layouts OpenCV decodes wrongly (sYCC with video coefficients, a palette as grey) or
    not at all (grey with alpha)."""
    as_sycc = _samples(jp2(sycc(RGB8), colour=18, mct=False))
    assert np.abs(as_sycc.pixels.astype(int) - RGB8).max() <= 2  # the sYCC samples were rounded to 8 bits

    palette = np.array([[12, 20, 31], [201, 11, 9], [8, 199, 14], [250, 248, 240]], np.uint8)
    indices = (RGB8[:, :, 0] // 64).astype(np.uint8)
    assert np.array_equal(_samples(palette_jp2(indices, palette)).pixels, palette[indices])

    grey_alpha = _samples(jp2(np.dstack([RGB8[:, :, 1], RGB8[:, :, 2]])))
    assert np.array_equal(grey_alpha.pixels[:, :, 0], RGB8[:, :, 1])
    assert np.array_equal(grey_alpha.alpha, RGB8[:, :, 2])

    deep = codecs.decode(jp2(np.dstack([RGB16[:, :, 1], RGB16[:, :, 2]])))
    assert deep.bit_depth == 8 and any("read at 8 bits" in note for note in deep.notes)


EXIF = {
    "0th": {piexif.ImageIFD.Make: b"Phase One", piexif.ImageIFD.Orientation: 6},
    "Exif": {piexif.ExifIFD.DateTimeOriginal: b"1931:07:14 09:30:00"},
    "GPS": {piexif.GPSIFD.GPSLatitudeRef: b"N", piexif.GPSIFD.GPSLatitude: ((53, 1), (33, 1), (0, 1))},
}


def _described_jp2(exif_header: bytes = b"") -> bytes:
    after = (uuid(XMP_UUID, XMP) + uuid(EXIF_UUID, exif_header + piexif.dump(EXIF)[6:])
             + uuid(IPTC_UUID, CAPTION))
    return jp2(RGB16[:, :30], icc=ADOBE_RGB, header=capture_resolution((400, 400)), after=after)


@pytest.mark.parametrize("exif_header", [b"", b"Exif\x00\x00"], ids=["tiff", "exif-prefixed"])
def test_a_jp2s_boxes_travel_to_the_derivative_and_its_pixels_stay_in_their_colour_space(exif_header: bytes) -> None:
    data = _described_jp2(exif_header)
    decoded = codecs.decode(data, samples=True)
    meta = decoded.metadata
    assert (meta.icc_profile, meta.xmp, meta.iptc) == (ADOBE_RGB, XMP, CAPTION)
    assert meta.dpi == pytest.approx((400, 400), abs=0.01)
    assert meta.exif["GPS"][piexif.GPSIFD.GPSLatitude] == ((53, 1), (33, 1), (0, 1))
    # orientation 6: turned upright, and the Adobe RGB samples are not converted through their profile
    assert codecs.oriented_size(data) == (40, 30) and np.array_equal(decoded.pixels, np.rot90(RGB16[:, :30], -1))

    fitted, notes = dmd.fitted_to(meta, "PNG")
    assert notes == []  # the IPTC records as ImageMagick's raw profile text: they had been left out
    out = encoders.encode(codecs.to_unit(decoded.pixels), None, fmt="PNG", bit_depth=16, meta=fitted, scale=2,
                          provenance=PROV)
    im = Image.open(io.BytesIO(out))
    assert im.info["icc_profile"] == ADOBE_RGB and im.info["XML:com.adobe.xmp"].encode() == XMP
    assert im.info["dpi"] == pytest.approx((800, 800), abs=0.1)
    exif = piexif.load(im.info["exif"])
    assert exif["0th"][piexif.ImageIFD.Make] == b"Phase One" and exif["0th"][piexif.ImageIFD.Orientation] == 1
    assert exif["Exif"][piexif.ExifIFD.DateTimeOriginal] == b"1931:07:14 09:30:00"
    assert exif["GPS"][piexif.GPSIFD.GPSLatitudeRef] == b"N"
    assert codecs.decode(out).metadata.iptc == CAPTION


def _cut(data: bytes, at: int) -> bytes:
    return data[:at]


def _unsized_codestream_box() -> bytes:
    """The codestream box with length 0 (to the end of the file), as some writers leave it."""
    whole = jp2(RGB8)
    start = whole.index(b"jp2c") - 4
    return whole[:start] + struct.pack(">I", 0) + whole[start + 4 :]


@pytest.mark.parametrize("data", [
    _cut(jp2(RGB8), len(jp2(RGB8)) * 2 // 3),  # the codestream box declares more than is there
    _cut(_unsized_codestream_box(), len(jp2(RGB8)) * 2 // 3),  # the file just ends: no end-of-codestream marker
    _cut(codestream(RGB8), len(codestream(RGB8)) - 40),  # a bare codestream cut short
    _cut(jp2(RGB8), 40),  # inside the header boxes
], ids=["sized-box", "unsized-box", "bare", "header"])
def test_a_cut_off_jpeg_2000_is_called_truncated(data: bytes) -> None:
    with pytest.raises(TruncatedImageError, match="truncated"):
        codecs.decode(data)


def test_an_unsized_codestream_box_that_is_whole_decodes() -> None:
    assert np.array_equal(_samples(_unsized_codestream_box()).pixels, RGB8)


def _subsampled() -> bytes:
    """4:2:0 chroma: the second and third components' XRsiz/YRsiz set to 2 in the SIZ marker."""
    stream = bytearray(codestream(RGB8))
    for component in (1, 2):
        at = 4 + 38 + 3 * component
        stream[at + 1 : at + 3] = b"\x02\x02"
    return jp2(RGB8, stream=bytes(stream))


@pytest.mark.parametrize("data, named", [
    (jp2(RGB16.astype(np.int16) // 2), "signed samples"),
    (jp2(RGB8[:, :, 0] >> 4, bits=4), "4-bit samples"),
    (jp2(np.dstack([RGB8] * 2)), "6 components"),
    (_subsampled(), "subsampled components"),
    (jp2(RGB8, colour=14), "colour space 14 (CIELab)"),
], ids=["signed", "4-bit", "6-components", "subsampled", "cielab"])
def test_layouts_not_processed_are_refused_by_name_not_called_damaged(data: bytes, named: str) -> None:
    with pytest.raises(UnsupportedImageError, match=re.escape(named)):
        codecs.decode(data)


def test_a_jpx_without_a_codestream_box_is_refused_as_such() -> None:
    whole = jp2(RGB8)
    fragments = whole[: whole.index(b"jp2c") - 4] + box(b"ftbl", box(b"flst", struct.pack(">H", 0)))
    with pytest.raises(UnsupportedImageError, match="contiguous codestream"):
        codecs.decode(fragments)


def test_a_box_that_cannot_be_walked_is_called_damaged() -> None:
    whole = jp2(RGB8)
    at = whole.index(b"jp2c") - 4
    damaged = whole[:at] + struct.pack(">I4s", 3, b"uuid") + whole[at:]
    with pytest.raises(CorruptImageError, match="declares 3 bytes"):
        codecs.decode(damaged)


def test_a_codestream_larger_than_its_header_says_is_refused_before_decoding() -> None:
    """The pixel limit is checked against the header's size: a codestream declaring more
    (a damaged or crafted file) is refused before OpenJPEG allocates for it."""
    stream = bytearray(codestream(RGB8))
    struct.pack_into(">II", stream, 8, 20_000, 20_000)  # SIZ's Xsiz, Ysiz: 400 Mpx behind a 40 × 40 header
    with pytest.raises(CorruptImageError, match="codestream declares 20000x20000"):
        codecs.decode(jp2(RGB8, stream=bytes(stream)), max_pixels=10_000)


def test_decoding_a_jp2_with_its_profile_prints_nothing(capfd: pytest.CaptureFixture[str]) -> None:
    """OpenCV would warn on stderr that it assumes sRGB, in the middle of a progress bar or a
    task log, though the profile is carried."""
    codecs.decode(jp2(RGB8, icc=ADOBE_RGB))
    assert capfd.readouterr().err == ""
