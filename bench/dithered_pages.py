"""Dithered and screened black-and-white (and eight-colour) masters, descreened first or enlarged as their dots.

With ``superres.descreen`` on (the default) the dithered or screened parts of a bitonal
master are smoothed into tones before SPAN (``chain/dither.py``); off, its dots go to the
network as they are. Each master runs the whole chain both ways under ``fast-cpu`` at x2,
interleaved, after a warm-up; medians of the repetitions. Next to the time: the share of the
master found dithered and whether as a screen, the SR step's consistency with its input and
its halo fraction, and the gate's own verdict on the master's ledger row.

Masters: scikit-image's camera (512 x 512) by Pillow's Floyd-Steinberg (also through JPEG
and WebP at quality 90), a 4 x 4 Bayer matrix, a halftone screen at 45 degrees of periods 4,
5 and 6 px (``samples.halftone_screen``), ImageMagick's ordered dither, Riemersma dither and
halftones (h4x4a, h4x4o, h6x6a, c5x5b, h6x6o, h8x8a), a page of print with a dithered
photo set in it (``samples.page_with_dithered_photo``), and the astronaut error-diffused to
eight pure colours (``samples.eight_colour_dither``).

    .venv/bin/python bench/dithered_pages.py [--reps 3]   # writes bench/results/dithered_pages.json
"""
from __future__ import annotations

import sys

import numpy as np
from cpu_inference import ROOT
from skimage import data as skdata
from text_pages import routes_command, run_routes

sys.path.insert(0, str(ROOT / "tests"))
from photoshop_files import imagemagick_grey  # noqa: E402  (ImageMagick, as the tests run it)

from enhance_ops.chain.pipeline import Chain  # noqa: E402
from enhance_ops.samples import (  # noqa: E402
    eight_colour_dither,
    floyd_steinberg,
    halftone_screen,
    page_with_dithered_photo,
    through_codec,
)

ROUTES = {"descreened": (), "dots kept": ("superres.descreen=false",)}
BAYER = (np.array([[0, 8, 2, 10], [12, 4, 14, 6], [3, 11, 1, 9], [15, 7, 13, 5]]) + 0.5) / 16


def masters() -> dict[str, np.ndarray]:
    camera = skdata.camera()
    diffused = floyd_steinberg(camera)
    tiled = np.tile(BAYER, (camera.shape[0] // 4, camera.shape[1] // 4))
    return {
        "Floyd-Steinberg (Pillow), PNG": diffused,
        "Floyd-Steinberg, JPEG at quality 90": through_codec(diffused, "JPEG", 90),
        "Floyd-Steinberg, WebP at quality 90": through_codec(diffused, "WEBP", 90),
        "4 x 4 Bayer matrix": (camera / 255 > tiled).astype(np.float32)[..., None],
        **{f"screen at 45 degrees, period {p} px": halftone_screen(camera, p) for p in (4, 5, 6)},
        "ImageMagick's ordered dither o8x8": imagemagick_grey(camera, "-ordered-dither", "o8x8"),
        "ImageMagick's Riemersma dither": imagemagick_grey(camera, "-dither", "Riemersma", "-monochrome"),
        **{f"ImageMagick's halftone {h}": imagemagick_grey(camera, "-ordered-dither", h)
           for h in ("h4x4a", "h4x4o", "h6x6a", "c5x5b", "h6x6o", "h8x8a")},
        "page of print at 3x with a Floyd-Steinberg photo on 14 % of it": page_with_dithered_photo()[0],
        "astronaut, Floyd-Steinberg to eight pure colours (Pillow)": eight_colour_dither(skdata.astronaut()),
    }


def measure(reps: int) -> list[dict[str, object]]:
    chains = {route: Chain("fast-cpu", ("superres.scale=2", "superres.models=[]", *overrides))
              for route, overrides in ROUTES.items()}
    seconds, results, judged = run_routes(chains, masters(), reps)
    rows = []
    for (name, route), median in seconds.items():
        result, row = results[(name, route)], judged[(name, route)]
        found = next(s for s in result.stages if s.stage == "superres").details.get("descreened")
        m = result.metrics
        rows.append({"master": name, "route": route, "seconds": median,
                     "found_share": found["share"] if found else None, "screen": found["screen"] if found else None,
                     "consistency_psnr_db": m["consistency_psnr_db"], "halo_fraction": m["halo_fraction"],
                     "seam_score": m["seam_score"], "verdict": row["verdict"],
                     "failed_expectations": row["failed_expectations"]})
        print(f"{name:62} {route:11} {rows[-1]['seconds']:6.2f} s  {m['consistency_psnr_db']:5.1f} dB  "
              f"halo {m['halo_fraction']:.3f}  {row['verdict']}", flush=True)
    return rows


if __name__ == "__main__":
    sys.exit(routes_command(__doc__, "dithered_pages", "fast-cpu x2", measure))
