"""Pages of text under the nightly default (archive-photo x4): routed to SPAN, or through Real-ESRGAN.

With ``superres.text_pages`` on (the default) a grey or colour page of text goes to SPAN;
off, it goes through the preset's Real-ESRGAN as a photograph does. Each page runs the whole
chain both ways, interleaved, after a warm-up; medians of the repetitions. Next to the time:
the SR step's consistency with its input (PSNR, SSIM), its halo fraction, and the verdict
of the gate itself (``gate.evaluate`` at its default thresholds) on the page's ledger row:
published, or held for review.

Pages: scikit-image's page of print (191 × 384, unevenly lit) and its photograph of
handwriting (172 × 448), and a 512 × 512 crop of a typed page rendered yellowed and unevenly
lit (``samples.typed_page``), and the same crop as a scan of negative microfilm gives it
(``samples.microfilm_negative``), which is read as a negative of a page.

    .venv/bin/python bench/text_pages.py [--reps 3]   # writes bench/results/text_pages.json
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np
import torch
from cpu_inference import cpu_name, save_results
from skimage import data as skdata

from enhance_ops.chain.pipeline import Chain, ChainResult
from enhance_ops.quality import gate, ledger
from enhance_ops.samples import microfilm_negative, typed_page

ROUTES = {"SPAN (text_pages on)": (), "Real-ESRGAN (text_pages off)": ("superres.text_pages=false",)}


def pages() -> dict[str, np.ndarray]:
    typed = typed_page(yellowed=True, uneven=1.0)[200:712, 100:612]
    return {
        "scikit-image's page of print, 191 x 384": skdata.page().astype(np.float32)[..., None] / 255,
        "scikit-image's handwriting, 172 x 448": skdata.text().astype(np.float32)[..., None] / 255,
        "typed page, yellowed and unevenly lit, 512 x 512": typed,
        "the typed page off negative microfilm, 512 x 512": microfilm_negative(typed),
    }


def gate_row(chain: Chain, image: np.ndarray, result: ChainResult) -> dict[str, object]:
    """The part of a ledger row the gate reads, for a page that went through ``chain``."""
    return {"status": "ok", "parameters_json": ledger.parameters_json(chain.settings),
            "stages_json": json.dumps([dataclasses.asdict(s) for s in result.stages]),
            "input_width": image.shape[1], "input_height": image.shape[0],
            "output_width": result.pixels.shape[1], "output_height": result.pixels.shape[0], **result.metrics}


Run = tuple[str, str]  # (image, route)


def run_routes(chains: dict[str, Chain], images: dict[str, np.ndarray],
               reps: int) -> tuple[dict[Run, float], dict[Run, ChainResult], dict[Run, dict[str, object]]]:
    """Each image through each route's chain, interleaved, after a warm-up: the median
    seconds, the result, and the ledger row the gate judged, of each (image, route)."""
    times: dict[Run, list[float]] = {(name, route): [] for name in images for route in chains}
    results: dict[Run, ChainResult] = {}
    for name, image in images.items():  # warm-up, and the result each repetition makes again
        for route, chain in chains.items():
            results[(name, route)] = chain.run(image.copy())
    for _ in range(reps):
        for name, image in images.items():
            for route, chain in chains.items():
                start = time.perf_counter()
                chain.run(image.copy())
                times[(name, route)].append(time.perf_counter() - start)
    judged = {run: gate_row(chains[run[1]], images[run[0]], result) for run, result in results.items()}
    gate.evaluate(list(judged.values()))
    return {run: statistics.median(runs) for run, runs in times.items()}, results, judged


def routes_command(doc: str, name: str, preset: str, measure: Callable[[int], list[dict[str, object]]]) -> int:
    """A routes benchmark's command line: ``--reps`` rounds of ``measure``, its rows saved as ``name``."""
    parser = argparse.ArgumentParser(description=doc.split("\n", 1)[0])
    parser.add_argument("--reps", type=int, default=3)
    reps = parser.parse_args().reps
    report = {"machine": {"cpu": cpu_name(), "threads": torch.get_num_threads(), "torch": torch.__version__},
              "preset": preset, "repetitions": reps, "gate": dataclasses.asdict(gate.Thresholds()),
              "rows": measure(reps)}
    print(f"wrote {save_results(name, report)}")
    return 0


def measure(reps: int) -> list[dict[str, object]]:
    chains = {route: Chain("archive-photo", overrides) for route, overrides in ROUTES.items()}
    seconds, results, judged = run_routes(chains, pages(), reps)
    rows = []
    for (page, route), median in seconds.items():
        result, row = results[(page, route)], judged[(page, route)]
        m = result.metrics
        rows.append({"page": page, "route": route, "models": list(result.models), "seconds": median,
                     "consistency_psnr_db": m["consistency_psnr_db"], "consistency_ssim": m["consistency_ssim"],
                     "consistency_lpips": m["consistency_lpips"], "halo_fraction": m["halo_fraction"],
                     "artefact_score": m["artefact_score"], "verdict": row["verdict"],
                     "failed_expectations": row["failed_expectations"]})
        print(f"{page:50} {route:30} {rows[-1]['seconds']:7.2f} s  {m['consistency_psnr_db']:5.1f} dB  "
              f"SSIM {m['consistency_ssim']:.3f}  halo {m['halo_fraction']:.3f}  {row['verdict']}", flush=True)
    return rows


if __name__ == "__main__":
    sys.exit(routes_command(__doc__, "text_pages", "archive-photo x4", measure))
