"""Lab back to sRGB, and the two stages that go through Lab, at a GPU worker's output size.

Local contrast (CLAHE on L*) and faded-colour restoration take every strip of the output to
CIE Lab and back; on the H200 local contrast was the largest CPU stage of the archive-photo
preset (docs/benchmarks.md, *GPU paths*). On a 3840 × 2160 photo (the x4 output of a
960 × 540 one), interleaved, medians:
- Lab → sRGB in the chain's strips and lanes, on the photo and on it darkened (a dark scan,
  much of it on Lab's linear segment near black): OpenCV's float ``cvtColor`` (the chain's
  conversion before 2026-12-06) against ``colour_math.lab_to_srgb`` (the formula, with the
  sRGB curve looked up), each with how far a 16-bit photo comes back from sRGB → Lab → sRGB;
- linear → sRGB, likewise: numpy's power (the formula) against
  ``colour_math.linear_to_srgb``, with each one's largest difference from the formula in
  float64;
- the two stages whole, as the chain runs them (in strip lanes), with either conversion in
  their modules, and how far apart their outputs are.

    .venv/bin/python bench/colour_conversion.py    # writes bench/results/colour_conversion.json
"""
from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date

import cv2
import numpy as np
from cpu_inference import cpu_name, interleaved_medians, save_results, without_options
from skimage import data as skdata

from enhance_ops import allocator
from enhance_ops.chain import color, colour_math, postprocess, strips
from enhance_ops.degrade import fade

SIZE = (3840, 2160)
REPS = 9
LEVEL = 1 / 65535


def opencv_lab_to_srgb(lab: np.ndarray) -> np.ndarray:
    flat = np.ascontiguousarray(lab.reshape(-1, 1, 3), dtype=np.float32)
    return np.clip(cv2.cvtColor(flat, cv2.COLOR_Lab2RGB), 0.0, 1.0).reshape(lab.shape)


LAB_TO_SRGB = {"OpenCV cvtColor (float)": opencv_lab_to_srgb, "the chain's lab_to_srgb": colour_math.lab_to_srgb}
# the formula by numpy's power: the chain's linear_to_srgb before 2026-12-06, its lookup table's source now
LINEAR_TO_SRGB = {"numpy power (the formula)": colour_math._linear_to_srgb_exact,
                  "the chain's linear_to_srgb (looked up)": colour_math.linear_to_srgb}


@contextmanager
def stages_converting_with(conversion: Callable[[np.ndarray], np.ndarray]) -> Iterator[None]:
    """The stages with ``conversion`` as their Lab → sRGB, as they were when it was OpenCV's."""
    saved = postprocess.lab_to_srgb, color.lab_to_srgb
    postprocess.lab_to_srgb = color.lab_to_srgb = conversion
    try:
        yield
    finally:
        postprocess.lab_to_srgb, color.lab_to_srgb = saved


def photo() -> np.ndarray:
    """The astronaut enlarged to the output size, at 16-bit precision."""
    rgb = cv2.resize(skdata.astronaut(), SIZE, interpolation=cv2.INTER_CUBIC).astype(np.float32) / 255
    return np.round(np.clip(rgb, 0, 1) * 65535).astype(np.float32) / 65535


def _in_lanes(conversion: Callable[[np.ndarray], np.ndarray], parts: list[np.ndarray]) -> list[np.ndarray]:
    """Each strip converted, as many at once as the chain's stages run them."""
    return strips.in_lanes([lambda part=part: conversion(part) for part in parts])


def conversions(picture: str, image: np.ndarray) -> list[dict[str, object]]:
    bands = list(strips.bands(*image.shape[:2]))
    labs = [colour_math.srgb_to_lab(image[y0:y1]) for y0, y1 in bands]
    linears = [colour_math.srgb_to_linear(image[y0:y1]) for y0, y1 in bands]
    ramp = np.linspace(0, 1, 2_000_001, dtype=np.float32)
    formula = np.where(ramp <= 0.0031308, 12.92 * ramp.astype(np.float64), 1.055 * ramp.astype(np.float64) ** (1 / 2.4) - 0.055)
    rows = []
    lab_times = interleaved_medians({name: lambda f=f: _in_lanes(f, labs) for name, f in LAB_TO_SRGB.items()},
                                    REPS)
    for name, f in LAB_TO_SRGB.items():
        error = np.abs(np.concatenate([f(lab) for lab in labs]) - image) / LEVEL
        rows.append({"picture": picture, "conversion": "Lab → sRGB", "path": name, "ms": lab_times[name] * 1e3,
                     "round_trip_max_levels": float(error.max()), "round_trip_mean_levels": float(error.mean())})
    linear_times = interleaved_medians({name: lambda f=f: _in_lanes(f, linears) for name, f in LINEAR_TO_SRGB.items()},
                                       REPS)
    for name, f in LINEAR_TO_SRGB.items():
        rows.append({"picture": picture, "conversion": "linear → sRGB", "path": name, "ms": linear_times[name] * 1e3,
                     "formula_max_levels": float(np.abs(f(ramp) - formula).max() / LEVEL)})
    for row in rows:
        print(row, flush=True)
    return rows


def stages(image: np.ndarray) -> list[dict[str, object]]:
    faded = fade(image, 0.6)
    correction, _ = color.plan_restoration(faded, mode="on")
    assert correction is not None
    runs = {
        "local contrast (CLAHE on L*, clip 1.2)": lambda: postprocess.local_contrast(image, clip_limit=1.2)[0],
        "faded-colour restoration": lambda: correction.apply(faded),
    }
    paths, outputs = {}, {}
    for name, conversion in LAB_TO_SRGB.items():
        for stage, run in runs.items():
            def timed(run: Callable[[], np.ndarray] = run, conversion: Callable = conversion) -> np.ndarray:
                with stages_converting_with(conversion):
                    return run()
            paths[f"{stage} | {name}"] = timed
            outputs[(stage, name)] = timed()
    times = interleaved_medians(paths, REPS)
    rows = []
    for stage in runs:
        before, after = (outputs[(stage, name)] for name in LAB_TO_SRGB)
        rows.append({"stage": stage, **{f"ms {name}": times[f"{stage} | {name}"] * 1e3 for name in LAB_TO_SRGB},
                     "outputs_apart_max_levels": float(np.abs(before - after).max() / LEVEL)})
        print(rows[-1], flush=True)
    return rows


def main() -> int:
    allocator.keep_freed_memory()  # as a Chain does
    image = photo()
    report = {"machine": f"{cpu_name()}, {strips.lanes()} strip lanes", "date": date.today().isoformat(),
              "image": f"{SIZE[0]}x{SIZE[1]} photo (scikit-image astronaut, enlarged), 16-bit values",
              "strip_rows": strips.strip_rows(SIZE[0]), "reps": REPS,
              "conversions": conversions("photo", image) + conversions("dark photo (× 0.15)", image * np.float32(0.15)),
              "stages": stages(image)}
    print(f"wrote {save_results('colour_conversion', report)}")
    return 0


if __name__ == "__main__":
    without_options(__doc__)
    sys.exit(main())
