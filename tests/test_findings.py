"""What the chain read a print as (faded, monochrome, on the scanner's background) reaches
the ledger's notes and the report, where an archivist reads it, not only ``stages_json``."""
from __future__ import annotations

import html
import json
from pathlib import Path

import cv2
import numpy as np
import tifffile
from conftest import photo
from fading_benchmark import photos, tone_chain
from PIL import Image
from test_scan_border import on_the_scanner
from test_toning import CYANOTYPE, SEPIA, toned

from enhance_ops.chain import color, pipeline
from enhance_ops.cli import main
from enhance_ops.codecs import decode
from enhance_ops.degrade import fade
from enhance_ops.quality import gate, ledger, report
from enhance_ops.samples import write_samples


def _png(path: Path, image: np.ndarray) -> None:
    Image.fromarray((np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)).save(path)


def test_the_ledger_and_the_report_say_what_each_print_was_read_as(tmp_path: Path) -> None:
    src, out = tmp_path / "incoming", tmp_path / "enhanced"
    src.mkdir()
    _png(src / "faded.png", fade(photo("rocket")[::3, ::3].copy(), 1.0))
    _png(src / "cyanotype.png", toned("camera", CYANOTYPE, black=0.15)[::3, ::3])
    _png(src / "sepia_on_lid.png", on_the_scanner(0.2 + 0.6 * toned("camera", SEPIA)[::3, ::3], 0.96, 30))
    _png(src / "cat.png", photo("chelsea")[::2, ::2])
    report = tmp_path / "run.html"
    assert main(["enhance", str(src), str(out), "--scale", "2", "--quiet", "--run-id", "r1", "--date", "2026-12-07",
                 "--ledger", str(tmp_path / "ledger"), "--report", str(report)]) == 0
    rows = ledger.read_ledger(tmp_path / "ledger").to_pylist()
    notes = {Path(r["source_key"]).stem: r["notes"] for r in rows}
    assert notes["faded"] == [
        "a faded colour print, its blacks lifted to luma 0.13 and tinted (chroma 15): its colours were restored (the "
        "stain taken out, each channel's contrast stretched, chroma raised x1.60); colour_restore.mode=off keeps the "
        "scan's colours"]
    assert notes["cyanotype"] == ["a monochrome print (toned at hue 266 deg, chroma 23): its tone was not taken for "
                                  "fading"]
    assert notes["sepia_on_lid"][0].startswith("a print scanned on the scanner's background (48% of the scan around "
                                               "it): its tone and colour were judged and changed on the print alone")
    assert notes["sepia_on_lid"][1].startswith("a monochrome print (toned at hue 81 deg, chroma 9)")
    assert notes["sepia_on_lid"][1].endswith("its tone was kept through exposure's stretch")
    assert notes["cat"] == []
    page = html.unescape(report.read_text(encoding="utf-8"))
    assert ("Read from the scans (each image's notes say more): 1 faded colour print, its colours restored; "
            "2 monochrome prints, their tone kept; 1 print on the scanner's background, judged without it.") in page
    assert "its tone was not taken for fading" in page.split("Every image", 1)[1]


def test_restoration_asked_for_is_told_from_fading_found() -> None:
    """colour_restore.mode=on restores a photo that shows no fading: its note says it was asked."""
    chain = pipeline.Chain("archive-photo", ("superres.scale=2", "superres.models=[]", "colour_restore.mode=on"))
    notes = chain.run(photo("chelsea")[::2, ::2].copy()).notes
    assert notes and notes[0].startswith("colour_restore.mode=on (no sign of fading measured): its colours were restored")


def test_a_partial_restoration_says_how_far_it_went() -> None:
    """A faint stain is restored only in part (``color.stain_strength``): TID2013's I03 at half
    its size, a warm, low-key original, was restored in full, to ΔE00 13.3 from itself."""
    original = photos()["I03"][1]
    half = cv2.resize(original, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    result = tone_chain().run(half)
    [restore] = [r for r in result.stages if r.stage == "colour_restore"]
    share = restore.details["strength"]
    assert 0 < share < 0.5
    assert result.notes == [
        f"a faded colour print, its blacks lifted to luma {restore.details['stain']['black_luma']:.2f} and tinted "
        f"(chroma {restore.details['stain']['stain_chroma']:.0f}): its colours were restored {share:.0%} of the way "
        "(the stain taken out, each channel's contrast stretched): a faint stain, which a warm, low-key photograph's "
        "own shadows can show too; colour_restore.mode=off keeps the scan's colours"]


def test_the_reports_sample_of_passed_images_shows_restored_colours_first(tmp_path: Path) -> None:
    """Six passed images are shown before and after; a faded print whose colours were
    restored, listed after six others, is among them, its caption saying so."""
    src, out = tmp_path / "incoming", tmp_path / "enhanced"
    src.mkdir()
    _png(src / "a_cat.png", photo("chelsea")[::2, ::2])
    _png(src / "b_faded.png", fade(photo("rocket")[::3, ::3].copy(), 1.0))
    assert main(["enhance", str(src), str(out), "--scale", "2", "--quiet", "--run-id", "r1", "--date", "2026-12-07",
                 "--ledger", str(tmp_path / "ledger")]) == 0
    cat, faded = sorted(ledger.read_ledger(tmp_path / "ledger").to_pylist(), key=lambda r: r["source_key"])
    assert cat["verdict"] == faded["verdict"] == "passed"
    rows = [dict(cat, source_key=f"incoming/cat-{n}.png") for n in range(report.SAMPLE_PASSED)] + [faded]
    shown = report.featured(rows)
    assert shown[0] == len(rows) - 1 and len(shown) == report.SAMPLE_PASSED
    tiny = report.Preview(np.zeros((8, 8, 3), np.float32), np.zeros((8, 8, 3), np.float32))
    page = html.unescape(report.render_report(rows, gate.evaluate(rows), {i: tiny for i in shown}, title="run",
                                              outputs_at="here"))
    sample = page.split("a sample that passed", 1)[1].split("Metric distributions", 1)[0]
    assert "Those whose colours were restored as a faded print's come first." in sample
    assert f"{faded['source_key']}<br>faded colour print, its colours restored</p>" in sample
    assert "cat-5.png" not in sample and "cat-4.png" in sample


def test_the_demos_faded_print_is_the_one_sample_read_as_faded(tmp_path: Path) -> None:
    """``make run`` shows a restoration: its faded print, at 0.8, was not read as faded (the
    grain pulled its darkest pixels under the stain's luma), and the demo never showed one."""
    read = {path.name: decode(path.read_bytes()).pixels for path in write_samples(tmp_path, long_side=128)}
    stained = {name: color.restorable(pixels, stained_only=True)[0] for name, pixels in read.items()
               if pixels.shape[2] == 3}
    assert stained == {"cat_scan.jpg": False, "rocket_sideways.jpg": False, "faded_print.jpg": True,
                       "coffee_16bit.tif": False, "astronaut_alpha.webp": False}


def test_a_faded_print_on_a_later_page_counts_in_the_report(tmp_path: Path) -> None:
    """The row's stages are its first page's: the report counted a multi-page master by them alone."""
    src = tmp_path / "incoming"
    src.mkdir()
    with tifffile.TiffWriter(src / "album.tif") as tif:
        for page in (photo("chelsea")[::3, ::3], fade(photo("rocket")[::3, ::3].copy(), 1.0)):
            tif.write((page * 255 + 0.5).astype(np.uint8), photometric="rgb")
    report = tmp_path / "run.html"
    assert main(["enhance", str(src), str(tmp_path / "enhanced"), "--scale", "2", "--quiet", "--run-id", "r1",
                 "--date", "2026-12-07", "--ledger", str(tmp_path / "ledger"), "--report", str(report)]) == 0
    assert "1 faded colour print, its colours restored." in html.unescape(report.read_text())
    [row] = ledger.read_ledger(tmp_path / "ledger").to_pylist()
    assert [page["read_as"] for page in json.loads(row["pages_json"])] == [[], ["faded"]]
    assert any(note.startswith("page 2: a faded colour print") for note in row["notes"])
