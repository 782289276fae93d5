"""Printed halftones scanned in grey or colour under the nightly default (archive-photo x4): descreened, or as they are.

With ``superres.descreen`` on (the default) a screen found in a grey or colour master's
spectrum (``chain/screen.py``) is smoothed away before enlarging, and the master goes to
SPAN; off, the screen goes to the preset's Real-ESRGAN as a photograph does. Each master
runs the whole chain both ways, interleaved, after a warm-up; medians of the repetitions.
Next to the time: the period found, the SR step's consistency with its input and its halo
fraction, the gate's own verdict, and how near the derivative, reduced back to the
master's size, comes to the photograph the screen printed (PSNR, 8 px of border left out).

Masters (``samples.screened_print``: printed at four times the scan's resolution, scanned
in grey with the scanner's blur and noise): scikit-image's camera and coffee (256 x 256)
through screens of 3.2, 4, 6, 11 and 28 px (fundamentals of 2.26, 2.8, 4.2, 7.8 and 19.8 px:
the first a magazine's 133 lines per inch at 300 dpi, the last found at half the size), the camera's JPEG
at quality 75, the astronaut in colour with a screen per channel at 15, 75 and 45 degrees,
and a page of print (scikit-image's at 3x) with a screened photograph on 14 % of it.

    .venv/bin/python bench/screened_prints.py [--reps 3]   # writes bench/results/screened_prints.json
"""
from __future__ import annotations

import sys

import cv2
import numpy as np
from skimage import data as skdata
from text_pages import routes_command, run_routes

from enhance_ops.chain.pipeline import Chain
from enhance_ops.samples import page_photo, page_with_screened_photo, screened_print, through_codec

ROUTES = {"descreened": (), "screen kept": ("superres.descreen=false",)}
PAPER, INK = 0.92, 0.12  # screened_print's defaults


def _printed(photo: np.ndarray) -> np.ndarray:
    """What the screen stands for: the photo's tones between ink and paper, through the scanner's optics."""
    tones = INK + (PAPER - INK) * photo.astype(np.float32) / 255
    return cv2.GaussianBlur(tones, (0, 0), 0.6).reshape(tones.shape)


def masters() -> dict[str, tuple[np.ndarray, np.ndarray, tuple[slice, slice]]]:
    """Each master, the photograph it printed, and where that lies in the master."""
    camera, coffee = skdata.camera()[128:384, 128:384], skdata.coffee()[100:356, 200:456].mean(axis=2).astype(np.uint8)
    whole = (slice(None), slice(None))
    made = {f"{name}, screen of {p} px": (screened_print(photo, p), _printed(photo), whole)
            for name, photo in (("camera", camera), ("coffee", coffee)) for p in (3.2, 4, 6, 11, 28)}
    jpeg = through_codec(screened_print(camera, 6), "JPEG", 75)
    made["camera, screen of 6 px, JPEG at quality 75"] = (jpeg, _printed(camera), whole)
    astronaut = skdata.astronaut()[:256, :256]
    rosette = np.stack([screened_print(astronaut[..., c], 6, angle, seed=c)[..., 0]
                        for c, angle in enumerate((15, 75, 45))], axis=2)
    made["astronaut in colour, a screen of 6 px per ink at 15/75/45 degrees"] = (rosette, _printed(astronaut), whole)
    page, inset = page_with_screened_photo()
    printed = _printed(page_photo())[..., None]
    made["page of print at 3x with a screened photograph (6 px) on 14 % of it"] = (page, printed, inset)
    return made


def _fidelity(output: np.ndarray, printed: np.ndarray, where: tuple[slice, slice], size: tuple[int, int]) -> float:
    reduced = cv2.resize(output, size[::-1], interpolation=cv2.INTER_AREA).reshape(*size, output.shape[2])[where]
    printed = printed.reshape(reduced.shape)
    inside = np.s_[8:-8, 8:-8]
    return float(cv2.PSNR(reduced[inside].astype(np.float64), printed[inside].astype(np.float64), 1.0))


def measure(reps: int) -> list[dict[str, object]]:
    chains = {route: Chain("archive-photo", overrides) for route, overrides in ROUTES.items()}
    made = masters()
    seconds, results, judged = run_routes(chains, {name: image for name, (image, _, _) in made.items()}, reps)
    rows = []
    for (name, route), median in seconds.items():
        result, row = results[(name, route)], judged[(name, route)]
        image, printed, where = made[name]
        found = next(s for s in result.stages if s.stage == "superres").details.get("descreened")
        m = result.metrics
        rows.append({"master": name, "route": route, "models": list(result.models), "seconds": median,
                     "found_share": found["share"] if found else None,
                     "period_px": found["period_px"] if found else None,
                     "consistency_psnr_db": m["consistency_psnr_db"], "halo_fraction": m["halo_fraction"],
                     "fidelity_psnr_db": _fidelity(result.pixels, printed, where, image.shape[:2]),
                     "master_fidelity_psnr_db": _fidelity(image, printed, where, image.shape[:2]),
                     "verdict": row["verdict"], "failed_expectations": row["failed_expectations"]})
        print(f"{name:70} {route:11} {median:6.2f} s  {m['consistency_psnr_db']:5.1f} dB  halo "
              f"{m['halo_fraction']:.3f}  to the photograph {rows[-1]['fidelity_psnr_db']:5.1f} dB  {row['verdict']}",
              flush=True)
    return rows


if __name__ == "__main__":
    sys.exit(routes_command(__doc__, "screened_prints", "archive-photo x4", measure))
