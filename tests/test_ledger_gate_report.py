"""Ledger, gate and report on a real batch run through the CLI, and on their own."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from enhance_ops.cli import main
from enhance_ops.errors import TruncatedImageError
from enhance_ops.models.manifest import get_entry
from enhance_ops.quality import gate, ledger, report
from enhance_ops.quality.measures import MEASURES
from enhance_ops.quality.metrics import lpips_precision
from enhance_ops.samples import write_samples

DAY = dt.date(2026, 11, 20)


@pytest.fixture(scope="module")
def batch_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("run")
    src = root / "incoming"
    write_samples(src, long_side=48)
    (src / "broken.png").write_bytes((src / "page_document.png").read_bytes()[:200])
    paths = {"src": src, "out": root / "enhanced", "ledger": root / "ledger", "report": root / "report" / "run.html"}
    code = main(["enhance", str(src), str(paths["out"]), "--scale", "2", "--quiet", "--run-id", "r1",
                 "--date", DAY.isoformat(), "--ledger", str(paths["ledger"]), "--report", str(paths["report"])])
    assert code == 1  # the broken file failed, the rest went on
    return paths


def test_ledger_has_one_row_per_image_with_the_schema(batch_run: dict[str, Path]) -> None:
    part = batch_run["ledger"] / "date=2026-11-20" / "run=r1" / "part-00000.parquet"
    table = pq.read_table(part)
    assert table.schema.metadata[b"schema_version"] == str(ledger.SCHEMA_VERSION).encode()
    assert table.num_rows == 8
    df = ledger.read_ledger(batch_run["ledger"]).to_pandas()  # pyarrow dataset → pandas
    assert set(df["date"].astype(str)) == {"2026-11-20"} and set(df["run"]) == {"r1"}
    assert len(pd.read_parquet(batch_run["ledger"])) == 8  # pandas reads the partitioned folder directly
    broken = df[df["source_key"].str.endswith("broken.png")].iloc[0]
    assert broken["status"] == "failed" and broken["verdict"] == "failed"
    assert broken["error_type"] == "truncated" and "TruncatedImageError" in broken["error_message"]
    ok = df[df["status"] == "ok"]
    assert set(ok["verdict"]) <= {"passed", "quarantined"}
    assert (ok["output_width"] == 2 * ok["input_width"]).all()
    assert ok["models"].map(list).map(lambda m: m == ["span-x2"]).all()
    assert ok["source_sha256"].str.len().eq(64).all() and ok["peak_rss_bytes"].gt(0).all()
    for _, row in ok.iterrows():  # the derivative's own bytes, as written
        written = Path(row["output_key"]).read_bytes()
        assert row["output_sha256"] == hashlib.sha256(written).hexdigest() and row["output_bytes"] == len(written)
    assert broken["output_bytes"] is None or pd.isna(broken["output_bytes"])
    assert ok["consistency_psnr_db"].notna().all() and set(MEASURES) <= set(df.columns)
    assert set(ok["lpips_precision"]) == {lpips_precision()} and pd.isna(broken["lpips_precision"])
    assert ok["weights_sha256"].map(dict).map(lambda w: w["lpips-alex"] == get_entry("lpips-alex").sha256).all()
    settings = json.loads(ok.iloc[0]["parameters_json"])
    assert settings["superres"]["scale"] == 2 and "denoise" in settings
    stages = dict(ok.iloc[0]["stage_seconds"])
    assert "superres" in stages and stages["superres"] > 0


def test_sidecars_carry_the_verdict(batch_run: dict[str, Path]) -> None:
    record = json.loads((batch_run["out"] / "cat_scan.jpg.json").read_text())
    assert record["verdict"] in ("passed", "quarantined") and "failed_expectations" in record


def test_parts_of_an_earlier_schema_are_read_with_the_columns_added_since(tmp_path: Path) -> None:
    row = ledger.failed_row(TruncatedImageError("cut"), run_id="new", logical_date=DAY, shard=0,
                            source_key="b.jpg", source_sha256="b" * 64)
    older = ledger.SCHEMA.remove(ledger.SCHEMA.get_field_index("output_sha256"))  # a schema 3 part
    old = tmp_path / "date=2026-11-19" / "run=old" / "part-00000.parquet"  # found first
    old.parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist([{**row, "run_id": "old", "source_key": "a.jpg"}], schema=older), old)
    ledger.add_part([{**row, "output_sha256": "c" * 64}], tmp_path, DAY, "new")
    rows = sorted(ledger.read_ledger(tmp_path).to_pylist(), key=lambda r: r["source_key"])
    assert [(r["source_key"], r["output_sha256"], r["run"]) for r in rows] == [("a.jpg", None, "old"),
                                                                                ("b.jpg", "c" * 64, "new")]


def test_a_run_id_given_again_adds_its_rows_beside_the_earlier_ones(tmp_path: Path) -> None:
    """Each local run wrote part 0 of its run: a second run with the same --run-id and day
    replaced the first's rows, and the ledger lost them without a word."""
    rows = [ledger.failed_row(TruncatedImageError("cut"), run_id="r", logical_date=DAY, shard=0,
                              source_key=f"{n}.jpg", source_sha256=None) for n in range(3)]
    parts = [ledger.add_part(rows[:2], tmp_path, DAY, "r"), ledger.add_part(rows[2:], tmp_path, DAY, "r")]
    assert [p.name for p in parts] == ["part-00000.parquet", "part-00001.parquet"]
    read = sorted(ledger.read_ledger(tmp_path).to_pylist(), key=lambda r: r["source_key"])
    assert [(r["source_key"], r["shard"]) for r in read] == [("0.jpg", 0), ("1.jpg", 0), ("2.jpg", 1)]
    assert not list(tmp_path.rglob("*.tmp"))


def _row(**changes: object) -> dict:
    base = {"status": "ok", "parameters_json": json.dumps({"superres": {"scale": 2}}), "stages_json": "[]",
            "input_width": 10, "input_height": 8, "output_width": 20, "output_height": 16,
            "consistency_psnr_db": 38.0, "consistency_ssim": 0.97, "consistency_lpips": 0.1,
            "artefact_score": 0.01, "clipped_fraction": 0.0, "clipping_added": 0.0}
    return {**base, **changes}


def test_gate_verdicts_and_reasons() -> None:
    rows = [_row(), _row(consistency_psnr_db=24.0, artefact_score=0.3), _row(output_width=19),
            _row(consistency_ssim=None), {"status": "failed", "verdict": None}]
    report = gate.evaluate(rows)
    assert [r["verdict"] for r in rows] == ["passed", "quarantined", "quarantined", "quarantined", "failed"]
    assert set(rows[1]["failed_expectations"]) == {"consistency_psnr_db >= 30", "artefact_score <= 0.05"}
    assert rows[2]["failed_expectations"] == ["output width = input width x scale"]
    assert rows[3]["failed_expectations"] == ["consistency_ssim is not NaN"]
    assert report.evaluated == 4 and report.expectations["consistency_psnr_db >= 30"] == 1


def test_the_gate_holds_back_clipping_the_enhancement_added_not_what_the_scan_had() -> None:
    rows = [_row(clipped_fraction=0.72, clipping_added=0.0), _row(clipped_fraction=0.3, clipping_added=0.2)]
    gate.evaluate(rows)  # a blank white page; a photo whose highlights were blown
    assert [r["verdict"] for r in rows] == ["passed", "quarantined"]
    assert rows[1]["failed_expectations"] == ["clipping_added <= 0.1"]


def test_the_gate_holds_back_a_derivative_that_lacks_pages_its_master_holds() -> None:
    rows = [_row(pages_complete=False), _row(pages_complete=True), _row(pages_complete=None)]
    outcome = gate.evaluate(rows)  # a damaged chain of page directories; a whole letter; a part before schema 7
    assert [r["verdict"] for r in rows] == ["quarantined", "passed", "passed"]
    assert rows[0]["failed_expectations"] == ["every page of the master is in the derivative"]
    assert outcome.expectations["every page of the master is in the derivative"] == 1
    for n, r in enumerate(rows):
        r.update(source_key=f"incoming/{DAY}/letter-{n}.tif", output_key=f"out/letter-{n}.tif")
    held = report.render_report(rows, outcome, {}, title="run", outputs_at="here").split("Held back for review", 1)[1]
    assert "every page of the master is in the derivative" in held.split("</table>", 1)[0]


def test_the_gate_holds_back_a_derivative_of_a_master_whose_pixel_data_is_damaged() -> None:
    damage = "libjpeg: Corrupt JPEG data: 35 extraneous bytes before marker 0xd9"
    letter = _row(pages=2, pages_json=_pages({}, {"master_damage": "strip 1 of 3 cannot be expanded"}),
                  master_damage="page 2: strip 1 of 3 cannot be expanded")
    rows = [_row(master_damage=damage), _row(master_damage=None), _row(), letter]  # _row(): a part before schema 8
    outcome = gate.evaluate(rows)
    assert [r["verdict"] for r in rows] == ["quarantined", "passed", "passed", "quarantined"]
    assert rows[0]["failed_expectations"] == ["master_damage is null"]
    assert rows[3]["failed_expectations"] == ["master_damage is null (page 2)"]  # its damaged page, not every page
    assert outcome.expectations["master_damage is null"] == 2
    for n, r in enumerate(rows):
        r.update(source_key=f"incoming/{DAY}/scan-{n}.jpg", output_key=f"out/scan-{n}.jpg")
    held = report.render_report(rows, outcome, {}, title="run", outputs_at="here").split("Held back for review", 1)[1]
    assert f"master_damage: {damage}" in held.split("</table>", 1)[0]  # what was found, for the reviewer
    assert "master_damage: page 2: strip 1 of 3 cannot be expanded" in held.split("</table>", 1)[0]


def _pages(*changes: dict) -> str:
    page = {"input_size": [10, 8], "output_size": [20, 16], "reduced_input_to": None,
            "metrics": {k: v for k, v in _row().items() if k in MEASURES}}
    return json.dumps([{**page, "page": n, **change} for n, change in enumerate(changes, 1)])


def test_every_page_of_a_multi_page_master_is_held_to_the_gate_and_named() -> None:
    weak = {"metrics": {**json.loads(_pages({}))[0]["metrics"], "consistency_psnr_db": 25.0, "composite_score": 0.3}}
    rows = [_row(pages=3, pages_json=_pages({}, weak, {**weak, "output_size": [19, 16]})),
            _row(pages=2, pages_json=_pages({}, {"input_size": [12, 9], "output_size": [24, 18]}))]
    outcome = gate.evaluate(rows)
    assert [r["verdict"] for r in rows] == ["quarantined", "passed"]
    assert rows[0]["failed_expectations"] == ["consistency_psnr_db >= 30 (pages 2, 3)",
                                              "output width = input width x scale (page 3)"]
    assert outcome.evaluated == 5 and outcome.expectations["consistency_psnr_db >= 30"] == 1  # images, not pages
    for n, r in enumerate(rows):
        r.update(source_key=f"incoming/{DAY}/letter-{n}.tif", output_key=f"out/letter-{n}.tif",
                 consistency_psnr_db=25.0 if n == 0 else 38.0)  # the row's own: its worst page's
    crops = report.make_preview(np.zeros((8, 10, 3), np.float32), np.zeros((16, 20, 3), np.float32))
    page = report.render_report(rows, outcome, {0: crops}, title="run", outputs_at="here")
    held = page.split("Held back for review", 1)[1].split("</table>", 1)[0]
    assert "consistency_psnr_db 25, needs &gt;= 30 (pages 2, 3)" in held
    assert "letter-0.tif, page 2 of 3 (its weakest)</p>" in page  # the before/after shown is of page 2
    assert "20×16<br>page 1 of 3; measures: the worst page's" in page


def test_a_multi_page_masters_row_carries_every_page_and_the_worst_of_each_measure(tmp_path: Path) -> None:
    import io

    import tifffile

    from enhance_ops.enhance import EnhanceOptions, Enhancer

    scan = np.asarray(Image.open(write_samples(tmp_path, long_side=40)[0]).convert("RGB"))
    buf = io.BytesIO()
    tifffile.imwrite(buf, np.stack([scan, scan[::-1, ::-1] // 3]), photometric="rgb")
    record = Enhancer(EnhanceOptions(preset="fidelity", overrides=("superres.scale=2", "superres.models=[]"))
                      ).enhance(buf.getvalue()).record
    [row] = ledger.from_parquet(ledger.to_parquet([ledger.row_from_record(
        record, run_id="r", logical_date=DAY, shard=0, source_key="letter.tif", output_key="out/letter.tif")]))
    pages = json.loads(row["pages_json"])
    assert row["pages"] == 2 and [p["page"] for p in pages] == [1, 2]
    for name, measure in MEASURES.items():
        values = [p["metrics"][name] for p in pages]
        assert row[name] == pytest.approx(max(values) if measure.lower_better else min(values)), name
    assert pages[0]["metrics"]["colourfulness"] != pages[1]["metrics"]["colourfulness"]
    gate.evaluate([row])
    assert row["verdict"] in ("passed", "quarantined")


def test_the_report_says_how_far_each_held_back_image_is_from_its_thresholds_and_what_that_means() -> None:
    rows = [_row(consistency_psnr_db=24.0, artefact_score=0.3, halo_fraction=0.3, seam_score=1.0),
            _row(output_width=19), _row(consistency_ssim=None),
            _row(artefact_score=0.2, halo_fraction=0.004, seam_score=5.2), _row(clipping_added=0.2)]
    outcome = gate.evaluate(rows)
    for n, r in enumerate(rows):
        r.update(source_key=f"incoming/{DAY}/scan-{n}.tif", output_key=f"quarantine/{DAY}/scan-{n}.tif")
    page = report.render_report(rows, outcome, {}, title="run", outputs_at="here")
    held = page.split("Held back for review", 1)[1].split("</table>", 1)[0]
    assert ("consistency_psnr_db 24, needs &gt;= 30: the enlargement, shrunk back, strays from the scan: detail "
            "redrawn or invented") in held
    assert "artefact_score 0.3, needs &lt;= 0.05: halos or ringing along edges (30.0% of the pixels overshoot)" in held
    assert "artefact_score 0.2, needs &lt;= 0.05: seams along the tile grid (seam score 5.2)" in held
    assert "clipping_added 0.2, needs &lt;= 0.1: highlights or shadows blown out by the enhancement" in held
    assert "output width = input width x scale" in held and "consistency_ssim not measured" in held


def test_the_report_says_a_measure_is_missing_because_the_scan_is_too_small_for_it() -> None:
    """A strip 3 px high (a scanner's calibration line, a cropped margin) is held with SSIM and
    LPIPS unmeasured; the reviewer is told why, not left to wonder whether the measure failed."""
    nan = float("nan")
    rows = [_row(input_width=2000, input_height=3, output_width=4000, output_height=6, consistency_ssim=nan,
                 consistency_lpips=nan),
            _row(input_width=600, input_height=400, output_width=1200, output_height=800, consistency_ssim=nan)]
    outcome = gate.evaluate(rows)
    for n, r in enumerate(rows):
        r.update(source_key=f"incoming/{DAY}/scan-{n}.tif", output_key=f"quarantine/{DAY}/scan-{n}.tif")
    held = report.render_report(rows, outcome, {}, title="run", outputs_at="here").split("Held back for review", 1)[1]
    assert "consistency_ssim not measured: the scan is 2000 × 3 px, and it takes 11 px a side" in held
    assert "consistency_lpips not measured: the scan is 2000 × 3 px, and it takes 16 px a side" in held
    assert "consistency_ssim not measured;" not in held and "consistency_ssim not measured<" in held  # 600 × 400


def test_the_report_says_which_networks_enlarged_how_many_images() -> None:
    """A black-and-white page goes to SPAN where photographs go to Real-ESRGAN: the archivist
    reading the report learns it there, not from the ledger alone."""
    rows = [_row(models=["realesrgan-x4plus"]), _row(models=["span-x4"]), _row(models=["realesrgan-x4plus"]),
            {"status": "failed", "verdict": None, "models": []}]
    outcome = gate.evaluate(rows)
    for n, r in enumerate(rows):
        r.update(source_key=f"incoming/{DAY}/scan-{n}.tif", output_key=None)
    page = report.render_report(rows, outcome, {}, title="run", outputs_at="here")
    assert "Super-resolution: realesrgan-x4plus, 2 images; span-x4, 1 image." in page.split("Held back", 1)[0]
    assert "LPIPS was computed" not in page  # one precision (or none recorded): nothing to tell


def test_the_report_says_where_workers_computed_lpips_in_different_precisions() -> None:
    """A worker without native bf16 computes LPIPS in fp32: in one run the values of its images
    and the others' can differ in the fourth decimal, which the ledger says and now the report."""
    rows = [_row(models=["span-x4"], lpips_precision=p) for p in ("bf16", "bf16", "fp32", None)]
    outcome = gate.evaluate(rows)
    for n, r in enumerate(rows):
        r.update(source_key=f"incoming/{DAY}/scan-{n}.tif", output_key=None)
    page = report.render_report(rows, outcome, {}, title="run", outputs_at="here")
    assert ("LPIPS was computed in bf16 for 2 images and fp32 for 1 image (workers differ): those values can differ "
            "in the fourth decimal.") in page.split("Held back", 1)[0]


def test_the_report_says_why_pages_went_to_other_networks_than_the_presets() -> None:
    """An archivist saw span-x4 beside realesrgan-x4plus in the report and nothing saying why."""
    x4 = json.dumps({"superres": {"scale": 4, "models": [], "bitonal_models": []}})
    rows = [_row(models=["realesrgan-x4plus"], parameters_json=x4), _row(models=["span-x4"], parameters_json=x4),
            _row(models=["realesrgan-x4plus", "span-x4"], parameters_json=x4),  # a photo and a page of text, one TIFF
            _row(models=["span-x4"], parameters_json=json.dumps({"superres": {"scale": 4, "models": ["span-x4"],
                                                                              "bitonal_models": []}}))]
    outcome = gate.evaluate(rows)
    for n, r in enumerate(rows):
        r.update(source_key=f"incoming/{DAY}/scan-{n}.tif", output_key=None)
    page = report.render_report(rows, outcome, {}, title="run", outputs_at="here").split("Held back", 1)[0]
    assert ("Pages of text or of black and white only, and printed halftones, went to span-x4 in place of "
            "realesrgan-x4plus, which would redraw their letters and dots: 2 images.") in page


def test_the_report_counts_the_pages_of_a_multi_page_master_that_went_to_the_page_networks() -> None:
    """A bound volume of 4 pages, 3 of them typed text and 1 a photograph, and one typed page."""
    x4 = json.dumps({"superres": {"scale": 4, "models": [], "bitonal_models": []}})
    metrics = {k: v for k, v in _row().items() if k.startswith(("consistency", "artefact", "clipp"))}
    volume = [{"page": n, "input_size": [10, 8], "output_size": [40, 32], "reduced_input_to": None, "metrics": metrics,
               "models": ["span-x4"] if n != 2 else ["realesrgan-x4plus"], "master_damage": None} for n in range(1, 5)]
    rows = [_row(models=["span-x4", "realesrgan-x4plus"], parameters_json=x4, pages=4, pages_json=json.dumps(volume)),
            _row(models=["span-x4"], parameters_json=x4)]
    outcome = gate.evaluate(rows)
    for n, r in enumerate(rows):
        r.update(source_key=f"incoming/{DAY}/scan-{n}.tif", output_key=None)
    page = report.render_report(rows, outcome, {}, title="run", outputs_at="here").split("Held back", 1)[0]
    assert "which would redraw their letters and dots: 2 images, 4 pages of them in all." in page


def test_the_report_says_what_the_derivatives_take_published_and_held() -> None:
    rows = [_row(output_bytes=2_500_000), _row(output_bytes=1_200_000_000), _row(output_bytes=700, artefact_score=0.3),
            _row(output_bytes=None), {"status": "failed", "verdict": None, "output_bytes": None}]
    outcome = gate.evaluate(rows)
    for n, r in enumerate(rows):
        r.update(source_key=f"incoming/{DAY}/scan-{n}.tif", output_key=None)
    page = report.render_report(rows, outcome, {}, title="run", outputs_at="here")
    assert "Derivatives written: 2 published, 1.2 GB; 1 held, 700 bytes." in page.split("Held back", 1)[0]
    assert "Derivatives written" not in report.render_report(rows[3:], gate.evaluate(rows[3:]), {}, title="run",
                                                             outputs_at="here")


def test_a_long_run_lists_its_first_rows_and_says_where_the_rest_are(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report, "MAX_LISTED", 3)
    rows = [_row(consistency_psnr_db=24.0 if n < 4 else 38.0) for n in range(5)]
    outcome = gate.evaluate(rows)
    for n, r in enumerate(rows):
        r.update(source_key=f"incoming/{DAY}/scan-{n}.tif", output_key=f"out/scan-{n}.tif")
    page = report.render_report(rows, outcome, {}, title="run", outputs_at="here", ledger_at="ledger/run=r/")
    held, every = page.split("Held back for review", 1)[1].split("<h2>Every image</h2>")
    assert [f"scan-{n}.tif" in held.split("</table>")[0] for n in range(5)] == [True] * 3 + [False] * 2
    assert "The first 3 of 4 held-back images" in held and "ledger/run=r/ has every row" in held
    assert every.count("<tr>") == 4 and "scan-3.tif" not in every  # a header and the first three
    assert "The first 3 of 5 images; ledger/run=r/ has every row." in every
    assert "<span class='quarantined'>4 quarantined</span>" in page  # the totals count every row


def test_gate_thresholds_are_configurable_per_run() -> None:
    rows = [_row(consistency_psnr_db=29.0)]
    gate.evaluate(rows, gate.Thresholds.with_overrides(["min_consistency_psnr_db=28"]))
    assert rows[0]["verdict"] == "passed"
    with pytest.raises(ValueError, match="min_consistency_psnr_db"):
        gate.Thresholds.with_overrides(["min_psnr=28"])
    for value in ("abc", "nan", "inf", ""):  # a NaN limit held no image to it; text raised float()'s own words
        said = f"gate setting 'min_consistency_psnr_db={value}': '{value}' is not a number"
        with pytest.raises(ValueError, match=said):
            gate.Thresholds.with_overrides([f"min_consistency_psnr_db={value}"])


def test_gate_accounts_for_dynamic_scaling() -> None:
    stages = json.dumps([{"stage": "superres", "details": {"reduced_input_to": [5, 4]}}])
    rows = [_row(stages_json=stages, output_width=10, output_height=8)]
    gate.evaluate(rows)
    assert rows[0]["verdict"] == "passed"


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def test_report_renders_in_chromium_with_every_image_loaded(batch_run: dict[str, Path], tmp_path: Path) -> None:
    chromium = shutil.which("chromium")
    assert chromium, "chromium is installed by `make test` (apt package chromium)"
    url = batch_run["report"].resolve().as_uri()
    dom = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'a'}", "--virtual-time-budget=5000",
                          "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
    assert 'data-images="' in dom
    loaded, total = dom.split('data-images="', 1)[1].split('"', 1)[0].split("/")
    assert int(total) >= 8 and loaded == total  # plots + before/after pairs, every one decoded
    assert "broken.png" in dom and "truncated" in dom  # the failed image and its reason are listed
    shot = tmp_path / "report.png"
    subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'b'}", "--window-size=1300,2200",
                    f"--screenshot={shot}", url], capture_output=True, timeout=120, check=True)
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float32)
    assert pixels.shape == (2200, 1300) and pixels.std() > 20  # a rendered page, not a blank one


@pytest.mark.parametrize("side", [600, 2600])  # the larger output is searched on every 2nd pixel
def test_the_preview_crop_finds_the_detail_and_its_source_region(side: int) -> None:
    from conftest import photo

    from enhance_ops.quality import report

    output = np.full((side, side, 3), 0.5, np.float32)
    output[side - 260 : side - 60, 40:240] = photo("astronaut", 200, top=150, left=150)  # the only detail
    preview = report.make_preview(output[::2, ::2].copy(), output)
    assert preview.after.shape == preview.before.shape == (256, 256, 3)
    textured = np.abs(preview.after - 0.5).max(axis=2) > 0
    assert textured.sum() > 0.8 * 200 * 200  # most of the patch is in the crop
    assert np.abs(preview.before - preview.after).mean() < 0.05  # the same region, enlarged
    as_samples = report.make_preview((output[::2, ::2] * 255 + 0.5).astype(np.uint8), (output * 65535 + 0.5).astype(np.uint16))
    assert as_samples.after.dtype == as_samples.before.dtype == np.float32  # integer samples give the same crops
    assert np.abs(as_samples.after - preview.after).max() < 1e-4 and np.abs(as_samples.before - preview.before).max() < 0.003
