"""The tables of docs/benchmarks.md, rendered from the last run's JSON, so that the page's
figures are the run's figures and not copied by hand.

    .venv/bin/python bench/tables.py    # reads bench/results/*.json, writes bench/results/tables.md

A benchmark whose JSON is missing is left out (and said to be).
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
OUT = RESULTS / "tables.md"
NETWORKS = {"realesrgan-x4plus": "Real-ESRGAN", "span-x4": "SPAN x4", "span-x2": "SPAN x2",
            "realesr-animevideov3-x4": "compact"}
REFERENCE_PATHS = {"reference fp32 whole": "reference whole", "reference fp32 plain tiles": "plain tiles",
                   "ncnn": "ncnn", "ours": "**ours**"}
CPU_PATHS = {"fp32 eager": "fp32 eager", "fp32 channels_last": "fp32 channels_last, packed",
             "bf16 channels_last unpacked": "bf16 channels_last, unpacked",
             "bf16 channels_last unfused": "bf16 channels_last, packed, activations apart",
             "bf16 channels_last": "**bf16 channels_last, packed, activations fused** (the chain's)"}
# before 2026-12-04 (a report without the unfused path) the chain's path had its activations apart
CPU_PATHS_UNFUSED = {**CPU_PATHS, "bf16 channels_last": "**bf16 channels_last, packed** (the chain's then)"}
CHAIN_COLUMNS = {"denoise": "denoise (FFDNet)", "colour_restore": "colour restore", "local_contrast": "local contrast",
                 "sharpen": "sharpen", "measures": "measures"}
MIB, GB = 2**20, 1e9


def _table(header: Iterable[str], rows: Iterable[Iterable[str]]) -> str:
    header = list(header)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join([*lines, *("| " + " | ".join(row) + " |" for row in rows)])


def _side(size: str) -> str:
    width, height = size.split("x")
    return f"{width}²" if width == height else f"{width}×{height}"


def _db(value: float) -> str:
    return "—" if math.isinf(value) else f"{value:.1f} dB"


def _pct(share: float) -> str:
    return f"{100 * share:.1f} %"


def reference_paths(report: dict[str, Any]) -> str:
    """Plain tiles compute what the whole image does up to one tile (128²), so only larger inputs show them."""
    rows, group = [], None
    for r in report["results"]:
        if r["path"] == "reference fp32 plain tiles" and int(r["input"].split("x")[0]) <= 128:
            continue
        first = (r["model"], r["input"]) != group
        group = (r["model"], r["input"])
        ours = r["path"] == "ours"
        bold = (lambda text: f"**{text}**") if ours else (lambda text: text)
        rows.append([r["model"] if first else "", _side(r["input"]) if first else "", str(r["rounds"]) if first else "",
                     REFERENCE_PATHS[r["path"]], f"{r['seconds']:.3f}", bold(f"{r['output_mp_per_s']:.3f}"),
                     bold(f"{r['speedup_vs_reference']:.2f}"), bold(f"{r['speedup_vs_ncnn']:.2f}"),
                     _db(r["psnr_vs_reference_db"])])
    speed = _table(["model", "input", "rounds", "path", "s / image", "output MP/s", "× reference", "× ncnn",
                    "PSNR vs reference"], rows)
    paths = list(dict.fromkeys(m["path"] for m in report["memory"]))
    memory = {(m["model"], m["path"]): m["peak_rss_bytes"] for m in report["memory"]}
    models = list(dict.fromkeys(m["model"] for m in report["memory"]))
    peaks = _table(["model", *(REFERENCE_PATHS[p].strip("*") for p in paths)],
                   [[m, *(f"{memory[m, p] / MIB:.0f} MiB" for p in paths)] for m in models])
    return f"{speed}\n\nPeak RSS, one path in a fresh process, {_side(report['memory'][0]['input'])} input:\n\n{peaks}"


def cpu_inference(report: dict[str, Any]) -> str:
    fused = any(r["path"] == "bf16 channels_last unfused" for r in report["results"])
    names = CPU_PATHS if fused else CPU_PATHS_UNFUSED
    return _table(["model", "path", "seconds", "output MP/s", "× fp32 eager", "PSNR vs fp32"],
                  [[r["model"], names[r["path"]], f"{r['seconds']:.3f}", f"{r['output_mp_per_s']:.3f}",
                    f"{r['speedup_vs_fp32_eager']:.2f}", _db(r["psnr_vs_fp32_db"])] for r in report["results"]])


def bf16_ends(report: dict[str, Any]) -> str:
    """bf16 throughout against bf16 with fp32 ends, each against the fp32 network."""
    rows = [[NETWORKS.get(r["model"], r["model"]), r["path"], f"{r['seconds_96px']:.3f} / {r['seconds_256px']:.3f}",
             _db(r["psnr_photos_median_db"]), f"{_db(r['psnr_photos_worst_db'])} ({r['worst_photo']})",
             _db(r["psnr_ramp_16bit_db"]),
             f"{r['on_bf16_grid']:.2f}", f"{r['black_shift_8bit']:+.2f} ({r['black_shift_8bit_fp32']:+.2f})"]
            for r in report["results"]]
    m = report["machine"]
    return (_table(["network", "path", "s / 96², 256²", "PSNR vs fp32, photos: median", "worst", "16-bit ramp",
                    "on bf16's grid", "black frame, 8-bit levels (fp32)"], rows)
            + f"\n\n{len(report['photos'])} photos ({', '.join(report['photos'])}); median of {report['reps']} "
              f"interleaved; {m['cpu']}, {m['cores']} threads, torch {m['torch']}.")


def chain_stages(report: dict[str, Any]) -> str:
    rows = []
    for preset, p in report["presets"].items():
        parts = p["superres_parts"]
        shown = [*parts, "superres", *CHAIN_COLUMNS]
        others = sum(s["share"] for name, s in p["stages"].items() if name not in shown)
        stages = [_pct(p["stages"][c]["share"]) if c in p["stages"] and not p["stages"][c]["decision"].startswith(
            "skipped") else "off" for c in CHAIN_COLUMNS]
        rows.append([f"{preset} ({', '.join(NETWORKS.get(m, m) for m in p['models'])})", f"{p['total_s']:.2f} s",
                     *(_pct(parts[k]["share"]) for k in ("network", "colour_guard", "integrity_checks")), *stages,
                     _pct(others)])
    return _table(["preset", "total", "SR network", "colour guard", "integrity checks", *CHAIN_COLUMNS.values(),
                   "others"], rows)


def preset_throughput(report: dict[str, Any]) -> str:
    rows, case = [], None
    for r in report["results"]:
        first = r["case"] != case
        case = r["case"]
        label = f"{r['case']} ({', '.join(NETWORKS.get(m, m) for m in r['models'])})" if first else ""
        rows.append([label, _side(r["input"]), f"{r['seconds']:.2f}", f"{r['output_mp_per_s']:.2f}",
                     _db(r["psnr_vs_fp32_db"]), _pct(r["sr_network_share"]),
                     f"{r['largest_other_stage'].replace('_', ' ')} {_pct(r['largest_other_share'])}",
                     f"{r['largest_chain_stage'].replace('_', ' ')} {_pct(r['largest_chain_stage_share'])}",
                     str(r["tiles"]), f"{r['computed_pixels_per_input_pixel']:.2f}×"])
    table = _table(["case", "input", "s / image", "output MP/s", "PSNR vs fp32", "SR network", "next largest",
                    "largest stage", "tiles", "computed pixels"], rows)
    peaks = ", ".join(f"{m['case']} {m['peak_rss_bytes'] / MIB:.0f} MiB at {_side(m['input'])}" for m in report["memory"])
    return f"{table}\n\nPeak RSS: {peaks}."


def shard_overlap(reports: list[dict[str, Any]]) -> str:
    rows = [[f"{r['preset']} x{r['scale']}", r["input"].split(" ")[0].replace("x", "×"), f"{r['wall_s']:.1f} s",
             f"{r['chain_s']:.1f} s", f"{r['superres_s']:.1f} s", f"{r['sr_network_s']:.1f} s",
             _pct(r["outside_chain_share"]), _pct(r["outside_superres_share"]), _pct(r["outside_sr_network_share"])]
            for report in reports for r in report["results"]]
    return _table(["preset", "crops", "wall", "in the chain", "in the superres stage", "in the SR network",
                   "outside the chain", "outside the superres stage", "outside the SR network"], rows)


def _worked(stages: dict[str, str]) -> str:
    """The stages that changed the image (the analyses always run)."""
    return ", ".join(name for name, decision in stages.items()
                     if not decision.startswith(("skipped", "analysed")) and name != "dynamic_range")


def large_scan_memory(report: dict[str, Any]) -> str:
    rows = [[f"{r['preset']}{' ' + ' '.join(r['overrides']) if r['overrides'] else ''} ({_worked(r['stages'])})",
             f"**{r['peak_rss_bytes'] / GB:.2f} GB**", f"{r['baseline_rss_bytes'] / GB:.2f} GB",
             f"{(r['peak_rss_bytes'] - r['output_float32_bytes']) / GB:.2f} GB", f"{r['seconds']:.0f} s",
             "met" if r["meets_target"] else f"missed ({r['target_bytes'] / GB:.2f} GB)"]
            for r in report["results"]]
    return _table(["preset (stages that changed the image)", "peak RSS", "baseline", "peak − float output", "wall",
                   "target"], rows)


def large_scan_shard(report: dict[str, Any]) -> str:
    rows = []
    for r in report["results"]:
        one, shard = r["one_image"], r["shard"]
        target = f"{one['target_bytes'] / GB:.2f} GB"
        rows.append(["one scan, Enhancer", f"{one['peak_rss_bytes'] / GB:.2f} GB", f"{one['seconds']:.0f} s", target])
        rows.append([f"{shard['images']} scans, one shard", f"**{shard['peak_rss_bytes'] / GB:.2f} GB**",
                     f"{shard['seconds']:.0f} s ({shard['chain_s']:.0f} s in the chain)", target])
    return _table(["run", "peak RSS", "wall", "target for one image (float output + 1.5 GB)"], rows)


def large_scan_pages(report: dict[str, Any]) -> str:
    rows = []
    for r in report["results"]:
        one, every = r["one_page"], r["all_pages"]
        target = f"{one['target_bytes'] / GB:.2f} GB"
        for name, run, peak in (("its first page alone", one, "{:.2f} GB"), (f"{r['pages']} pages, one TIFF", every, "**{:.2f} GB**")):
            outside = run["seconds"] - run["chain_s"]
            rows.append([name, peak.format(run["peak_rss_bytes"] / GB), f"{run['seconds']:.0f} s",
                         f"{outside:.1f} s ({outside / run['seconds']:.0%})", f"{run['output_bytes'] / GB:.2f} GB", target])
    return _table(["run", "peak RSS", "wall", "outside the chain", "derivative",
                   "target for one page (float output + 1.5 GB)"], rows)


def fading(report: dict[str, Any]) -> str:
    names = {"tuning": "tuning (4 photos)", "held-out": "held-out (5 TID2013 photos)", "all": "all 9"}
    rows = []
    for case, s in report["summary"].items():
        subset, strength = case.split("@")
        rows.append([f"{names[subset]} @ {strength}", *(f"{s[k]:.2f}" for k in ("faded", "grey_world", "restored")),
                     f"{s['restored/faded']:.2f}", *(f"{s[k]:.2f}" for k in ("chain", "chain_on_black", "chain_on_white")),
                     f"{s['diagnostic_true_tone'] / s['faded']:.2f}",
                     f"{s['diagnostic_true_chroma'] / s['faded']:.2f}"])
    faded = _table(["set @ fading strength", "faded", "grey-world", "restored", "restored / faded",
                    "the default chain", "… on the scanner's black", "… on white", "diagnostic: true tone",
                    "diagnostic: true chroma"], rows)
    unfaded = _table(["the 9 originals, unfaded, at", "the default chain: ΔE00 from itself", "taken for faded",
                      "their restoration's mean strength"],
                     [[f"{float(size):.0%} of their sides", f"{s['chain_from_itself']:.2f}", f"{s['restored']} of 9",
                       f"{s['strength']:.2f}"] for size, s in report["originals_summary"].items()])
    return f"{faded}\n\n{unfaded}"


def dark_levels(report: dict[str, Any]) -> str:
    even = _table(["model", "even level (of 255)", "grain σ", "network: level", "network: SSIM", "guarded: level",
                   "guarded: SSIM"],
                  [[r["model"], str(r["level"]), f"{r['grain']:g}", f"{r['network_level']:.2f}",
                    f"{r['network_ssim']:.3f}", f"**{r['guarded_level']:.2f}**", f"{r['guarded_ssim']:.3f}"]
                   for r in report["even_areas"]])
    felt = _table(["print on black felt (5/255, grain σ 2)", "colour guard", "print found", "consistency SSIM",
                   "PSNR (dB)", "LPIPS", "felt in the derivative (of 255)"],
                  [[r["print"], r["colour_guard"], "yes" if r["print_found"] else "no", f"{r['ssim']:.3f}",
                    f"{r['psnr_db']:.2f}", f"{r['lpips']:.4f}", f"{r['felt_level_out']:.1f}"]
                   for r in report["prints_on_felt"]])
    blacks = _table(["photograph, local contrast at clip 1.2", "darkest 1 %: L* in", "out", "darkest 0.1 %: L* in",
                     "out", "local contrast gain"],
                    [[r["photo"], f"{r['p1_in']:.2f}", f"**{r['p1_out']:.2f}**", f"{r['p0.1_in']:.2f}",
                      f"**{r['p0.1_out']:.2f}**", f"{r['local_contrast_gain']:.3f}"]
                     for r in report["local_contrast_blacks"]])
    return f"{even}\n\n{felt}\n\n{blacks}"


def even_cards(before: dict[str, Any], after: dict[str, Any]) -> str:
    """Prints on an even card through local contrast, by the stage before even areas took one curve of their level and after."""
    old = {(r["photo"], r["grain"]): r for r in before["cards"]}
    rows = []
    for r in after["cards"]:
        o = old[(r["photo"], r["grain"])]
        grain = "–" if r["card_grain_ratio"] is None else f"{o['card_grain_ratio']:.2f} → **{r['card_grain_ratio']:.2f}**"
        rows.append([r["photo"], f"{r['grain']:g}", f"{o['card_spread']:.2f} → **{r['card_spread']:.2f}**",
                     f"{o['beside_print']:+.2f} → **{r['beside_print']:+.2f}**", grain,
                     f"{o['print_gain']:.3f} → {r['print_gain']:.3f}", f"{r['even_fraction']:.2f}"])
    cards = _table(["print on a cream card", "grain σ (of 255)", "card's change, p1 to p99 apart (levels)",
                    "band beside the print against the card", "card's grain, after against before",
                    "print's local contrast gain", "even share"], rows)
    chained = {r["photo"]: r for r in before["through_chain"]}
    chain = _table(["print on a card, archive-photo x4 (grain σ 2)", "card's spread: before", "after",
                    "without local contrast", "card's level: in", "out", "out without local contrast"],
                   [[r["photo"], f"{chained[r['photo']]['spread_contrast_on']:.2f}", f"**{r['spread_contrast_on']:.2f}**",
                     f"{r['spread_contrast_off']:.2f}", f"{r['card_level_in']:.1f}", f"{r['card_level_contrast_on']:.1f}",
                     f"{r['card_level_contrast_off']:.1f}"] for r in after["through_chain"]])
    times = {r["image"]: r["median_ms"] for r in before["timings"]}
    timing = _table(["local contrast on", "before: ms", "after: ms"],
                    [[r["image"], f"{times[r['image']]:.0f}", f"{r['median_ms']:.0f}"] for r in after["timings"]])
    return (f"{cards}\n\n{chain}\n\n{timing}\n\nBefore → after; medians of 7 ({after['date']}; before: {before['date']}); "
            f"{after['machine']['cpu']}.")


def damage_found(report: dict[str, Any]) -> str:
    kinds = ("found", "missed, visible", "missed, slight", "missed, identical", "refused")
    rows = [[case["case"], *(str(case.get(kind, 0)) for kind in kinds)] for case in report["cases"]]
    lanes = next(iter(report["cost"].values()))["lanes"]
    costs = _table(["master", "check alone: ms", f"read, {lanes}: ms", "read, 1 lane: ms"],
                   [[name, *(f"{c[key] * 1000:.0f}" for key in ("check_s", "decode_s", "decode_one_lane_s"))]
                    for name, c in report["cost"].items()])
    return (_table(["master", *kinds], rows) + f"\n\n{report['trials']} changes each ({report['machine']}).\n\n"
            + costs + "\n\nThe read includes the check: beside the decoder on more than one lane, after it on one "
                      "(a CCITT page's, read in Python, always after it; a deflate page's only where libdeflate "
                      "refuses it).")


def tile_assembly(report: dict[str, Any]) -> str:
    """The tiled upscale's host work besides its network (a stand-in, timed apart)."""
    rows = [[r["tiling"], str(r["tile"]), str(r["tiles"]), f"{r['total_s'] * 1000:.1f}", f"{r['network_s'] * 1000:.1f}",
             f"**{r['assembly_s'] * 1000:.1f}**", f"{r['floor_s'] * 1000:.1f}"] for r in report["rows"]]
    m = report["machine"]
    return (_table(["tiling", "tile px", "tiles", "total ms", "stand-in network ms", "assembly ms",
                    "one clipped copy ms"], rows)
            + f"\n\n{report['input']}, median of {report['repetitions']} interleaved; {m['cpu']}, "
              f"{m['threads']} threads, torch {m['torch']}.")


def tile_stretch(report: dict[str, Any]) -> str:
    """Tiles stretched to save one along an axis: layouts over scan sizes, and timed upscales."""
    def device(r: dict[str, Any]) -> str:
        return f"{NETWORKS[r['model']]}, {r['device'].upper()} ({r['tile']} px)"

    sweeps = [[device(r), r["sides"], f"{r['mean_ratio']:.3f}", f"{r['least_ratio']:.3f}", _pct(r["share_saving"])]
              for r in report["sweeps"]]
    sizes = [[device(r), _side(r["input"]), f"{r['tiles_before']} → {r['tiles_after']}",
              f"{r['computed_before']:.2f} → {r['computed_after']:.2f}"]
             for r in report["sizes"] if r["tiles_before"] != r["tiles_after"]]
    timed = [[NETWORKS[r["model"]], _side(r["input"]), f"{r['tiles_before']} → {r['tiles_after']}",
              f"{r['computed_before']:.2f} → {r['computed_after']:.2f}", f"{r['s_before']:.2f}", f"**{r['s_after']:.2f}**",
              f"{round(100 * (1 - r['s_after'] / r['s_before'])) + 0} %", _db(r["psnr_between_db"])] for r in report["timed"]]
    m = report["machine"]
    return (_table(["model, device (tile)", "sides, width and height", "computed pixels, after / before (mean)",
                    "least", "sizes saving"], sweeps)
            + "\n\n" + _table(["model, device (tile)", "scan", "tiles", "computed per input pixel"], sizes)
            + "\n\n" + _table(["model", "input", "tiles", "computed per input pixel", "before: s", "after: s", "less time",
                               "outputs apart"], timed)
            + f"\n\nTimed: the chain's upscale_rgb, precision {report['timed'][0]['precision']}, both layouts in every "
              f"round, medians; {m['cpu']}, {m['threads']} threads, torch {m['torch']}.")


def text_pages(report: dict[str, Any]) -> str:
    """Pages of text under archive-photo x4, routed to SPAN or through Real-ESRGAN."""
    rows = [[r["page"], r["route"], f"{r['seconds']:.2f}", _db(r["consistency_psnr_db"]), f"{r['consistency_ssim']:.3f}",
             f"{r['halo_fraction']:.3f}", "passed" if r["verdict"] == "passed" else f"**{r['verdict']}**"]
            for r in report["rows"]]
    m, g = report["machine"], report["gate"]
    return (_table(["page", "route", "s / page", "consistency PSNR", "SSIM", "halo", "gate"], rows)
            + f"\n\nWhole chain, median of {report['repetitions']} interleaved; gate: PSNR >= {g['min_consistency_psnr_db']:g} dB, "
              f"SSIM >= {g['min_consistency_ssim']:g}, LPIPS <= {g['max_consistency_lpips']:g}, artefact score <= "
              f"{g['max_artefact_score']:g}; {m['cpu']}, {m['threads']} threads, torch {m['torch']}.")


def dithered_pages(report: dict[str, Any]) -> str:
    """Dithered and screened bitonal masters under fast-cpu x2, descreened first or not."""
    def found(r: dict[str, Any]) -> str:
        if r["found_share"] is None:
            return "–"
        return f"{r['found_share']:.0%}{', a screen' if r['screen'] else ''}"

    rows = [[r["master"], r["route"], found(r), f"{r['seconds']:.2f}", _db(r["consistency_psnr_db"]),
             f"{r['halo_fraction']:.3f}", "passed" if r["verdict"] == "passed" else f"**{r['verdict']}**"]
            for r in report["rows"]]
    m = report["machine"]
    return (_table(["master", "route", "found", "s / image", "consistency PSNR", "halo", "gate"], rows)
            + f"\n\nWhole chain ({report['preset']}), median of {report['repetitions']} interleaved; the gate at its "
              f"defaults; {m['cpu']}, {m['threads']} threads, torch {m['torch']}.")


def screened_prints(report: dict[str, Any]) -> str:
    """Printed halftones scanned in grey or colour under archive-photo x4, descreened first or not."""
    def found(r: dict[str, Any]) -> str:
        return "–" if r["found_share"] is None else f"{r['found_share']:.0%}, {r['period_px']:.1f} px"

    rows = [[r["master"], r["route"], " then ".join(r["models"]), found(r), f"{r['seconds']:.2f}",
             _db(r["consistency_psnr_db"]), f"{r['halo_fraction']:.3f}", _db(r["fidelity_psnr_db"]),
             "passed" if r["verdict"] == "passed" else f"**{r['verdict']}**"] for r in report["rows"]]
    m = report["machine"]
    return (_table(["master", "route", "models", "screen found", "s / image", "consistency PSNR", "halo",
                    "to the photograph", "gate"], rows)
            + f"\n\nWhole chain ({report['preset']}), median of {report['repetitions']} interleaved; the gate at its "
              f"defaults; \"to the photograph\": the derivative reduced to the master's size against the photograph "
              f"the screen printed; {m['cpu']}, {m['threads']} threads, torch {m['torch']}.")


def master_decoding(before: dict[str, Any], after: dict[str, Any]) -> str:
    """Reading CMYK, Lab and JPEG 2000 masters, by the decoder before their work went into lanes and after."""
    seconds = lambda report: {(r["case"], r["lanes"]): r["s"] for r in report["rows"]}  # noqa: E731
    old, new = seconds(before), seconds(after)
    lanes = [setting for _, setting in new if setting != "1 lane"][:1] or ["1 lane"]
    rows = [[case, f"{old.get((case, setting), math.nan):.2f}", f"**{s:.2f}**", f"{new.get((case, '1 lane'), math.nan):.2f}"]
            for (case, setting), s in new.items() if setting == lanes[0]]
    return (_table(["master, 20 Mpx", f"before: s, {lanes[0]}", f"after: s, {lanes[0]}", "after: s, 1 lane"], rows)
            + f"\n\nMedians of {after['reps']} interleaved ({after['date']}; before: {before['date']}); {after['machine']}.")


def photoshop_reading(report: dict[str, Any]) -> str:
    """Reading a Photoshop master, by this reader on the lanes and on one, and by Pillow."""
    rows = [[r["case"], f"{r['file_mb']:.0f}", r["path"] if r["path"] == "Pillow" else f"this one, {r['path']}",
             f"{r['s']:.3f}", f"{r['peak_gb']:.2f}"] for r in report["rows"]]
    agree = {r["same_samples_as_pillow"] for r in report["rows"]} - {None}
    return (_table(["PSD, 20 Mpx, run-length", "file MB", "reader", "s", "peak GB above the file"], rows)
            + f"\n\nSamples the same as Pillow's where it reads them: {'yes' if agree == {True} else 'NO'}. "
              f"Medians of {report['reps']} interleaved ({report['date']}); {report['machine']}.")


def derivative_encoding(before: dict[str, Any], after: dict[str, Any]) -> str:
    """Writing PNG and TIFF derivatives, by the encoders before their deflate went into lanes and after."""
    key = lambda r: (r["picture"], r["format"], r["bits"])  # noqa: E731
    old = {(*key(r), r["lanes"]): r for r in before["rows"]}
    new = {(*key(r), r["lanes"]): r for r in after["rows"]}
    lanes = next(r["lanes"] for r in after["rows"] if r["lanes"] != "1 lane")
    rows = [[r["picture"], f"{r['format']} {r['bits']}-bit", f"{old[(*key(r), lanes)]['s']:.2f}", f"**{r['s']:.2f}**",
             f"{new[(*key(r), '1 lane')]['s']:.2f}", f"{old[(*key(r), lanes)]['bytes'] / 1e6:.1f}", f"{r['bytes'] / 1e6:.1f}"]
            for (*_, setting), r in new.items() if setting == lanes]
    return (_table(["picture, 20 Mpx", "derivative", f"before: s, {lanes}", f"after: s, {lanes}", "after: s, 1 lane",
                    "before: MB", "after: MB"], rows)
            + f"\n\nMedians of {after['reps']} interleaved ({after['date']}; before: {before['date']}); {after['machine']}.")


def lpips_precision(report: dict[str, Any]) -> str:
    """The consistency LPIPS in fp32 and with a bf16 backbone, and the integrity checks with each."""
    paths = list(report["calibration_max_from_fp32"])
    fp32, ours = paths[0], paths[-1]

    def less(row: dict[str, Any]) -> str:
        return f"{round(100 * (1 - row[f'ms {ours}'] / row[f'ms {fp32}'])) + 0} %"

    timing = [[_side(f"{r['shape'][1]}x{r['shape'][0]}"), *(f"{r[f'ms {p}']:.1f}" for p in paths), less(r),
               f"{r[f'value {fp32}']:.5f}", f"{r[f'value {ours}']:.5f}"] for r in report["lpips"]]
    apart = [[p, f"{report['calibration_max_from_fp32'][p]:.1e}", f"{report['consistency_max_from_fp32'][p]:.1e}"]
             for p in paths[1:]]
    checks = [[r["case"], f"{r[f'ms {fp32}']:.0f}", f"{r[f'ms {ours}']:.0f}", less(r)] for r in report["integrity_checks"]]
    return (_table(["LPIPS input", *(f"ms, {p}" for p in paths), "less time", f"value, {fp32}", f"value, {ours}"], timing)
            + "\n\n" + _table(["path", "calibration pairs: most from fp32", "consistency pairs: most from fp32"], apart)
            + "\n\n" + _table(["SR integrity checks", f"ms, LPIPS {fp32}", f"ms, LPIPS {ours}", "less time"], checks)
            + f"\n\nMedians of {report['reps']} interleaved ({report['date']}); {report['machine']}.")


def colour_conversion(report: dict[str, Any]) -> str:
    """Lab → sRGB and linear → sRGB, OpenCV's or numpy's against the chain's, and the stages that convert."""
    def agreement(r: dict[str, Any]) -> str:
        if "round_trip_max_levels" in r:
            return f"back through Lab: {r['round_trip_max_levels']:.2f} at most, {r['round_trip_mean_levels']:.2f} mean"
        return f"{r['formula_max_levels']:.2f} from the formula at most"

    conversions = [[r["picture"], r["conversion"], r["path"], f"{r['ms']:.1f}", agreement(r)] for r in report["conversions"]]
    paths = [k.removeprefix("ms ") for k in report["stages"][0] if k.startswith("ms ")]
    stages = [[r["stage"], *(f"{r[f'ms {p}']:.0f}" for p in paths),
               f"{round(100 * (1 - r[f'ms {paths[1]}'] / r[f'ms {paths[0]}'])) + 0} %", f"{r['outputs_apart_max_levels']:.1f}"]
              for r in report["stages"]]
    return (_table(["picture", "conversion", "path", "ms", "16-bit levels off"], conversions)
            + "\n\n" + _table(["stage", *(f"ms, with {p}" for p in paths), "less time", "outputs apart, 16-bit levels"],
                               stages)
            + f"\n\n{report['image']}; conversions of its strips ({report['strip_rows']} rows) and stages in the "
              f"chain's strip lanes; medians of {report['reps']} interleaved; {report['date']}, {report['machine']}.")


def delivery_space(report: dict[str, Any]) -> str:
    """The colour-space stage into a delivery space: matrix paths, counted or not, and LittleCMS's."""
    rows = [[r["case"], f"{r['ms']:.0f}", f"{100 * r['out_of_gamut']:.2f} %" if "out_of_gamut" in r else "—"]
            for r in report["cases"]]
    apart = report["lookup_table_from_matrix_levels"]
    return (_table(["master's profile → target", "ms", "pixels outside the target"], rows)
            + f"\n\nThe lookup-table path from the matrix path from sRGB: {apart['max']:.0f} 16-bit levels at most, "
              f"{apart['mean']:.1f} mean. {report['image']}; the stage in the chain's strip lanes; medians of "
              f"{report['reps']} interleaved; {report['date']}, {report['machine']}.")


def _gpu_machine(report: dict[str, Any]) -> str:
    m = report["machine"]
    if "gpu" not in m:
        return f"no GPU: {m['host']}, {m['cpu_threads']} threads, torch {m['torch']} (a check of the script, not GPU figures)"
    cudnn = f"{m['cudnn'] // 10000}.{m['cudnn'] % 10000 // 100}.{m['cudnn'] % 100}"
    return (f"{m['gpu']} (compute capability {m['capability']}, {m['multiprocessors']} SMs, {m['gpu_memory_gib']} GiB; "
            f"driver, SM clock now and max, power limit: {m['driver_and_clocks']}), torch {m['torch']}, CUDA {m['cuda']}, "
            f"cuDNN {cudnn}; host {m['host']}, {m['cpu_threads']} threads; input {report['image']}")


def gpu_paths(report: dict[str, Any]) -> str:
    """Every path of every model; PSNR against the model's fp32 reference (TF32 off), where the path makes one image."""
    rows = []
    for r in report["results"]:
        name = NETWORKS.get(r["model"], r["model"])
        if "skipped" in r:
            rows.append([name, r["path"], f"skipped: {r['skipped']}", "", "", "", ""])
            continue
        extra = f" (compiled in {r['compile_s']} s)" if "compile_s" in r else ""
        rows.append([name, r["path"] + extra, f"{r['seconds'] * 1000:.1f}", f"{r['output_mp_s']:.1f}",
                     f"{r['effective_tflop_s']:.1f}", str(r.get("peak_device_gib", "—")),
                     _db(r["psnr_vs_reference_db"]) if "psnr_vs_reference_db" in r else "—"])
    onnx = [f"{NETWORKS.get(o['model'], o['model'])}: " + (o["skipped"] if "skipped" in o else
            f"export vs torch on onnxruntime's CPU provider {o['cpu_agreement_psnr_db']} dB; providers "
            f"{', '.join(o['providers'])}; tensorrt package {'present' if o['tensorrt_package'] else 'absent'}")
            for o in report.get("onnx", [])]
    return "\n".join([_gpu_machine(report), "",
                      _table(["network", "path", "ms / image", "output MP/s", "eff. TFLOP/s", "peak GiB", "PSNR vs fp32"], rows),
                      *(["", "ONNX: " + "; ".join(onnx)] if onnx else [])])


def gpu_chains(report: dict[str, Any]) -> str:
    """Each preset's whole chain with its networks on the GPU and its other stages on the host."""
    rows = [[r["case"], f"{r['seconds_serial']:.3f}", f"{r['output_mp_s_serial']:.2f}", f"{r['seconds_two_lanes']:.3f}",
             _pct(r["network_share"]), f"{r['largest_other']} {_pct(r['largest_other_share'])}"] for r in report["chains"]]
    return _table(["case", "s / image", "output MP/s", "two chains at once: s / image", "network share", "largest other"],
                  rows)


SECTIONS: list[tuple[str, tuple[str, ...], Callable[..., str]]] = [
    ("Our path against the reference paths (reference_paths.py)", ("reference_paths",), reference_paths),
    ("The same on a VM with AMX (reference_paths.py, kept as reference_paths_amx.json)", ("reference_paths_amx",),
     reference_paths),
    ("The EPYC VM again, activations fused (reference_paths.py, kept as reference_paths_epyc_fused.json)",
     ("reference_paths_epyc_fused",), reference_paths),
    ("The EPYC VM with fp32 ends (reference_paths.py, kept as reference_paths_epyc_ends.json)",
     ("reference_paths_epyc_ends",), reference_paths),
    ("Precision and layout per model (cpu_inference.py)", ("cpu_inference",), cpu_inference),
    ("The same on a VM with AMX, activations fused (cpu_inference.py, kept as cpu_inference_amx.json)",
     ("cpu_inference_amx",), cpu_inference),
    ("The EPYC VM again, activations fused (cpu_inference.py, kept as cpu_inference_epyc_fused.json)",
     ("cpu_inference_epyc_fused",), cpu_inference),
    ("bf16 with fp32 ends (bf16_ends.py)", ("bf16_ends",), bf16_ends),
    ("Where a chain spends its time (chain_stages.py)", ("chain_stages",), chain_stages),
    ("Whole presets on larger photos (preset_throughput.py)", ("preset_throughput",), preset_throughput),
    ("The same on a VM with AMX (preset_throughput.py, kept as preset_throughput_amx.json)",
     ("preset_throughput_amx",), preset_throughput),
    ("Time outside the chain in a shard (shard_overlap.py)", ("shard_overlap_96", "shard_overlap_256"),
     lambda *reports: shard_overlap(list(reports))),
    ("The same on a VM with AMX (shard_overlap.py, kept as shard_overlap_96_amx.json and shard_overlap_256_amx.json)",
     ("shard_overlap_96_amx", "shard_overlap_256_amx"), lambda *reports: shard_overlap(list(reports))),
    ("Memory on a large scan (large_scan_memory.py)", ("large_scan_memory",), large_scan_memory),
    ("The same on a VM with AMX, strips in two lanes (large_scan_memory.py, kept as large_scan_memory_amx.json)",
     ("large_scan_memory_amx",), large_scan_memory),
    ("A shard of large scans (large_scan_memory.py --shard)", ("large_scan_shard",), large_scan_shard),
    ("A multi-page TIFF of large scans (large_scan_memory.py --pages)", ("large_scan_pages",), large_scan_pages),
    ("The tiled upscale's host work (tile_assembly.py)", ("tile_assembly",), tile_assembly),
    ("Tiles stretched to save one (tile_stretch.py)", ("tile_stretch",), tile_stretch),
    ("Lab back to sRGB (colour_conversion.py)", ("colour_conversion",), colour_conversion),
    ("Into a delivery colour space (delivery_space.py)", ("delivery_space",), delivery_space),
    ("LPIPS with a bf16 backbone (lpips_precision.py)", ("lpips_precision",), lpips_precision),
    ("Pages of text under the nightly default (text_pages.py)", ("text_pages",), text_pages),
    ("Dithered and screened black-and-white masters (dithered_pages.py)", ("dithered_pages",), dithered_pages),
    ("Printed halftones scanned in grey or colour (screened_prints.py)", ("screened_prints",), screened_prints),
    ("Faded-colour restoration (fading_benchmark.py), mean CIEDE2000", ("fading",), fading),
    ("Dark, even areas through the photo models (dark_levels.py)", ("dark_levels",), dark_levels),
    ("Even cards through local contrast (even_cards.py; before: kept as even_cards_before.json)",
     ("even_cards_before", "even_cards"), even_cards),
    ("Damage found in masters' pixel data (damage_found.py)", ("damage_found",), damage_found),
    ("Reading CMYK, CIELab and JPEG 2000 masters (master_decoding.py; before: kept as master_decoding_before.json)",
     ("master_decoding_before", "master_decoding"), master_decoding),
    ("Reading Photoshop masters (photoshop_reading.py)", ("photoshop_reading",), photoshop_reading),
    ("Writing PNG and TIFF derivatives (derivative_encoding.py; before: kept as derivative_encoding_before.json)",
     ("derivative_encoding_before", "derivative_encoding"), derivative_encoding),
    ("GPU paths (gpu_inference.py, the last run on a CUDA machine)", ("gpu_inference",), gpu_paths),
    ("GPU paths on an H200 (gpu_inference.py, kept as gpu_inference_h200.json)", ("gpu_inference_h200",), gpu_paths),
    ("Whole chains on an H200 (gpu_inference.py, kept as gpu_inference_h200.json)", ("gpu_inference_h200",), gpu_chains),
]


def render(results: Path = RESULTS) -> str:
    out = ["# Benchmark tables of the last run", "",
           "Rendered by bench/tables.py from the JSON beside this file; docs/benchmarks.md explains them.", ""]
    for title, names, render_section in SECTIONS:
        paths = [results / f"{name}.json" for name in names]
        missing = [p.name for p in paths if not p.exists()]
        body = f"(not run: {', '.join(missing)} missing)" if missing else \
            render_section(*(json.loads(p.read_text()) for p in paths))
        out += [f"## {title}", "", body, ""]
    return "\n".join(out)


if __name__ == "__main__":
    OUT.write_text(render())
    print(f"written to {OUT}")
