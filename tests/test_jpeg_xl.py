"""A JPEG XL that recompresses a JPEG without loss is read as that JPEG; one encoded as such is named."""
from __future__ import annotations

import io
import json
from pathlib import Path

import imagecodecs
import numpy as np
import piexif
import pytest
from conftest import photo
from PIL import Image, ImageCms

from enhance_ops import codecs
from enhance_ops.cli import main
from enhance_ops.errors import CorruptImageError, UnsupportedImageError

RGB8 = (photo("chelsea", 48, top=40, left=150) * 255 + 0.5).astype(np.uint8)
SRGB_ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
EXIF = piexif.dump({"0th": {piexif.ImageIFD.Make: b"Nikon", piexif.ImageIFD.Orientation: 6},
                    "Exif": {piexif.ExifIFD.DateTimeOriginal: b"1974:08:09 11:30:00"}})


def camera_jpeg() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(RGB8[:, :40]).save(buf, "JPEG", quality=90, exif=EXIF, icc_profile=SRGB_ICC)
    return buf.getvalue()


def test_a_recompressed_jpeg_is_read_as_the_jpeg_it_was() -> None:
    """cjxl's default for a JPEG: refused as JPEG XL until 2026-12-05."""
    jpeg = camera_jpeg()
    jxl = imagecodecs.jpegxl_encode_jpeg(jpeg)
    assert len(jxl) < len(jpeg)
    from_jxl, from_jpeg = codecs.decode(jxl), codecs.decode(jpeg)
    np.testing.assert_array_equal(from_jxl.pixels, from_jpeg.pixels)  # turned upright (orientation 6) alike
    assert from_jxl.metadata == from_jpeg.metadata and from_jxl.output_format == "JPEG"
    assert from_jxl.notes == ["a JPEG XL holding a JPEG recompressed without loss: read as that JPEG, restored bit "
                              "for bit", *from_jpeg.notes]
    assert codecs.oriented_size(jxl) == (48, 40) and codecs.pages(jxl).frames == (0,)


def test_a_jpeg_xl_encoded_as_such_is_named_and_a_damaged_one_is_corrupt() -> None:
    native = imagecodecs.jpegxl_encode(RGB8, level=90)
    with pytest.raises(UnsupportedImageError, match=r"^JPEG XL \(encoded as such, not a JPEG recompressed without "
                                                     r"loss\) images are not processed; convert to PNG or TIFF$"):
        codecs.decode(native)
    cut = imagecodecs.jpegxl_encode_jpeg(camera_jpeg())[:-200]
    with pytest.raises(CorruptImageError, match="^JPEG XL holding a recompressed JPEG cannot be restored to it: "):
        codecs.decode(cut)


def test_the_command_line_writes_a_jpeg_for_a_jpeg_xl(tmp_path: Path) -> None:
    folder, out = tmp_path / "scans", tmp_path / "enhanced"
    folder.mkdir()
    (folder / "film.jxl").write_bytes(imagecodecs.jpegxl_encode_jpeg(camera_jpeg()))
    assert main(["enhance", str(folder), str(out), "--scale", "2", "--quiet"]) == 0
    derivative = Image.open(out / "film.jpg")
    assert (derivative.format, derivative.size) == ("JPEG", (96, 80))
    assert derivative.getexif().get_ifd(0x8769)[piexif.ExifIFD.DateTimeOriginal] == "1974:08:09 11:30:00"
    assert derivative.info["icc_profile"] == SRGB_ICC
    assert json.loads((out / "film.jpg.json").read_text())["notes"][0].startswith("a JPEG XL holding a JPEG")


def test_a_masters_size_pages_and_pixels_are_read_from_one_restoring(monkeypatch: pytest.MonkeyPatch) -> None:
    """A shard reads each of them from the same bytes: the JPEG was restored three times over."""
    from enhance_ops import jpeg_xl

    jxl, calls = imagecodecs.jpegxl_encode_jpeg(camera_jpeg()), []
    real = imagecodecs.jpegxl_decode_jpeg
    monkeypatch.setattr(imagecodecs, "jpegxl_decode_jpeg", lambda data: calls.append(1) or real(data))
    jpeg_xl.restored.cache_clear()
    codecs.oriented_size(jxl), codecs.pages(jxl), codecs.decode(jxl)
    assert len(calls) == 1
