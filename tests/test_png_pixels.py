"""PNG pixel data written a band of rows per lane: read back exactly by libpng and Pillow,
as small as one deflate stream over the whole image and no larger than libpng's own at the
same level, however many bands and lanes."""
from __future__ import annotations

import io
import random
import zlib

import cv2
import numpy as np
import pytest
from conftest import photo
from PIL import Image
from zlib_ng import zlib_ng

from enhance_ops import png_pixels
from enhance_ops.chain import strips

ASTRONAUT = (photo("astronaut", 256) * 255 + 0.5).astype(np.uint8)
DEEP = (photo("astronaut", 256) * 65535 + 0.5).astype(np.uint16)


@pytest.fixture(params=["1", "3"])
def many_bands(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Bands of some thirty rows each (seven to ten of them on a 256-px image), in one lane or three."""
    monkeypatch.setenv(strips.LANES_VARIABLE, request.param)
    monkeypatch.setattr(strips, "STRIP_PIXELS", 30000)
    return request.param


@pytest.mark.parametrize("samples", [ASTRONAUT, ASTRONAUT[:, :, :1], np.dstack([ASTRONAUT, ASTRONAUT[:, :, 0]]),
                                     np.dstack([ASTRONAUT[:, :, 1], ASTRONAUT[:, :, 2]]), DEEP, DEEP[:, :, 2:]],
                         ids=["rgb8", "grey8", "rgba8", "grey-alpha8", "rgb16", "grey16"])
def test_libpng_reads_back_the_exact_samples(samples: np.ndarray, many_bands: str) -> None:
    png = png_pixels.encode(np.ascontiguousarray(samples))
    read = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    read = read[:, :, None] if read.ndim == 2 else read
    if read.shape[2] >= 3:
        read = read[:, :, [2, 1, 0, 3][: read.shape[2]]]  # OpenCV's BGR(A)
    if samples.shape[2] == 2:  # OpenCV reads grey + alpha as BGRA
        read = read[:, :, [0, 3]]
    np.testing.assert_array_equal(read, samples)
    if samples.dtype == np.uint8:
        np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(png))).reshape(samples.shape),
                                      samples)


def test_as_small_as_one_stream_over_the_whole_image_and_libpngs_own(many_bands: str) -> None:
    """Each band's deflate primed with the window before it: split into seven to ten bands,
    the photo compresses as one stream over all its rows does (with the priming left out,
    1.4–1.6 % larger), and libpng's, through zlib at the same level, is no smaller."""
    ours = len(png_pixels.encode(ASTRONAUT))
    rows = png_pixels._filtered(png_pixels._row_bytes(ASTRONAUT, 0, ASTRONAUT.shape[0]), False, 3)
    one_stream = len(zlib_ng.compress(rows.tobytes(), png_pixels.LEVEL)) + 57  # signature, IHDR, IDAT, IEND
    assert abs(ours - one_stream) < 0.004 * one_stream
    libpng = len(cv2.imencode(".png", ASTRONAUT[:, :, ::-1], [cv2.IMWRITE_PNG_COMPRESSION, png_pixels.LEVEL])[1])
    assert ours < 1.004 * libpng


def test_edges_one_pixel_and_one_row() -> None:
    for samples in (np.full((1, 1, 3), 7, np.uint8), np.arange(5000, dtype=np.uint16).reshape(5000, 1, 1),
                    np.arange(120000, dtype=np.uint8).reshape(1, 40000, 3)):
        read = cv2.imdecode(np.frombuffer(png_pixels.encode(samples), np.uint8), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(read.reshape(samples.shape)[..., ::-1], samples)


def test_checksums_of_joined_runs_are_zlibs() -> None:
    rng = random.Random(3)
    for _ in range(200):
        first, second = rng.randbytes(rng.randrange(0, 3000)), rng.randbytes(rng.choice([0, 1, 65521, 70000, 200000]))
        joined = png_pixels._adler32_combine(zlib.adler32(first), zlib.adler32(second), len(second))
        assert joined == zlib.adler32(first + second)
