"""GeoTIFF georeferencing, carried to a TIFF derivative and told its new pixel grid.

A scanned map's GeoTIFF tags place its pixels on the earth: ModelPixelScale gives a pixel's
size in model units, ModelTiepoint ties raster points to model points, or
ModelTransformation does both. piexif knows none of them, so an enhanced map lost its
georeferencing (with a note). Enlarged, the same extent holds more pixels: each is smaller
by the factor, and a raster point moves to its coordinates times the factor, counted from
the grid's corner (PixelIsArea, the default) or from the first pixel's centre
(PixelIsPoint). The GeoKey directory and its parameters, and GDAL's metadata and no-data
value, describe the model and the values, and are carried as they are.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tifffile

PIXEL_SCALE, TIEPOINT, TRANSFORMATION = 33550, 33922, 34264
KEY_DIRECTORY, DOUBLE_PARAMS, ASCII_PARAMS = 34735, 34736, 34737
GDAL_METADATA, GDAL_NODATA = 42112, 42113
TAGS = {PIXEL_SCALE: "d", TIEPOINT: "d", TRANSFORMATION: "d", KEY_DIRECTORY: "H", DOUBLE_PARAMS: "d",
        ASCII_PARAMS: "s", GDAL_METADATA: "s", GDAL_NODATA: "s"}  # code → the type it is written in
_NAMES = {PIXEL_SCALE: "ModelPixelScale", TIEPOINT: "ModelTiepoint", TRANSFORMATION: "ModelTransformation",
          KEY_DIRECTORY: "GeoKeyDirectory"}
_RASTER_TYPE_KEY, _PIXEL_IS_POINT = 1025, 2
_GROUPS = {PIXEL_SCALE: 3, TIEPOINT: 6, TRANSFORMATION: 16, KEY_DIRECTORY: 4}  # values come in groups of

Value = tuple[float, ...] | tuple[int, ...] | bytes


@dataclass(frozen=True)
class Georeference:
    values: dict[int, Value]  # tag code → its values; ASCII as the file's bytes

    def resampled(self, before: tuple[int, int], after: tuple[int, int]) -> Georeference:
        """The same extent on a grid of ``after`` (width, height) pixels instead of ``before``."""
        kx, ky = after[0] / before[0], after[1] / before[1]
        c = 0.5 if self._pixel_is_point() else 0.0
        values = dict(self.values)
        if PIXEL_SCALE in values:
            sx, sy, *rest = values[PIXEL_SCALE]
            values[PIXEL_SCALE] = (sx / kx, sy / ky, *rest)
        if TIEPOINT in values:
            points = np.asarray(values[TIEPOINT], float).reshape(-1, 6)
            points[:, 0] = (points[:, 0] + c) * kx - c
            points[:, 1] = (points[:, 1] + c) * ky - c
            values[TIEPOINT] = tuple(points.ravel().tolist())
        if TRANSFORMATION in values:  # model = M · (i, j, k, 1), and i = (i' + c) / kx - c
            m = np.asarray(values[TRANSFORMATION], float).reshape(4, 4)
            moved = m.copy()
            moved[:, 0], moved[:, 1] = m[:, 0] / kx, m[:, 1] / ky
            moved[:, 3] += m[:, 0] * (c / kx - c) + m[:, 1] * (c / ky - c)
            values[TRANSFORMATION] = tuple(moved.ravel().tolist())
        return Georeference(values)

    def _pixel_is_point(self) -> bool:
        keys = self.values.get(KEY_DIRECTORY, ())
        for at in range(4, len(keys) - 3, 4):  # after the header, entries of (key, location, count, value)
            if keys[at] == _RASTER_TYPE_KEY and keys[at + 1] == 0:
                return keys[at + 3] == _PIXEL_IS_POINT
        return False

    def extratags(self) -> list[tuple[int, str, int, Value, bool]]:
        """As ``tifffile.TiffWriter.write`` takes them."""
        return [(code, TAGS[code], 0 if TAGS[code] == "s" else len(value), value, True)
                for code, value in sorted(self.values.items())]


def read(page: tifffile.TiffPage) -> tuple[Georeference | None, list[str]]:
    """A page's georeferencing, and a note where its tags are malformed (not carried then:
    scaled wrongly, they would put the derivative in the wrong place)."""
    values: dict[int, Value] = {}
    for code, kind in TAGS.items():
        tag = page.tags.get(code)
        if tag is None:
            continue
        if kind == "s":
            values[code] = tag.value.encode("latin-1", "replace") if isinstance(tag.value, str) else bytes(tag.value)
        else:
            values[code] = tuple(np.asarray(tag.value).ravel().tolist())
    if not values.keys() & _GROUPS.keys():
        return None, []
    malformed = [_NAMES[code] for code, group in _GROUPS.items() if code in values and (
        not values[code] or len(values[code]) % group or code == TRANSFORMATION and len(values[code]) != group)]
    if malformed:
        return None, [f"GeoTIFF georeferencing not carried: {', '.join(malformed)} malformed"]
    return Georeference(values), []
