"""Camera raw files built on TIFF (DNG, CR2, NEF, ARW, PEF …), told by their content.

Pillow opens such a file as a TIFF and finds in its first directory a small preview, while
the sensor's data lies in a sub-directory (or a later page) that no decoder here develops: a
DNG had been "enhanced" as its 48 × 32 preview and published. Such a file is refused, so the
archive develops it first.
"""
from __future__ import annotations

import io

import tifffile
from PIL import Image

DNG_VERSION, SUB_IFDS, NEW_SUBFILE_TYPE = 50706, 330, 254
_SENSOR_PHOTOMETRICS = {32803: "colour filter array", 34892: "linear raw"}
_LOOKED_AT = 8  # directories, and sub-directories of each: enough for every layout known, bounded for a damaged chain


def kind(data: bytes, im: Image.Image) -> str | None:
    """What raw format a TIFF-like file is, or None for a TIFF of pictures."""
    if DNG_VERSION in im.tag_v2:
        return "DNG"
    if data[8:10] == b"CR":
        return "Canon CR2"
    if SUB_IFDS not in im.tag_v2 and not im.tag_v2.get(NEW_SUBFILE_TYPE, 0) & 1:
        return None  # the first directory is a picture of its own, with nothing below it
    try:
        sensor = _sensor_data(data)
    except Exception:  # a damaged directory: the TIFF path names it as such
        return None
    return f"camera raw ({sensor})" if sensor else None


def _sensor_data(data: bytes) -> str | None:
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        for index, page in enumerate(tif.pages):
            if index == _LOOKED_AT:
                break
            if page.photometric in _SENSOR_PHOTOMETRICS:
                return _SENSOR_PHOTOMETRICS[page.photometric]
            for offset in (page.subifds or ())[:_LOOKED_AT]:
                tif.filehandle.seek(offset)
                photometric = tifffile.TiffPage(tif, index=0).photometric
                if photometric in _SENSOR_PHOTOMETRICS:
                    return _SENSOR_PHOTOMETRICS[photometric]
    return None
