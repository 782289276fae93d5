"""Files in formats the pipeline does not read are refused by name, and a camera raw is never
enhanced as the preview it opens with."""
from __future__ import annotations

import io

import numpy as np
import pytest
import tifffile
from conftest import photo
from hostile_corpus import tiff_raw

from enhance_ops import codecs
from enhance_ops.enhance import EnhanceOptions, Enhancer
from enhance_ops.errors import UnsupportedImageError

PREVIEW = (photo("coffee", 48)[:32] * 255).astype(np.uint8)

@pytest.mark.parametrize(("data", "named"), [
    (tiff_raw(PREVIEW, [(50706, "B", 4, (1, 4, 0, 0), True)]), "DNG is not processed"),
    (tiff_raw(PREVIEW, [], header=b"CR"), "Canon CR2 is not processed"),
    (tiff_raw(PREVIEW, [(271, "s", 0, "NIKON CORPORATION", True)]),
     r"camera raw \(colour filter array\) is not processed"),
])
def test_a_tiff_based_raw_is_refused_not_enhanced_as_its_preview(data: bytes, named: str) -> None:
    """A DNG had been "enhanced" as its 48 × 32 preview, into a derivative held as complete."""
    with pytest.raises(UnsupportedImageError, match=named + ": its first image is a preview"):
        codecs.decode(data)
    with pytest.raises(UnsupportedImageError, match=named):
        Enhancer(EnhanceOptions(preset="fidelity", overrides=("superres.scale=2", "superres.models=[]"))).enhance(data)


def test_a_tiff_with_reduced_copies_in_sub_directories_is_still_a_picture() -> None:
    """A pyramid keeps its smaller levels as sub-directories, as a raw keeps its sensor data."""
    picture = (photo("coffee", 48) * 255).astype(np.uint8)
    buffer = io.BytesIO()
    with tifffile.TiffWriter(buffer) as tif:
        tif.write(picture, photometric="rgb", subifds=1)
        tif.write(picture[::2, ::2], photometric="rgb", subfiletype=1)
    decoded = codecs.decode(buffer.getvalue())
    np.testing.assert_array_equal(np.rint(decoded.pixels * 255), picture)


@pytest.mark.parametrize(("head", "named"), [
    (b"\x00\x00\x00\x18ftypcrx \x00\x00\x00\x01crx isom",
     r"Canon CR3 \(camera raw\) images are not processed; develop"),
    (b"FUJIFILMCCD-RAW 0201FF383501", r"Fujifilm RAF \(camera raw\)"),
    (b"IIRO\x08\x00\x00\x00", r"Olympus ORF \(camera raw\)"),
    (b"IIU\x00\x08\x00\x00\x00", r"Panasonic RW2 \(camera raw\)"),
    (b"\xff\x0a\xfa\x7f", "JPEG XL"),
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n\x00\x00\x00\x14ftypjxl ", "JPEG XL"),
    (b"AT&TFORM\x00\x00\x10\x00DJVM", "DjVu images are not processed"),  # a scanned book
    (b"II\xbc\x01\x08\x00\x00\x00", "JPEG XR images are not processed"),
    (b"v/1\x01\x02\x00\x00\x00", "OpenEXR images are not processed"),
])
def test_a_file_in_a_format_not_read_is_named_not_called_no_image(head: bytes, named: str) -> None:
    """Each had been "not a recognised image file", as a letter named .jpg is."""
    with pytest.raises(UnsupportedImageError, match=named):
        codecs.decode(head + bytes(200))
