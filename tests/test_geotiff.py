"""A scanned map's GeoTIFF georeferencing, carried to its enlarged derivative and still true."""
from __future__ import annotations

import io

import numpy as np
import pytest
import tifffile
from conftest import photo

from enhance_ops import codecs
from enhance_ops.enhance import EnhanceOptions, Enhancer

MAP = (photo("coffee", 48) * 255 + 0.5).astype(np.uint8)[:, :40]  # 40 × 48: not square, so x and y are told apart
UTM_33N = (1, 1, 0, 3, 1024, 0, 1, 1, 1025, 0, 1, 1, 3072, 0, 1, 32633)  # projected, PixelIsArea, EPSG:32633
TIE = (10.0, 20.0, 0.0, 500_000.0, 4_649_776.0, 0.0)  # raster point (10, 20) at this easting and northing


def _map(geo: list[tuple[int, str, int, object, bool]], orientation: int = 1) -> bytes:
    buf = io.BytesIO()
    tifffile.imwrite(buf, MAP, photometric="rgb", metadata=None,
                     extratags=[*geo, (274, "H", 1, orientation, True), (42113, "s", 0, "0", True)])
    return buf.getvalue()


def _enhanced(master: bytes, fmt: str | None = None, *settings: str) -> tuple[bytes, list[str]]:
    result = Enhancer(EnhanceOptions(preset="fidelity", overrides=("superres.scale=2", "superres.models=[]", *settings),
                                     output_format=fmt)).enhance(master)
    return result.data, result.record["notes"]


def _model(tags: dict[int, tuple], raster: np.ndarray) -> np.ndarray:
    """Model (x, y) of raster points (i, j), as a GeoTIFF reader computes them."""
    if 34264 in tags:
        m = np.asarray(tags[34264]).reshape(4, 4)
        return (np.c_[raster, np.zeros(len(raster)), np.ones(len(raster))] @ m.T)[:, :2]
    scale, tie = tags[33550], tags[33922]
    return np.c_[tie[3] + (raster[:, 0] - tie[0]) * scale[0], tie[4] - (raster[:, 1] - tie[1]) * scale[1]]


def _tags(data: bytes) -> dict[int, tuple]:
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        return {tag.code: tag.value for tag in tif.pages[0].tags}


@pytest.mark.parametrize("raster_type, transformation", [(1, False), (2, False), (1, True), (2, True)],
                         ids=["area, tiepoint", "point, tiepoint", "area, matrix", "point, matrix"])
def test_an_enlarged_maps_pixels_stay_where_they_were_on_the_earth(raster_type: int, transformation: bool) -> None:
    """The GeoTIFF tags were left out (piexif knows none of them), so an enhanced map lost its
    place. Each pixel of the derivative at x2 is half the size, and any point of the map has
    the same model coordinates before and after, counted from the grid's corner for
    PixelIsArea and from the first pixel's centre for PixelIsPoint."""
    keys = UTM_33N[:11] + (raster_type,) + UTM_33N[12:]
    if transformation:  # 0.5 m pixels, turned a little, as a georeferenced scan of a skewed sheet is
        matrix = (0.49, 0.05, 0.0, 500_000.0, 0.05, -0.49, 0.0, 4_649_776.0, 0, 0, 0, 0, 0, 0, 0, 1.0)
        geo = [(34264, "d", 16, matrix, True)]
    else:
        geo = [(33550, "d", 3, (0.5, 0.5, 0.0), True), (33922, "d", 6, TIE, True)]
    master = _map([*geo, (34735, "H", len(keys), keys, True), (34737, "s", 0, "WGS 84 / UTM zone 33N|", True)])
    derivative, notes = _enhanced(master)
    before, after = _tags(master), _tags(derivative)
    assert codecs.decode(derivative).size == (80, 96) and not any("Geo" in note or "Model" in note for note in notes)
    assert after[34735] == keys and after[34737] == "WGS 84 / UTM zone 33N|" and after[42113] == "0"
    places = np.array([[0, 0], [40, 0], [0, 48], [40, 48], [12.5, 7.25]])  # the sheet's corners and a point on it
    c = 0.5 if raster_type == 2 else 0.0  # in pixels from its corner; PixelIsPoint counts from the first's centre
    np.testing.assert_allclose(_model(after, places * 2 - c), _model(before, places - c), atol=1e-6)
    if not transformation:
        assert after[33550] == (0.25, 0.25, 0.0)


def test_georeferencing_that_no_longer_fits_the_pixels_is_left_out_and_said() -> None:
    geo = [(33550, "d", 3, (0.5, 0.5, 0.0), True), (33922, "d", 6, TIE, True), (34735, "H", 16, UTM_33N, True)]
    derivative, notes = _enhanced(_map(geo, orientation=6))
    assert 33550 not in _tags(derivative)
    assert ("GeoTIFF georeferencing not carried: the master is stored turned (EXIF orientation 6) and the "
            "derivative upright") in notes
    _, notes = _enhanced(_map(geo), None, "lens.enabled=true", "lens.k1=-0.08")
    assert "GeoTIFF georeferencing not carried: lens distortion correction moved the pixels" in notes
    _, notes = _enhanced(_map(geo), "PNG")
    assert "GeoTIFF georeferencing not carried: PNG has no place for it" in notes
    derivative, notes = _enhanced(_map([(33922, "d", 5, TIE[:5], True), (34735, "H", 16, UTM_33N, True)]))
    assert 33922 not in _tags(derivative) and "GeoTIFF georeferencing not carried: ModelTiepoint malformed" in notes


def test_a_jp2_maps_geojp2_georeferencing_is_read_and_carried_to_a_tiff() -> None:
    """A JP2 of a map sheet places it with GeoJP2: a 1 x 1 GeoTIFF in a uuid box, whose tags
    apply to the JP2's own pixels. It was passed over without a word; now its derivative in
    TIFF carries it, told the new grid, and one in PNG (a JP2's by default) names it left out."""
    import jp2_files

    scale, keys = (0.5, 0.5, 0.0), UTM_33N
    carrier = io.BytesIO()
    tifffile.imwrite(carrier, np.zeros((1, 1), np.uint8), metadata=None, extratags=[
        (33550, "d", 3, scale, True), (33922, "d", 6, TIE, True), (34735, "H", len(keys), keys, True)])
    geojp2 = bytes.fromhex("b14bf8bd083d4b43a5ae8cd7d5a6ce03")
    master = jp2_files.jp2(MAP, after=jp2_files.uuid(geojp2, carrier.getvalue()))
    derivative, notes = _enhanced(master, "TIFF")
    after = _tags(derivative)
    assert after[33550] == (0.25, 0.25, 0.0) and after[33922] == (20.0, 40.0, 0.0, *TIE[3:]) and after[34735] == keys
    assert not any("Geo" in note for note in notes)
    _, notes = _enhanced(master)
    assert "GeoTIFF georeferencing not carried: PNG has no place for it" in notes
    gml = jp2_files.box(b"asoc", jp2_files.box(b"lbl ", b"gml.data") + jp2_files.box(b"asoc", b""))
    _, notes = _enhanced(jp2_files.jp2(MAP, after=gml))
    assert "GMLJP2 georeferencing (GML in an association box) not carried: it is not read" in notes
