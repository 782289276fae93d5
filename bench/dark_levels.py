"""Dark, even areas through each photo model, with the colour guard and without it.

Real-ESRGAN crushes a dark, even area towards black; SSIM, relative in the dark, reads that
as structure lost, and the gate held a print scanned on black felt for review. The colour
guard (``superres.keep_input_colour``) keeps the input's low-frequency lightness in the
shadows. For each model: an even grey at several levels, noise-free and with a scanner's
grain (σ 2/255), 8-bit, 64 x 64: the output's level (its middle, away from the edges) and
the SSIM of the output reduced back against the input; then prints scanned on black felt
(5/255 with grain, 24 px around them) through the whole default chain at x4: consistency
SSIM, PSNR and LPIPS, and the felt's level in the derivative. Last, local contrast (CLAHE,
archive-photo's clip limit 1.2) on photographs whose black it lifted: their darkest 1 % and
0.1 % (L*) before and after, and how much it raised local contrast.

    .venv/bin/python bench/dark_levels.py   # writes bench/results/dark_levels.json
"""
from __future__ import annotations

import sys

import cv2
import numpy as np
from cpu_inference import cpu_name, save_and_show, without_options
from skimage import data as skdata

from enhance_ops.chain import pipeline, postprocess, superres
from enhance_ops.chain.colour_math import lightness, luma
from enhance_ops.degrade import fade
from enhance_ops.quality.metrics import ssim_map

LEVELS = (2, 5, 10, 20, 40)  # of 255
GRAIN = 2.0  # of 255
FELT, MARGIN = 0.02, 24


def scanned(image: np.ndarray, grain: float, seed: int = 0) -> np.ndarray:
    """``image`` with a scanner's grain, at 8 bits."""
    noisy = image + np.random.default_rng(seed).normal(0, grain / 255, image.shape)
    return (np.round(np.clip(noisy, 0, 1) * 255) / 255).astype(np.float32)


def even_areas(chain: pipeline.Chain) -> list[dict[str, object]]:
    (network, scale, tiling), *_ = chain.sr_models(chain.model_names)
    rows = []
    for level in LEVELS:
        for grain in (0.0, GRAIN):
            source = scanned(np.full((64, 64, 3), level / 255, np.float32), grain)
            raw = superres.upscale(source, network, scale, tiling=tiling, inference=chain.inference)
            row: dict[str, object] = {"model": chain.model_names[0], "level": level, "grain": grain}
            for name, out in (("network", raw), ("guarded", superres.keep_input_colour(raw.copy(), source))):
                back = cv2.resize(out, (64, 64), interpolation=cv2.INTER_AREA)
                row[f"{name}_level"] = round(float(out[16:-16, 16:-16].mean()) * 255, 2)
                row[f"{name}_ssim"] = round(float(ssim_map(back, source)[8:-8, 8:-8].mean()), 4)
            rows.append(row)
    return rows


def prints_on_felt() -> list[dict[str, object]]:
    photos = {"faded coffee": fade(skdata.coffee()[::2, ::2].astype(np.float32) / 255, 1.0),
              "astronaut": skdata.astronaut()[::2, ::2].astype(np.float32) / 255,
              "camera, grey": skdata.camera()[::2, ::2, None].astype(np.float32) / 255}
    chains = {"guard on": pipeline.Chain("archive-photo"),
              "guard off": pipeline.Chain("archive-photo", ("superres.colour_guard=false",))}
    rows = []
    for name, photo in photos.items():
        scan = scanned(np.pad(photo, ((MARGIN, MARGIN), (MARGIN, MARGIN), (0, 0)), constant_values=FELT), GRAIN)
        for guard, chain in chains.items():
            result = chain.run(np.repeat(scan, 3, axis=2) if scan.shape[2] == 1 else scan)
            felt = result.pixels[: MARGIN * 4 - 8]
            rows.append({"print": name, "colour_guard": guard,
                         "print_found": any("scanner's background" in n for n in result.notes),
                         **{k: round(result.metrics[f"consistency_{k}"], 4) for k in ("ssim", "psnr_db", "lpips")},
                         "felt_level_in": round(float(luma(scan[: MARGIN - 2]).mean()) * 255, 2),
                         "felt_level_out": round(float(luma(felt).mean()) * 255, 2)})
    return rows


def local_std(l_star: np.ndarray) -> float:
    """Local contrast: the mean of the standard deviation over 16-px windows."""
    mean = cv2.blur(l_star, (16, 16))
    return float(np.sqrt(np.maximum(cv2.blur(l_star * l_star, (16, 16)) - mean * mean, 0)).mean())


def photographs_blacks() -> list[dict[str, object]]:
    rows = []
    for name in ("hubble_deep_field", "astronaut", "retina", "rocket", "coffee", "chelsea"):
        photo = getattr(skdata, name)().astype(np.float32) / 255
        out, _ = postprocess.local_contrast(photo, clip_limit=1.2)
        before, after = lightness(photo) * 100, lightness(out) * 100
        rows.append({"photo": name, **{f"p{q:g}_{k}": round(float(np.percentile(im, q)), 2)
                                       for q in (1, 0.1) for k, im in (("in", before), ("out", after))},
                     "local_contrast_gain": round(local_std(after) / local_std(before), 3)})
    return rows


def main() -> int:
    without_options(__doc__)
    rows = [row for preset in ("archive-photo", "fidelity", "fast-cpu") for row in even_areas(pipeline.Chain(preset))]
    report = {"machine": {"cpu": cpu_name()}, "even_areas": rows, "prints_on_felt": prints_on_felt(),
              "local_contrast_blacks": photographs_blacks()}
    save_and_show("dark_levels", report, ("even_areas", "prints_on_felt", "local_contrast_blacks"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
