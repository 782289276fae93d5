"""A master scanned at two resolutions (a fax at 204 × 98 dpi) gets a derivative with square pixels."""
from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import tifffile
from PIL import Image
from skimage import data as skdata

from enhance_ops.chain.pixel_aspect import SQUARE, stretch_for, stretched
from enhance_ops.cli import main

FAX_ROWS = (skdata.page() > 128)[::2]  # a page of print at half its rows, as standard-mode fax scans it


@pytest.mark.parametrize(("dpi", "stretch"), [
    ((204, 98), (1.0, 204 / 98)),  # standard-mode fax: rows twice as far apart
    ((98, 204), (204 / 98, 1.0)),  # the same page turned
    ((204, 196), SQUARE),  # fine-mode fax, 4 % apart: left as it is
    ((300, 300), SQUARE), (None, SQUARE), ((0, 98), SQUARE),
    ((72, 300), SQUARE),  # no scanner's: a tagging error, left as it is
])
def test_the_coarser_axis_is_stretched_to_the_finer_resolution(dpi: tuple[float, float] | None,
                                                                stretch: tuple[float, float]) -> None:
    assert stretch_for(dpi) == pytest.approx(stretch)


def test_a_stretch_keeps_the_image_in_range_and_its_alpha_plane_two_dimensional() -> None:
    steps = np.tile(np.repeat([0.0, 1.0], 4), (6, 1)).astype(np.float32)  # hard steps that bicubic overshoots
    assert stretched(steps[..., None], (1.0, 2.0)).shape == (12, 8, 1)
    wide = stretched(steps, (2.0, 1.0))
    assert wide.shape == (6, 16) and wide.min() >= 0.0 and wide.max() <= 1.0


def _enhance(tmp_path: Path, source: Path, *options: str) -> tuple[Image.Image, dict]:
    out, ledger = tmp_path / "out", tmp_path / "ledger"
    assert main(["enhance", str(source), str(out), "--scale", "2", "--quiet", "--ledger", str(ledger), *options]) == 0
    [part] = ledger.rglob("*.parquet")
    [row] = pq.read_table(part).to_pylist()
    return Image.open(out / source.name), row


def test_a_standard_mode_fax_comes_out_with_square_pixels_and_passes_the_gate(tmp_path: Path) -> None:
    """Its derivative had kept pixels twice as tall as wide (816 × 392 dpi at x4): right in a
    viewer that reads the tags, a page squashed to half its height in a browser and the report."""
    source = tmp_path / "fax.tif"
    Image.fromarray(FAX_ROWS).save(source, compression="group3", dpi=(204, 98))
    derivative, row = _enhance(tmp_path, source)
    height, width = FAX_ROWS.shape
    assert derivative.size == (2 * width, round(2 * height * 204 / 98)) == (row["output_width"], row["output_height"])
    assert derivative.info["dpi"] == pytest.approx((408, 408))
    assert row["verdict"] == "passed" and row["failed_expectations"] == []
    stage = next(s for s in json.loads(row["stages_json"]) if s["stage"] == "square_pixels")
    assert stage["decision"] == "rows stretched x2.082 to square pixels (master at 204 x 98 dpi)"
    assert stage["details"]["stretch"] == pytest.approx([1.0, 204 / 98])


@pytest.mark.parametrize("fmt", ["TIFF", "JPEG"])
def test_a_fax_stored_sideways_comes_out_as_the_same_fax_upright(tmp_path: Path, fmt: str) -> None:
    """Stored a quarter turn round (Orientation 6), its resolution tags count along the stored
    axes: 98 x 204 dpi there is 204 x 98 upright. They had been kept as stored once the pixels
    were turned, so the columns were stretched instead of the rows: a page 4.3 times too wide
    for its height."""
    source = tmp_path / f"fax.{fmt.lower()}"
    exif = Image.Exif()
    exif[0x0112] = 6  # turn right to view
    Image.fromarray(np.rot90(FAX_ROWS).astype(np.uint8) * 255).save(source, fmt, dpi=(98, 204), exif=exif)
    derivative, row = _enhance(tmp_path, source)
    height, width = FAX_ROWS.shape
    assert derivative.size == (2 * width, round(2 * height * 204 / 98))
    assert derivative.info["dpi"] == pytest.approx((408, 408), abs=0.5)
    stage = next(s for s in json.loads(row["stages_json"]) if s["stage"] == "square_pixels")
    assert stage["decision"] == "rows stretched x2.082 to square pixels (master at 204 x 98 dpi)"


def _without_a_unit(source: Path, fmt: str) -> None:
    """The fax page saved with densities 204 x 98 that name no unit, as some fax gateways and
    frame grabbers write them: JFIF unit 0, PNG pHYs unit 0, TIFF ResolutionUnit 1."""
    page = FAX_ROWS.astype(np.uint8) * 255
    if fmt == "TIFF":
        tifffile.imwrite(source, page, resolution=(204, 98), resolutionunit="NONE")
        return
    buffer = io.BytesIO()
    Image.fromarray(page).save(buffer, fmt, dpi=(204, 98))
    data = bytearray(buffer.getvalue())
    if fmt == "JPEG":
        data[data.index(b"JFIF\x00") + 7] = 0  # the APP0's units byte, after the version
    else:
        at = data.index(b"pHYs")
        data[at + 4:at + 13] = struct.pack(">IIB", 204, 98, 0)
        data[at + 13:at + 17] = struct.pack(">I", zlib.crc32(bytes(data[at:at + 13])))
    source.write_bytes(bytes(data))


@pytest.mark.parametrize("fmt", ["TIFF", "JPEG", "PNG"])
def test_a_pixel_aspect_given_without_a_unit_is_made_square_too(tmp_path: Path, fmt: str) -> None:
    """Densities without a unit say how square the pixels are and nothing of their size; they
    had been read as no resolution at all, so such a fax kept its half-height pixels."""
    source = tmp_path / f"fax.{fmt.lower()}"
    _without_a_unit(source, fmt)
    derivative, row = _enhance(tmp_path, source)
    height, width = FAX_ROWS.shape
    assert derivative.size == (2 * width, round(2 * height * 204 / 98))
    stage = next(s for s in json.loads(row["stages_json"]) if s["stage"] == "square_pixels")
    said = "rows stretched x2.082 to square pixels (master at 204 x 98, a pixel aspect without a unit)"
    assert stage["decision"] == said
    exif = derivative.getexif()  # says the pixels are square now, still without a unit
    assert exif[296] == 1 and exif[282] == exif[283]
    for said in ("dpi", "aspect", "jfif_density"):  # however a reader takes them
        assert len(set(derivative.info.get(said, (1, 1)))) == 1, (said, derivative.info[said])


def test_a_pixel_aspect_without_a_unit_left_as_it_is_is_carried(tmp_path: Path) -> None:
    source = tmp_path / "fax.png"
    _without_a_unit(source, "PNG")
    derivative, _ = _enhance(tmp_path, source, "--set", "superres.square_pixels=false")
    assert derivative.size == tuple(2 * n for n in FAX_ROWS.shape[::-1])
    assert derivative.info["aspect"] == (102, 49)  # pHYs unit 0, as the master's 204:98
    assert derivative.getexif()[296] == 1


def test_square_pixels_false_keeps_the_masters_geometry(tmp_path: Path) -> None:
    source = tmp_path / "fax.tif"
    Image.fromarray(FAX_ROWS).save(source, compression="group3", dpi=(204, 98))
    derivative, row = _enhance(tmp_path, source, "--set", "superres.square_pixels=false")
    assert derivative.size == tuple(2 * side for side in FAX_ROWS.shape[::-1])
    assert derivative.info["dpi"] == pytest.approx((408, 196))
    assert "square_pixels" not in row["stages_json"] and row["verdict"] == "passed"


def test_resolution_tags_too_far_apart_for_a_scan_leave_the_pixels_as_they_are(tmp_path: Path) -> None:
    source = tmp_path / "photo.tif"
    Image.fromarray(FAX_ROWS).save(source, compression="group4", dpi=(72, 300))
    derivative, row = _enhance(tmp_path, source)
    assert derivative.size == tuple(2 * side for side in FAX_ROWS.shape[::-1])
    stage = next(s for s in json.loads(row["stages_json"]) if s["stage"] == "square_pixels")
    assert stage["decision"].startswith("skipped: the master's resolution tags (72 x 300 dpi) are further apart")
    assert row["verdict"] == "passed"


def test_the_output_cap_counts_the_stretch(tmp_path: Path) -> None:
    """A cap on the long side held the enlarged page, and the stretch after it went past the cap."""
    page = FAX_ROWS[:96, :100]  # x2: 200 × 192, stretched to 200 × 400
    source = tmp_path / "slip.tif"
    Image.fromarray(page).save(source, compression="group4", dpi=(204, 98))
    derivative, row = _enhance(tmp_path, source, "--set", "superres.max_output_long_side=300")
    assert max(derivative.size) <= 300 and derivative.size[1] >= 299
    assert (row["output_width"], row["output_height"]) == derivative.size
    assert not any("width" in e or "height" in e for e in row["failed_expectations"])  # the size the gate expected


def test_each_page_of_a_document_is_judged_by_its_own_resolution(tmp_path: Path) -> None:
    """A faxed cover page and a letter scanned square, in one TIFF: the gate expects each page's own size."""
    letter = (skdata.text() > 100)
    buf = io.BytesIO()
    with tifffile.TiffWriter(buf) as tif:
        for page, dpi in ((FAX_ROWS, (204, 98)), (letter, (300, 300))):
            tif.write(np.where(page, 255, 0).astype(np.uint8), photometric="minisblack", resolution=dpi,
                      resolutionunit="INCH", metadata=None)
    source = tmp_path / "register.tif"
    source.write_bytes(buf.getvalue())
    _, row = _enhance(tmp_path, source)
    sizes = [tuple(p["output_size"]) for p in json.loads(row["pages_json"])]
    assert sizes == [(2 * FAX_ROWS.shape[1], round(2 * FAX_ROWS.shape[0] * 204 / 98)),
                     (2 * letter.shape[1], 2 * letter.shape[0])]
    assert not any("width" in e or "height" in e for e in row["failed_expectations"])
