"""Colour named by H.273 code points (a PNG's cICP chunk) is read as the profile it names, and HDR is refused."""
from __future__ import annotations

import io

import numpy as np
import pytest
from conftest import photo
from PIL import Image, ImageCms

from enhance_ops import cicp, codecs, png_chunks
from enhance_ops.chain import icc
from enhance_ops.errors import UnsupportedImageError

RGB8 = (photo("coffee", 32, top=100, left=200) * 255 + 0.5).astype(np.uint8)
ADOBE = icc.build_profile(icc.SPACES["Adobe RGB"])


def png(samples: np.ndarray, points: tuple[int, int, int, int] | None, **options: object) -> bytes:
    """A PNG with a cICP chunk right after its header, where the specification puts it."""
    buffer = io.BytesIO()
    Image.fromarray(samples).save(buffer, "PNG", **options)
    data = buffer.getvalue()
    return data if points is None else data[:33] + png_chunks.chunk(b"cICP", bytes(points)) + data[33:]


def test_a_display_p3_png_told_by_cicp_carries_that_colour() -> None:
    """Read as sRGB until 2026-12-05: Pillow reads no cICP chunk, and the colours lost their saturation."""
    decoded = codecs.decode(png(RGB8, (12, 13, 0, 1)))
    space = icc.parse_profile(decoded.metadata.icc_profile)
    np.testing.assert_allclose(space.to_pcs, icc.SPACES["Display P3"].to_pcs, atol=1e-4)
    assert decoded.notes == ["colour named by the PNG's cICP chunk (Display P3 (SMPTE EG 432-1) primaries, sRGB "
                             "transfer) carried as an ICC profile, so the derivative displays as the master does"]


def test_cicp_decides_over_an_iccp_profile_as_the_specification_says() -> None:
    decoded = codecs.decode(png(RGB8, (1, 13, 0, 1), icc_profile=ADOBE))
    assert decoded.metadata.icc_profile is None  # sRGB
    assert decoded.notes == ["the PNG's cICP chunk decides its colour over its iCCP profile, as the PNG "
                             "specification says: that profile is not carried"]
    assert codecs.decode(png(RGB8, None, icc_profile=ADOBE)).metadata.icc_profile == ADOBE


def test_a_cicp_chunk_naming_a_matrix_is_damaged_and_the_other_colour_chunks_decide() -> None:
    decoded = codecs.decode(png(RGB8, (12, 13, 1, 1), icc_profile=ADOBE))
    assert decoded.metadata.icc_profile == ADOBE
    assert decoded.notes == ["the PNG's cICP chunk names matrix coefficients 1, which RGB samples do not have: the "
                             "chunk is damaged and was not read"]


@pytest.mark.parametrize(("points", "refusal"), [
    ((9, 16, 0, 1), r"^the PNG's cICP chunk says HDR \(PQ \(SMPTE ST 2084\) transfer, code points 9/16/0/1\): HDR "
                    r"images are not processed; the chain and its derivatives are SDR$"),
    ((9, 18, 0, 1), r"HDR \(HLG \(ARIB STD-B67\) transfer"),
    ((1, 13, 0, 0), r"^the PNG's cICP chunk says its samples are narrow-range \(video levels\), which is not "
                    r"processed"),
    ((1, 17, 0, 1), r"^the PNG's cICP chunk names transfer characteristics 17 \(code points 1/17/0/1\), which are not "
                    r"processed"),
    ((10, 13, 0, 1), r"names colour primaries 10 "),
])
def test_what_is_not_processed_is_refused_by_name(points: tuple[int, int, int, int], refusal: str) -> None:
    with pytest.raises(UnsupportedImageError, match=refusal):
        codecs.decode(png(RGB8, points))


def test_a_linear_grey_png_gets_a_linear_grey_profile() -> None:
    grey = RGB8[:, :, 0]
    decoded = codecs.decode(png(grey, (1, 8, 0, 1)))
    profile = ImageCms.ImageCmsProfile(io.BytesIO(decoded.metadata.icc_profile))
    assert (profile.profile.xcolor_space, ImageCms.getProfileDescription(profile).strip()) == ("GRAY", "linear grey")
    assert codecs.decode(png(grey, (1, 13, 0, 1))).metadata.icc_profile is None


def test_the_bt709_profile_is_read_by_littlecms_as_bt709() -> None:
    """Mid-grey 128 in BT.709's curve is 26.1 % light (((128 / 255 + 0.099) / 1.099)^(1 / 0.45)),
    which sRGB stores as 140: LittleCMS, reading the profile built from the code points, agrees."""
    profile = cicp.profile(cicp.CodePoints(1, 1, 0, True), grey=False, source="a test")
    ramp = np.repeat(np.arange(0, 256, 8, dtype=np.uint8)[None, :, None], 3, axis=2)
    transform = ImageCms.buildTransform(ImageCms.ImageCmsProfile(io.BytesIO(profile)), ImageCms.createProfile("sRGB"),
                                        "RGB", "RGB")
    by_lcms = np.asarray(ImageCms.applyTransform(Image.fromarray(ramp), transform), dtype=np.float32)
    ours = icc.convert(ramp / np.float32(255), icc.parse_profile(profile), icc.SPACES["sRGB"])[0] * 255
    np.testing.assert_allclose(by_lcms, ours, atol=1.5)
    assert round(float(ours[0, 16, 1])) == 140 and ramp[0, 16, 1] == 128
