"""Netpbm masters (PBM, PGM, PPM), as SANE's scanimage writes them by default: every
kind read at its full range, a damaged or cut-off one refused by name, and one enhanced end to end."""
from __future__ import annotations

import io

import numpy as np
import pytest
from conftest import photo
from hostile_corpus import netpbm
from PIL import Image

from enhance_ops import codecs, formats
from enhance_ops.enhance import EnhanceOptions, Enhancer
from enhance_ops.errors import CorruptImageError, NotAnImageError, TruncatedImageError, UnsupportedImageError

def grey_photo() -> np.ndarray:
    """A 48 × 64 crop of scikit-image's coffee, grey, float in [0, 1]."""
    rgb = photo("coffee", 64, top=120, left=200)
    return rgb.mean(axis=2)[:, :48]


def test_netpbm_files_are_masters_by_name_and_by_content() -> None:
    for name in ("scan.pgm", "scan.ppm", "scan.pbm", "scan.pnm"):
        assert formats.is_master_name(name)
    assert "PPM" in formats.READ_FORMATS
    assert all(formats.format_of(b"P%d\n" % kind) == "PPM" for kind in range(1, 7))


def test_a_12_bit_pgm_is_spread_over_16_bits_not_left_sixteen_times_too_dark() -> None:
    """A 12-bit scan kept at its depth (maxval 4095, as ImageMagick's -depth 12 writes one):
    OpenCV gave its white as 4095/65535."""
    codes = np.rint(grey_photo() * 4095).astype(np.uint16)
    codes[0, :2] = (4095, 0)
    decoded = codecs.decode(netpbm(5, codes, 4095))
    assert decoded.format == "PPM" and decoded.bit_depth == 16 and decoded.pixels.shape == (64, 48, 1)
    assert decoded.pixels[0, 0, 0] == 1.0 and decoded.pixels[0, 1, 0] == 0.0
    np.testing.assert_allclose(decoded.pixels[..., 0], codes / 4095, atol=1 / 65535)
    assert decoded.output_format == "PNG" and decoded.metadata.dpi is None


@pytest.mark.parametrize("kind", [5, 6], ids=["PGM", "PPM"])
def test_a_16_bit_file_keeps_every_bit_pillow_would_cut_to_eight(kind: int) -> None:
    """A 16-bit PGM, as ``scanimage --depth 16`` writes a grey scan, was read as 8-bit samples,
    half its bytes, garbled: Pillow's raw reader of maxval 65535 names no maxval."""
    codes = np.rint((photo("coffee", 40) if kind == 6 else grey_photo()) * 65535).astype(np.uint16)
    decoded = codecs.decode(netpbm(kind, codes, 65535))
    assert decoded.bit_depth == 16 and decoded.bits_per_sample == 16
    np.testing.assert_array_equal(np.rint(decoded.pixels * 65535).astype(np.uint16).squeeze(), codes)


def test_an_8_bit_pgm_and_ppm_written_by_pillow_read_as_pillow_reads_them() -> None:
    for samples in (grey_photo(), photo("coffee", 40)):
        image = Image.fromarray((samples * 255).astype(np.uint8))
        buffer = io.BytesIO()
        image.save(buffer, "PPM")
        decoded = codecs.decode(buffer.getvalue())
        assert decoded.bit_depth == 8
        np.testing.assert_array_equal(np.rint(decoded.pixels * 255).astype(np.uint8).squeeze(), np.asarray(image))


def test_a_maxval_that_is_no_power_of_two_is_scaled_exactly() -> None:
    decoded = codecs.decode(netpbm(5, np.array([[0, 50, 100, 33]], np.uint8), 100))
    assert decoded.bit_depth == 8
    np.testing.assert_array_equal(np.rint(decoded.pixels[0, :, 0] * 255), [0, 128, 255, 84])
    wide = codecs.decode(netpbm(5, np.array([[0, 500, 1000]], np.uint16), 1000))
    assert wide.bit_depth == 16 and wide.pixels[0, 1, 0] == pytest.approx(0.5, abs=1 / 65535)


def test_a_plain_file_reads_as_its_binary_twin() -> None:
    """Plain (ASCII) PGM and PPM at maxval 15 and 1000: OpenCV scaled the one and not the other."""
    for maxval in (15, 1000):
        grey = np.rint(grey_photo() * maxval).astype(np.uint16)
        colour = np.rint(photo("coffee", 16) * maxval).astype(np.uint16)
        np.testing.assert_array_equal(codecs.decode(netpbm(2, grey, maxval)).pixels,
                                      codecs.decode(netpbm(5, grey, maxval)).pixels)
        np.testing.assert_array_equal(codecs.decode(netpbm(3, colour, maxval)).pixels,
                                      codecs.decode(netpbm(6, colour, maxval)).pixels)


def test_a_bitmap_reads_one_as_black_binary_or_plain_with_its_digits_run_together() -> None:
    ink = (grey_photo() < 0.4).astype(np.uint8)
    expected = (1 - ink).astype(np.float32)
    np.testing.assert_array_equal(codecs.decode(netpbm(4, ink, None)).pixels[..., 0], expected)
    run_together = b"P1\n48 64\n" + b"".join(b"".join(b"%d" % v for v in row) + b"\n" for row in ink)
    decoded = codecs.decode(run_together)
    assert decoded.bit_depth == 8
    np.testing.assert_array_equal(decoded.pixels[..., 0], expected)


def test_a_sample_past_maxval_is_clipped_to_white() -> None:
    decoded = codecs.decode(netpbm(5, np.array([[4095, 4096, 65535]], np.uint16), 4095))
    np.testing.assert_array_equal(decoded.pixels[0, :, 0], [1.0, 1.0, 1.0])


@pytest.mark.parametrize(("data", "error", "message"), [
    (netpbm(6, np.zeros((64, 48, 3), np.uint8), 255)[:-100], TruncatedImageError, "PPM pixel data is incomplete"),
    (netpbm(5, np.zeros((64, 48), np.uint16), 4095)[:-1], TruncatedImageError, "PPM pixel data is incomplete"),
    (netpbm(2, np.zeros((64, 48), np.uint8), 255)[:-40], TruncatedImageError, "PPM pixel data is incomplete"),
    (b"P5\n# SANE data follows\n48 6", TruncatedImageError, "PPM file ends before its header is complete"),
    (b"P2\n2 2\n255\n1 2 x 4\n", CorruptImageError, "something other than sample values"),
    (b"P2\n2 2\n255\n1 2 -3 4\n", CorruptImageError, "something other than sample values"),
    (b"P3\n1 1\n255\n1 2.5 3\n", CorruptImageError, "something other than sample values"),
    (b"P5\n-3 10\n255\n", CorruptImageError, "PPM header cannot be read: no reader takes its values$"),
    (b"P5\n10 10\n0\n" + bytes(100), CorruptImageError, "maxval must be greater than 0"),
    (b"P2\n2 1\n65535\n1 70000\n", CorruptImageError, "past 65535"),
    (b"Pf\n2 1\n-1.0\n" + bytes(8), UnsupportedImageError, "float32 samples are not processed"),
    (b"P7\nWIDTH 2\nHEIGHT 1\nDEPTH 1\nMAXVAL 255\nTUPLTYPE GRAYSCALE\nENDHDR\n\x01\x02", UnsupportedImageError,
     "PAM .* not processed"),
    (b"P9\n2 1\n255\n\x00\x00", NotAnImageError, "not a recognised image file"),
])
def test_a_damaged_netpbm_file_is_refused_by_name(data: bytes, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        codecs.decode(data)


def test_a_12_bit_pgm_scan_is_enhanced_into_a_16_bit_png() -> None:
    codes = np.rint(grey_photo() * 4095).astype(np.uint16)
    result = Enhancer(EnhanceOptions(preset="fidelity", overrides=("superres.scale=2", "superres.models=[]"))
                      ).enhance(netpbm(5, codes, 4095))
    derivative = codecs.decode(result.data)
    assert result.format == "PNG" and derivative.bit_depth == 16 and derivative.pixels.shape == (128, 96, 1)
    assert abs(float(derivative.pixels.mean()) - float((codes / 4095).mean())) < 0.01
