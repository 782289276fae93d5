"""The command line over real files: outputs, metadata, progress, and originals left untouched."""
from __future__ import annotations

import datetime as dt
import hashlib
import html
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import native_crash
import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import photo
from hostile_corpus import multi_picture
from PIL import Image

from enhance_ops import codecs, encoders
from enhance_ops.cli import main
from enhance_ops.samples import write_samples

PROJECT = Path(__file__).resolve().parents[1]


def _hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture()
def batch(tmp_path: Path) -> Path:
    folder = tmp_path / "incoming"
    write_samples(folder, long_side=40)
    (folder / "nested").mkdir()
    (folder / "nested" / "broken.jpg").write_bytes((folder / "cat_scan.jpg").read_bytes()[:300])
    (folder / "notes.txt").write_text("not an image, not picked up")
    return folder


def test_enhances_a_folder_and_reports_the_bad_file(batch: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = _hashes(batch)
    out = tmp_path / "enhanced"
    code = main(["enhance", str(batch), str(out), "--scale", "2", "--quiet"])
    captured = capsys.readouterr()
    assert code == 1  # one file failed, the others went through
    assert "FAILED" in captured.out + captured.err and "[truncated]" in captured.out + captured.err
    assert "7 enhanced, 0 skipped, 1 failed" in captured.out
    assert _hashes(batch) == before  # originals untouched
    cat = Image.open(out / "cat_scan.jpg")
    assert cat.size == tuple(2 * s for s in Image.open(batch / "cat_scan.jpg").size)
    assert Image.open(out / "page_document.png").mode == "L"
    assert Image.open(out / "astronaut_alpha.webp").mode == "RGBA"
    tiff = Image.open(out / "coffee_16bit.tif")
    assert tiff.tag_v2[258] == (16, 16, 16)
    record = json.loads((out / "cat_scan.jpg.json").read_text())
    assert record["models"] == ["span-x2"] and len(record["weights_sha256"]["span-x2"]) == 64
    assert record["preset"] == "archive-photo" and [s["stage"] for s in record["stages"]][:2] == ["dynamic_range", "exposure"]
    assert not (out / "nested" / "broken.jpg").exists()
    assert not list(out.rglob("*.part"))


def test_a_folder_is_read_as_a_nightly_run_reads_its_prefix_and_an_unreadable_file_fails_alone(
        batch: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The command line had its own rule: macOS's ``._`` resource forks failed as images, a GIF
    or a HEIC was passed over without a word, a link to nothing too, and a read error ended
    the run with a traceback."""
    folder, out, ledger_at = tmp_path / "copied_from_a_mac", tmp_path / "enhanced", tmp_path / "ledger"
    folder.mkdir()
    (folder / "scan.png").write_bytes((batch / "page_document.png").read_bytes())
    (folder / "._scan.png").write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        " + bytes(60))
    (folder / ".DS_Store").write_bytes(bytes(64))
    (folder / "hdr_scan.pfm").write_bytes(b"Pf\n8 8\n-1.0\n" + np.ones(64, "<f4").tobytes())  # a float map
    (folder / "moved_away.tif").symlink_to(tmp_path / "nothing_here.tif")
    (folder / "failing_disk.tif").symlink_to("/proc/self/mem")  # a real read error (EIO), as root too
    assert main(["enhance", str(folder), str(out), "--scale", "2", "--quiet", "--ledger", str(ledger_at)]) == 1
    said = capsys.readouterr()
    assert "1 enhanced, 0 skipped, 3 failed" in said.out and "._scan" not in said.out + said.err
    rows = {Path(r["source_key"]).name: r for r in pq.read_table(next(ledger_at.rglob("*.parquet"))).to_pylist()}
    assert rows.keys() == {"scan.png", "hdr_scan.pfm", "moved_away.tif", "failing_disk.tif"}
    assert rows["scan.png"]["status"] == "ok" and rows["hdr_scan.pfm"]["error_type"] == "unsupported_image"
    assert rows["moved_away.tif"]["error_type"] == "source_missing"
    assert "is a link to " in rows["moved_away.tif"]["error_message"]
    assert rows["failing_disk.tif"]["error_type"] == "source_unreadable"
    assert "Input/output error" in rows["failing_disk.tif"]["error_message"]
    assert rows["failing_disk.tif"]["source_sha256"] is None


def test_an_unexpected_failure_on_one_image_fails_it_alone_as_an_internal_error(
        batch: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A bug met on one master (a resolution no rational held raised struct.error in the
    encoder) ended a local run with a traceback and no ledger, where a shard fails that image
    alone. A bug cannot be made for real once fixed, so one is planted in the encoder."""
    folder, out, ledger_at = tmp_path / "in", tmp_path / "out", tmp_path / "ledger"
    folder.mkdir()
    for name in ("a.png", "b.png"):
        (folder / name).write_bytes((batch / "page_document.png").read_bytes())
    encode, calls = encoders.encode_samples, []

    def planted(*args: object, **kwargs: object) -> bytes:
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("planted bug")
        return encode(*args, **kwargs)

    monkeypatch.setattr(encoders, "encode_samples", planted)
    assert main(["enhance", str(folder), str(out), "--scale", "2", "--quiet", "--ledger", str(ledger_at)]) == 1
    assert "1 enhanced, 0 skipped, 1 failed" in capsys.readouterr().out
    rows = pq.read_table(next(ledger_at.rglob("*.parquet"))).to_pylist()
    failed = [r for r in rows if r["status"] != "ok"]
    assert len(rows) == 2 and len(failed) == 1
    assert failed[0]["error_type"] == "internal_error"
    assert failed[0]["error_message"] == "InternalError: ValueError: planted bug"


def test_a_backfill_done_folder_by_folder_under_one_run_id_keeps_every_folders_rows(batch: Path,
                                                                                    tmp_path: Path) -> None:
    ledger_at = tmp_path / "ledger"
    for folder in ("box-1", "box-2"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / f"{folder}.png").write_bytes((batch / "page_document.png").read_bytes())
        assert main(["enhance", str(tmp_path / folder), str(tmp_path / "out" / folder), "--scale", "2", "--quiet",
                     "--ledger", str(ledger_at), "--run-id", "backfill-1920s", "--date", "2026-11-30"]) == 0
    rows = pq.read_table(ledger_at / "date=2026-11-30" / "run=backfill-1920s").to_pylist()
    assert sorted(Path(r["source_key"]).name for r in rows) == ["box-1.png", "box-2.png"]


def test_a_long_runs_report_names_the_ledger_part_that_has_every_row(batch: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A report cut at ``MAX_LISTED`` rows said "the run's Parquet ledger has every row", also
    for a run given no ``--ledger``, and named the nightly ``review-queue`` for a folder's
    quarantined images, which it does not list."""
    from enhance_ops.quality import report

    monkeypatch.setattr(report, "MAX_LISTED", 1)
    folder = tmp_path / "box-3"
    folder.mkdir()
    for name in ("a.png", "b.png"):
        (folder / name).write_bytes((batch / "page_document.png").read_bytes())
    kept, unkept = tmp_path / "kept.html", tmp_path / "unkept.html"
    run = ["enhance", str(folder), "--scale", "2", "--quiet", "--run-id", "box-3", "--date", "2026-11-30",
           "--gate", "min_consistency_psnr_db=99"]  # every image held, so the held table is cut too
    assert main([*run[:2], str(tmp_path / "out-1"), *run[2:], "--ledger", str(tmp_path / "ledger"),
                 "--report", str(kept)]) == 0
    assert main([*run[:2], str(tmp_path / "out-2"), *run[2:], "--report", str(unkept)]) == 0
    part = tmp_path / "ledger" / "date=2026-11-30" / "run=box-3" / "part-00000.parquet"
    assert part.exists()
    page = html.unescape(kept.read_text())
    assert f"The first 1 of 2 images; the ledger ({part}) has every row." in page
    assert f"The first 1 of 2 held-back images; the ledger ({part}) has every row." in page
    page = html.unescape(unkept.read_text())
    assert "The first 1 of 2 images; this run kept no ledger (<code>--ledger</code> keeps every row)." in \
        unkept.read_text()
    assert "review-queue" not in page and "Parquet ledger" not in page


def test_a_master_named_as_another_format_gives_a_derivative_named_as_what_it_holds(batch: Path,
                                                                                   tmp_path: Path) -> None:
    """A scanner's JPEG saved as ``.tif`` came out as JPEG data under the TIFF name (a nightly
    run, which names a derivative once it is written, gave ``.jpg``); a PNG named ``.jpg`` too."""
    folder, out = tmp_path / "mislabelled", tmp_path / "enhanced"
    folder.mkdir()
    (folder / "letter.tif").write_bytes((batch / "cat_scan.jpg").read_bytes())
    (folder / "map.jpg").write_bytes((batch / "page_document.png").read_bytes())
    (folder / "plan.tiff").write_bytes((batch / "coffee_16bit.tif").read_bytes())
    assert main(["enhance", str(folder), str(out), "--scale", "2", "--quiet"]) == 0
    written = {p.name: Image.open(p).format for p in out.iterdir() if p.suffix != ".json"}
    assert written == {"letter.jpg": "JPEG", "map.png": "PNG", "plan.tiff": "TIFF"}


def test_a_12_bit_jpeg_gives_a_16_bit_png_named_so(batch: Path, tmp_path: Path) -> None:
    """A JPEG derivative would cut a 12-bit JPEG's samples to 8 bits, so it is written as PNG,
    and named so before it is enhanced, as the folder is planned: the frame header is found past
    a 200 kB application segment (a large ICC profile, a preview), where most fit in 64 kB."""
    import imagecodecs

    folder, out = tmp_path / "microscope", tmp_path / "enhanced"
    folder.mkdir()
    twelve = imagecodecs.jpeg8_encode((photo("astronaut", 40) * 4095 + 0.5).astype(np.uint16), bitspersample=12)
    padding = b"".join(b"\xff\xeb" + (65_000).to_bytes(2, "big") + bytes(64_998) for _ in range(3))  # APP11
    (folder / "slide.jpg").write_bytes(twelve[:2] + padding + twelve[2:])
    (folder / "cat.jpg").write_bytes((batch / "cat_scan.jpg").read_bytes())
    assert main(["enhance", str(folder), str(out), "--scale", "2", "--quiet"]) == 0
    written = {p.name: Image.open(p).format for p in out.iterdir() if p.suffix != ".json"}
    assert written == {"slide.png": "PNG", "cat.jpg": "JPEG"}
    assert codecs.decode((out / "slide.png").read_bytes()).bit_depth == 16
    record = json.loads((out / "slide.png.json").read_text())
    assert (record["bit_depth"], record["bits_per_sample"], record["output_format"]) == (16, 12, "PNG")


def test_inputs_whose_derivatives_would_share_a_name_each_keep_their_own(batch: Path, tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """A master TIFF beside its access JPEG, both written as PNG, or a PNG beside a BMP of the
    same name: the whole folder was refused ("rename one of them") before any work. As in a
    nightly run, the plain name goes to the input that has it (else the first by path), the
    other gets a tag of its path and a note naming whose derivative has the plain name."""
    folder, out, ledger_at = tmp_path / "box-7", tmp_path / "enhanced", tmp_path / "ledger"
    (folder / "sub").mkdir(parents=True)
    for name, sample in (("scan.tif", "coffee_16bit.tif"), ("scan.jpg", "cat_scan.jpg"),
                         ("sub/map.png", "page_document.png")):
        (folder / name).write_bytes((batch / sample).read_bytes())
    Image.open(batch / "page_document.png").save(folder / "sub" / "map.bmp")
    args = ["enhance", str(folder), str(out), "--scale", "2", "--quiet", "--format", "PNG", "--ledger", str(ledger_at)]
    assert main(args) == 0
    rows = {Path(r["source_key"]).name: r for r in pq.read_table(next(ledger_at.rglob("*.parquet"))).to_pylist()}
    named = {name: Path(row["output_key"]).relative_to(out).as_posix() for name, row in rows.items()}
    tif_tag, bmp_tag = (hashlib.sha256(path).hexdigest()[:8] for path in (b"scan.tif", b"sub/map.bmp"))
    assert named == {"scan.jpg": "scan.png", "scan.tif": f"scan~{tif_tag}.png",  # scan.jpg sorts first
                     "map.png": "sub/map.png", "map.bmp": f"sub/map~{bmp_tag}.png"}
    assert f"named map~{bmp_tag}.png: map.png is the derivative of {folder / 'sub' / 'map.png'}" in rows["map.bmp"]["notes"]
    assert not any("named" in note for note in rows["map.png"]["notes"] + rows["scan.jpg"]["notes"])
    sidecar = json.loads((out / f"sub/map~{bmp_tag}.png.json").read_text())
    assert sidecar["source"] == str(folder / "sub" / "map.bmp") and rows["map.bmp"]["notes"] == sidecar["notes"]
    assert Image.open(out / "scan.png").size == tuple(2 * s for s in Image.open(folder / "scan.jpg").size)
    assert codecs.decode((out / named["scan.tif"]).read_bytes()).bit_depth == 16
    capsys.readouterr()
    assert main(args) == 0  # the same names again: every derivative is there, none made twice
    assert "0 enhanced, 4 skipped, 0 failed" in capsys.readouterr().out


def test_a_name_an_earlier_run_gave_stays_with_its_input_as_the_folder_grows_or_moves(
        batch: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Names are given by the folder's contents: an access JPEG added beside a master TIFF
    already enhanced as ``scan.png`` would have taken that name (it sorts first), been skipped
    as done, and the TIFF enhanced again under a tagged name. An earlier derivative's sidecar
    says whose it is, as a nightly run's catalog does; a folder moved elsewhere is still the same."""
    folder, out = tmp_path / "a" / "box-7", tmp_path / "enhanced"
    folder.mkdir(parents=True)
    (folder / "scan.tif").write_bytes((batch / "coffee_16bit.tif").read_bytes())
    args = ["enhance", str(folder), str(out), "--scale", "2", "--quiet", "--format", "PNG"]
    assert main(args) == 0
    (folder / "scan.jpg").write_bytes((batch / "cat_scan.jpg").read_bytes())
    capsys.readouterr()
    assert main(args) == 0
    assert "1 enhanced, 1 skipped, 0 failed" in capsys.readouterr().out
    tagged = f"scan~{hashlib.sha256(b'scan.jpg').hexdigest()[:8]}.png"
    assert sorted(p.name for p in out.iterdir()) == ["scan.png", "scan.png.json", tagged, tagged + ".json"]
    assert json.loads((out / "scan.png.json").read_text())["source"] == str(folder / "scan.tif")
    assert json.loads((out / (tagged + ".json")).read_text())["notes"][-1] == (
        f"named {tagged}: scan.png is the derivative of {folder / 'scan.tif'}")
    moved = tmp_path / "b" / "box-7"
    moved.parent.mkdir()
    folder.rename(moved)
    assert main(["enhance", str(moved), *args[2:]]) == 0
    assert "0 enhanced, 2 skipped, 0 failed" in capsys.readouterr().out


def test_a_stereo_cameras_mpo_file_gives_a_jpeg_of_its_primary_image(tmp_path: Path) -> None:
    """``.mpo`` files were not picked up at all, and their pictures refused as MPO."""
    folder, out = tmp_path / "stereo", tmp_path / "enhanced"
    folder.mkdir()
    rgb = (photo("astronaut", 40) * 255 + 0.5).astype(np.uint8)
    (folder / "pair.mpo").write_bytes(multi_picture(rgb, 0x020002))
    assert main(["enhance", str(folder), str(out), "--scale", "2", "--quiet"]) == 0
    derivative = Image.open(out / "pair.jpg")
    assert (derivative.format, derivative.size) == ("JPEG", (80, 80))
    record = json.loads((out / "pair.jpg.json").read_text())
    assert record["pages_complete"] is False and any("1 other view of the subject" in n for n in record["notes"])


def test_existing_outputs_are_skipped_unless_overwrite(batch: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = batch / "page_document.png"
    out = tmp_path / "single"
    assert main(["enhance", str(source), str(out), "--scale", "2", "--quiet"]) == 0
    first = (out / "page_document.png").stat().st_mtime_ns
    assert main(["enhance", str(source), str(out), "--scale", "2", "--quiet"]) == 0
    assert "exists" in capsys.readouterr().out
    assert (out / "page_document.png").stat().st_mtime_ns == first
    assert main(["enhance", str(source), str(out), "--scale", "2", "--quiet", "--overwrite"]) == 0
    assert (out / "page_document.png").stat().st_mtime_ns != first


def test_refuses_to_write_into_the_input_folder(batch: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["enhance", str(batch), str(batch / "out"), "--quiet"]) == 2
    assert "inside the input folder" in capsys.readouterr().err


def test_refuses_to_overwrite_its_own_input(batch: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = batch / "page_document.png"
    before = source.read_bytes()
    assert main(["enhance", str(source), str(source), "--overwrite", "--quiet"]) == 2
    assert "overwrite its own input" in capsys.readouterr().err
    assert source.read_bytes() == before


def test_an_output_folder_named_by_an_existing_file_is_refused_before_any_work(
        batch: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """It ended in a NotADirectoryError traceback once the first image was enhanced."""
    taken = tmp_path / "enhanced"
    taken.write_text("a file where the output folder should go")
    assert main(["enhance", str(batch), str(taken), "--scale", "2", "--quiet"]) == 2
    assert f"{taken} is a file, not a folder" in capsys.readouterr().err
    assert taken.read_text() == "a file where the output folder should go"


def test_one_image_written_to_a_file_name_takes_the_format_the_name_says(
        batch: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``scan.png`` to ``out.jpg`` wrote PNG data under a JPEG name."""
    source = batch / "page_document.png"
    assert main(["enhance", str(source), str(tmp_path / "out.jpg"), "--scale", "2", "--quiet"]) == 0
    assert Image.open(tmp_path / "out.jpg").format == "JPEG"
    assert main(["enhance", str(source), str(tmp_path / "out.bmp"), "--scale", "2", "--quiet"]) == 2
    assert "out.bmp: its suffix names no format written here" in capsys.readouterr().err
    assert main(["enhance", str(source), str(tmp_path / "out.png"), "--format", "TIFF", "--quiet"]) == 2
    assert "out.png names PNG, but --format asks for TIFF" in capsys.readouterr().err
    assert not (tmp_path / "out.bmp").exists() and not (tmp_path / "out.png").exists()


def test_a_path_or_catalog_that_cannot_be_opened_is_said_in_a_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Each ended in a traceback."""
    assert main(["catalog-rebuild", "--ledger-dir", str(tmp_path / "no-ledger")]) == 2
    assert capsys.readouterr().err == f"error: FileNotFoundError: {tmp_path / 'no-ledger'}\n"
    assert main(["review-queue", "--catalog", f"sqlite:///{tmp_path}/no-folder/catalog.db"]) == 2
    assert "error: OperationalError: (sqlite3.OperationalError) unable to open database file" in capsys.readouterr().err
    assert main(["review-queue", "--catalog", "not a url"]) == 2
    assert "error: ArgumentError: Could not parse SQLAlchemy URL" in capsys.readouterr().err


@pytest.mark.parametrize(("option", "said"), [
    (["--date", "2026-13-01"], "argument --date: '2026-13-01' is not a date YYYY-MM-DD"),
    (["--max-pixels", "0"], "argument --max-pixels: '0' is not a whole number of at least 1"),
    (["--run-id", "night/1"],
     "argument --run-id: 'night/1': a run id holds letters, digits and '.', '_', '-' inside only"),
    (["--run-id", ".."], "argument --run-id: '..': a run id holds letters, digits and '.', '_', '-' inside only"),
], ids=["date", "max-pixels", "run-id-nested", "run-id-up"])
def test_an_option_out_of_range_is_refused_by_name(option: list[str], said: str, batch: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """A date ended in a traceback, a pixel limit of 0 failed every image as too large, and a
    run id with '/' nested the ledger's partition (with '..' it could climb out of it)."""
    with pytest.raises(SystemExit) as exit_:
        main(["enhance", str(batch), str(tmp_path / "out"), "--quiet", *option])
    assert exit_.value.code == 2 and capsys.readouterr().err.splitlines()[-1].endswith(said)
    assert not (tmp_path / "out").exists()


def test_sample_scans_too_small_to_make_or_a_port_past_65535_are_refused_by_name(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A long side of 0 ended in OpenCV's assertion, and a negative one wrote nothing without a word."""
    for side in ("0", "-3", "8"):
        with pytest.raises(SystemExit):
            main(["samples", str(tmp_path / "samples"), "--long-side", side])
        assert capsys.readouterr().err.splitlines()[-1].endswith(f"'{side}' is not a whole number of at least 16")
    assert not (tmp_path / "samples").exists()
    with pytest.raises(SystemExit):  # before any server is started
        main(["standalone", "--out", str(tmp_path / "ui"), "--port", "70000"])
    assert capsys.readouterr().err.splitlines()[-1].endswith("'70000' is not a whole number from 1 to 65535")
    assert not (tmp_path / "ui").exists()


def test_a_wrong_ledger_folder_report_file_or_gate_setting_is_refused_before_any_work(
        batch: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Each was found once every image had been enhanced, and the run was left without its
    ledger; a gate setting without --ledger or --report was passed over without a word."""
    a_file, out = tmp_path / "ledger.txt", tmp_path / "out"
    a_file.write_text("not a folder")
    for option, said in ((["--ledger", str(a_file)], f"--ledger {a_file} is a file: it names the folder the ledger"),
                         (["--report", str(tmp_path)], f"--report {tmp_path} is a folder: it names the report's file, "
                                                       f"e.g. {tmp_path / 'report.html'}"),
                         (["--gate", "min_psnr=30"], "gate setting 'min_psnr=30': use NAME=VALUE"),
                         (["--gate", "max_consistency_lpips=low"], "'low' is not a number")):
        assert main(["enhance", str(batch), str(out), "--scale", "2", "--quiet", *option]) == 2, option
        assert said in capsys.readouterr().err
        assert not out.exists()
    source = batch / "page_document.png"  # a gate setting alone: the verdict is given, and kept with the output
    assert main(["enhance", str(source), str(out / "page.png"), "--scale", "2", "--quiet",
                 "--gate", "min_consistency_psnr_db=99"]) == 0
    assert "gate: 0 passed, 1 quarantined, 0 failed, 0 rejected" in capsys.readouterr().out
    sidecar = json.loads((out / "page.png.json").read_text())
    assert sidecar["verdict"] == "quarantined" and "consistency_psnr_db >= 99" in sidecar["failed_expectations"]


def test_a_bitonal_group4_page_comes_out_readable_and_passes_the_gate(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """SPAN made noise of it (consistency 8.8 dB), and the gate held every such page."""
    from skimage import data as skdata

    source = tmp_path / "letter.tif"
    Image.fromarray(skdata.page() > 128).save(source, compression="group4")
    before = source.read_bytes()
    assert main(["enhance", str(source), str(tmp_path / "out" / "letter.tif"), "--preset", "document-scan",
                 "--scale", "2", "--quiet", "--gate", "min_consistency_psnr_db=30"]) == 0
    assert "gate: 1 passed, 0 quarantined" in capsys.readouterr().out
    record = json.loads((tmp_path / "out" / "letter.tif.json").read_text())
    [sr] = [stage for stage in record["stages"] if stage["stage"] == "superres"]
    [dn] = [stage for stage in record["stages"] if stage["stage"] == "denoise"]
    assert "first smoothed (Gaussian sigma 0.6 px)" in sr["decision"] and dn["decision"].startswith("skipped: black")
    assert record["verdict"] == "passed" and source.read_bytes() == before


def test_each_page_of_a_document_is_recorded_with_the_models_it_went_through(tmp_path: Path) -> None:
    """A typed page goes to SPAN, a photograph to Real-ESRGAN: the ledger names both, and
    each page its own, with each model's weights hash."""
    import tifffile
    from skimage import data as skdata

    source = tmp_path / "letter_with_photo.tif"
    tifffile.imwrite(source, (photo("camera", 96) * 255).astype(np.uint8))
    tifffile.imwrite(source, np.where(skdata.page()[:96, :128] > 128, 255, 0).astype(np.uint8), append=True)
    assert main(["enhance", str(source), str(tmp_path / "out" / "letter.tif"), "--quiet"]) == 0
    record = json.loads((tmp_path / "out" / "letter.tif.json").read_text())
    assert record["models"] == ["realesrgan-x4plus", "span-x4"]
    assert [page["models"] for page in record["pages"]] == [["realesrgan-x4plus"], ["span-x4"]]
    assert record["weights_sha256"].keys() == {"realesrgan-x4plus", "span-x4", "ffdnet-color", "lpips-alex"}
    assert record["pages"][1]["metrics"]["consistency_psnr_db"] > 35


def test_model_scale_must_match(batch: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["enhance", str(batch), str(tmp_path / "o"), "--scale", "4", "--model", "span-x2"]) == 2
    assert "upscale x2, but x4 was asked for" in capsys.readouterr().err


def test_x8_chains_two_real_models(tmp_path: Path) -> None:
    src = tmp_path / "in"
    write_samples(src, long_side=16)
    out = tmp_path / "x8"
    assert main(["enhance", str(src / "grey_two_pages.tif"), str(out), "--scale", "8", "--quiet"]) == 0
    pages = [(p["input_size"], p["output_size"]) for p in json.loads((out / "grey_two_pages.tif.json").read_text())["pages"]]
    assert len(pages) == 2 and all(output == [8 * side for side in given] for given, output in pages)
    assert Image.open(out / "grey_two_pages.tif").size == tuple(8 * s for s in Image.open(src / "grey_two_pages.tif").size)
    record = json.loads((out / "grey_two_pages.tif.json").read_text())
    assert record["models"] == ["realesrgan-x4plus", "span-x2"]


def test_a_derivative_that_cannot_be_written_fails_alone_and_leaves_no_part_file(tmp_path: Path) -> None:
    """A write error stopped the run, naming no file, with a ``.part`` file left beside the
    outputs and the images after it not tried. Here the kernel refuses the write for real: the run's file size limit (RLIMIT_FSIZE) lets
    the small derivative through and not the large one (EFBIG, as ENOSPC on a full disk)."""
    import resource

    folder, out, limit = tmp_path / "in", tmp_path / "out", 96 * 1024
    folder.mkdir()
    for name, side in (("large.png", 160), ("small.png", 16)):
        Image.fromarray((photo("astronaut", side) * 255).astype(np.uint8)).save(folder / name)
    result = subprocess.run(
        [sys.executable, "-m", "enhance_ops", "enhance", str(folder), str(out), "--scale", "2", "--quiet"],
        capture_output=True, text=True, cwd=PROJECT, env={**os.environ, "PYTHONPATH": str(PROJECT / "plugins")},
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)), timeout=600,
    )
    assert result.returncode == 1, result.stderr
    assert f"[output_unwritable] {out / 'large.png'} cannot be written: File too large" in result.stdout
    assert "1 enhanced, 0 skipped, 1 failed" in result.stdout
    assert sorted(p.name for p in out.iterdir()) == ["small.png", "small.png.json"]


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_a_run_stopped_from_outside_keeps_the_ledger_of_the_images_it_did(tmp_path: Path, stop: int) -> None:
    """Ctrl-C ended a long local run with a traceback, and SIGTERM (a scheduler's timeout)
    killed it: either way the ledger and report of hours of work were never written."""
    folder, out, ledger_at = tmp_path / "in", tmp_path / "out", tmp_path / "ledger"
    folder.mkdir()
    for n in range(4):
        Image.fromarray((photo("astronaut", 96, top=40 * n) * 255).astype(np.uint8)).save(folder / f"scan{n}.png")
    run = subprocess.Popen(
        [sys.executable, "-m", "enhance_ops", "enhance", str(folder), str(out), "--quiet", "--ledger", str(ledger_at),
         "--report", str(tmp_path / "report.html")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=PROJECT,
        env={**os.environ, "PYTHONPATH": str(PROJECT / "plugins")},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # a background job's shell ignores it
    )
    deadline = time.monotonic() + 300
    while not (out / "scan0.png.json").exists() and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # past the first image's bookkeeping, well inside the second's second or more of work
    run.send_signal(stop)
    said, err = run.communicate(timeout=300)
    assert run.returncode == 130, err
    assert "1 enhanced, 0 skipped, 0 failed, 3 not done: interrupted" in said
    [row] = pq.read_table(next(ledger_at.rglob("*.parquet"))).to_pylist()
    assert row["source_key"].endswith("scan0.png") and row["status"] == "ok"
    assert "scan0.png" in (tmp_path / "report.html").read_text()
    assert sorted(p.name for p in out.iterdir()) == ["scan0.png", "scan0.png.json"]


_CRASHING_RUN = native_crash.PRELUDE + """
from enhance_ops.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_an_image_that_kills_a_local_run_fails_alone_and_no_ledger_row_is_lost(tmp_path: Path) -> None:
    """A local run died at an image that crashes a decoder (or is too large for the memory
    limit) with nothing written: its ledger rows were lost, and every rerun into the folder
    died at the same image. Each run now keeps its rows and the image it holds in the output
    folder; the next run writes the dead run's ledger and tries that image once more, and
    the image two runs died holding fails from then on, so the rest of the folder is enhanced. The
    dead run's report is written too, beside the path every run here gives, as this run's goes there."""
    folder, out, ledger_at = tmp_path / "in", tmp_path / "out", tmp_path / "ledger"
    folder.mkdir()
    for n, name in enumerate(("a.png", "b-crashes.png", "c.png")):
        Image.fromarray((photo("astronaut", 48, top=40 * n) * 255).astype(np.uint8)).save(folder / name)
    (folder / "b-crashes.png").write_bytes((folder / "b-crashes.png").read_bytes() + b"SEGV")

    def run(run_id: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", _CRASHING_RUN, "enhance", str(folder), str(out), "--scale", "2", "--quiet",
             "--ledger", str(ledger_at), "--run-id", run_id, "--date", "2026-12-01", "--report",
             str(tmp_path / "report.html")],
            capture_output=True, text=True, cwd=PROJECT, env={**os.environ, "PYTHONPATH": str(PROJECT / "plugins")},
            timeout=600)

    first, second, third = run("night-1"), run("night-2"), run("night-3")
    assert [first.returncode, second.returncode] == [-signal.SIGSEGV, -signal.SIGSEGV]
    assert (f"the last run into this folder, night-1, died while enhancing {folder / 'b-crashes.png'}"
            in second.stderr)
    assert ("b-crashes.png: the last run into this folder died while enhancing it; trying it once more"
            in second.stdout)
    assert third.returncode == 1, third.stderr
    assert "night-2, died while enhancing" in third.stderr
    assert "1 enhanced, 1 skipped, 1 failed" in third.stdout
    assert "[worker_died] 2 runs into this folder died while enhancing this image" in third.stdout
    rows = {(r["run_id"], Path(r["source_key"]).name): r for r in pq.read_table(ledger_at).to_pylist()}
    assert rows.keys() == {("night-1", "a.png"), ("night-3", "b-crashes.png"), ("night-3", "c.png")}
    assert rows["night-1", "a.png"]["status"] == rows["night-3", "c.png"]["status"] == "ok"
    assert rows["night-1", "a.png"]["verdict"] in ("passed", "quarantined")  # judged, as by its own run
    assert rows["night-3", "b-crashes.png"]["error_type"] == "worker_died"
    assert json.loads((out / "a.png.json").read_text())["verdict"] == rows["night-1", "a.png"]["verdict"]
    assert ("The last run into this folder, night-2, died while enhancing" in
            html.unescape((tmp_path / "report.html").read_text()))  # night-1's rows are in the ledger; night-2 had none
    dead_report = html.unescape((tmp_path / "report.night-1.html").read_text())  # written by night-2 before it died
    assert "Enhancement run night-1 (2026-12-01)" in dead_report and "a.png" in dead_report
    assert (f"This run died while enhancing {folder / 'b-crashes.png'} (a native crash, a hang, the memory limit or a "
            f"kill). Its rows were kept as it went; the next run into the folder, night-2, judged them and wrote "
            f"this report." in dead_report)
    assert "data:image/jpeg;base64," in dead_report  # its before/after crop, from the files on disk
    fourth = run("night-4")
    assert fourth.returncode == 1 and "0 enhanced, 2 skipped, 1 failed" in fourth.stdout  # it stays left out
    assert "died" not in fourth.stderr
    assert sorted(p.name for p in out.iterdir()) == [".enhance-ops", "a.png", "a.png.json", "c.png", "c.png.json"]


def test_an_image_a_decoder_hangs_on_ends_the_local_run_and_is_left_out_by_the_run_after_the_next(
        tmp_path: Path) -> None:
    """A decoder stuck on a file held a local run for ever, and every rerun stopped at the same
    image. The run's watchdog ends it when nothing moves for ``--stall-s``, the image in hand
    kept in the folder's journal, which the runs after it treat as a death's."""
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    for n, name in enumerate(("a.png", "b-hangs.png", "c.png")):
        Image.fromarray((photo("astronaut", 48, top=40 * n) * 255).astype(np.uint8)).save(folder / name)
    (folder / "b-hangs.png").write_bytes((folder / "b-hangs.png").read_bytes() + b"HANG")
    runs = [subprocess.run([sys.executable, "-c", _CRASHING_RUN, "enhance", str(folder), str(out), "--scale", "2",
                            "--quiet", "--stall-s", "10"], capture_output=True, text=True, cwd=PROJECT,
                           env={**os.environ, "PYTHONPATH": str(PROJECT / "plugins")}, timeout=600) for _ in range(3)]
    assert [run.returncode for run in runs] == [-signal.SIGKILL, -signal.SIGKILL, 1], runs[-1].stderr[-3000:]
    assert ("error: no progress for 1" in runs[0].stderr and "the run kills itself, and the next run into the folder "
            "tries the image it held once more, then leaves it out" in runs[0].stderr)
    assert " in crashing\n" in runs[0].stderr  # every thread's stack: where it was stuck
    assert "b-hangs.png: the last run into this folder died while enhancing it; trying it once more" in runs[1].stdout
    assert "1 enhanced, 1 skipped, 1 failed" in runs[2].stdout
    assert "[worker_died] 2 runs into this folder died while enhancing this image (a decoder's native crash or hang" \
        in runs[2].stdout
    assert sorted(p.name for p in out.glob("*.png")) == ["a.png", "c.png"]


def test_a_stall_limit_that_is_no_number_of_seconds_is_refused_before_any_work(
        batch: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--stall-s -1`` had ended the run with a traceback once under way, its journal left
    behind for the next run to take for a dead one."""
    assert main(["enhance", str(batch), str(tmp_path / "out"), "--scale", "2", "--quiet", "--stall-s", "-1"]) == 2
    assert ("error: a stall limit is a number of seconds, 0 for none, not '-1' (--stall-s, ENHANCE_STALL_S)"
            in capsys.readouterr().err)
    assert not (tmp_path / "out").exists()


def test_a_second_run_into_a_folder_a_run_is_writing_into_is_refused(batch: Path, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """Two runs into one folder (a scheduled run started twice) raced on the same derivatives and sidecars."""
    from enhance_ops.run_journal import Journal

    other = Journal(tmp_path / "out")
    other.begin("local-other", dt.date(2026, 12, 1), None, [])
    assert main(["enhance", str(batch), str(tmp_path / "out"), "--scale", "2", "--quiet"]) == 2
    assert (f"another run (local-other, process {os.getpid()}) is writing into {tmp_path / 'out'}: runs into one "
            f"folder take turns" in capsys.readouterr().err)
    other.close()
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
    assert main(["enhance", str(batch), str(tmp_path / "out"), "--scale", "2", "--quiet"]) == 1  # its broken file


def test_module_entry_point_shows_progress(tmp_path: Path) -> None:
    src = tmp_path / "in"
    write_samples(src, long_side=32)
    result = subprocess.run(
        [sys.executable, "-m", "enhance_ops", "enhance", str(src / "cat_scan.jpg"), str(tmp_path / "o"), "--scale", "4"],
        capture_output=True, text=True, cwd=PROJECT, check=True,
        env={**os.environ, "PYTHONPATH": str(PROJECT / "plugins")},
    )
    assert "images: 100%" in result.stderr and "tile" in result.stderr
    assert "1 enhanced, 0 skipped, 0 failed" in result.stdout
    exif = Image.open(io.BytesIO((tmp_path / "o" / "cat_scan.jpg").read_bytes())).getexif()
    assert exif[271] == "Epson" and "Enhanced derivative" in exif[270] and exif[305].startswith("archive-enhance")


def test_a_ledger_that_cannot_be_written_at_the_end_is_written_by_the_next_run(
        batch: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The ledger is written once every image is done: where it could not be (here a file stands
    where its date's folder goes), the run ended with "error: [Errno 20] Not a directory" and
    the rows of every image it enhanced were gone."""
    folder, out, ledger_at = tmp_path / "in", tmp_path / "out", tmp_path / "ledger"
    folder.mkdir()
    (folder / "scan.png").write_bytes((batch / "page_document.png").read_bytes())
    ledger_at.mkdir()
    (ledger_at / "date=2026-12-01").write_text("in the way")
    night = ["enhance", str(folder), str(out), "--scale", "2", "--quiet", "--ledger", str(ledger_at), "--date",
             "2026-12-01"]
    assert main([*night, "--run-id", "night-1", "--report", str(tmp_path / "night-1.html")]) == 2
    assert (f"error: the ledger or report cannot be written: Not a directory; its rows are kept in "
            f"{out / '.enhance-ops'}, and the next run into the folder writes them" in capsys.readouterr().err)
    (ledger_at / "date=2026-12-01").unlink()
    assert main([*night, "--run-id", "night-2", "--report", str(tmp_path / "report.html")]) == 0
    said = capsys.readouterr()
    assert ("the last run into this folder, night-1, did not finish (its process died, or its ledger or report "
            "could not be written); the images it finished are kept and skipped" in said.err)
    assert "0 enhanced, 1 skipped, 0 failed" in said.out
    [row] = pq.read_table(ledger_at / "date=2026-12-01" / "run=night-1").to_pylist()
    assert row["source_key"] == str(folder / "scan.png") and row["status"] == "ok"
    assert ("The last run into this folder, night-1, did not finish (its process died, or its ledger or report "
            "could not be written). The images it finished were skipped here; the ledger holds them under "
            f"run=night-1 (1 row) and its report, written by this run, is {tmp_path / 'night-1.html'}."
            in html.unescape((tmp_path / "report.html").read_text()))
    dead_report = html.unescape((tmp_path / "night-1.html").read_text())
    assert "Enhancement run night-1 (2026-12-01)" in dead_report and "scan.png" in dead_report
    assert "the next run into the folder, night-2, judged them and wrote this report" in dead_report
    assert not (out / ".enhance-ops").exists()


def test_a_journal_the_disk_refuses_is_said_and_the_run_goes_on_without_it(tmp_path: Path) -> None:
    """The kernel refuses every file over 1 KiB (the run's file size limit, as a full disk):
    the journal's rows, the derivatives and the ledger. The run says what it cannot keep and
    fails each image alone, where a journal write had ended it with a traceback."""
    import resource

    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    for name in ("a.png", "b.png"):
        Image.fromarray((photo("astronaut", 24) * 255).astype(np.uint8)).save(folder / name)
    result = subprocess.run(
        [sys.executable, "-m", "enhance_ops", "enhance", str(folder), str(out), "--scale", "2", "--quiet", "--ledger",
         str(tmp_path / "ledger")],
        capture_output=True, text=True, cwd=PROJECT, timeout=600,
        env={**os.environ, "PYTHONPATH": str(PROJECT / "plugins"), "PYTHONDONTWRITEBYTECODE": "1"},
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024)),
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "0 enhanced, 0 skipped, 2 failed" in result.stdout
    assert (f"the run's journal in {out / '.enhance-ops'} cannot be written (File too large): were this run to die, "
            f"the next would not know what it held, nor write its ledger" in result.stderr)
    assert result.stderr.rstrip().endswith("error: the ledger or report cannot be written: File too large")
