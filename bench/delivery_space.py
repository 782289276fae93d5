"""The colour-space stage into a delivery space, at a GPU worker's output size.

``colour_space.target`` converts every derivative to sRGB, Adobe RGB or Display P3. Since
2026-12-07 the stage counts the pixels that lie outside the target's gamut (which it clips),
and converts from an RGB profile built on lookup tables (a scanner's own) through LittleCMS
instead of skipping it. On a 3840 × 2160 photo (the x4 output of a 960 × 540 one), in the
chain's strip lanes, interleaved, medians:
- an sRGB master into Adobe RGB (the float matrix path; nothing lies outside);
- an Adobe RGB master into sRGB (the same photo read as Adobe RGB, so its saturated colours
  lie outside sRGB), with the count, and without it (the stage before 2026-12-07);
- a scanner profile built on lookup tables (a 33-point grid describing sRGB, as the tests
  build it) into Adobe RGB, through LittleCMS in float32, with how far it comes out from the
  matrix path from sRGB, in 16-bit levels.

    .venv/bin/python bench/delivery_space.py    # writes bench/results/delivery_space.json
"""
from __future__ import annotations

import sys
from datetime import date

import cv2
import numpy as np
from cpu_inference import ROOT, cpu_name, interleaved_medians, save_results, without_options
from skimage import data as skdata

from enhance_ops import allocator
from enhance_ops.chain import icc, postprocess, strips

sys.path.insert(0, str(ROOT / "tests"))
from colour_files import scanner_profile  # noqa: E402  (the tests' lookup-table profile)

SIZE = (3840, 2160)
REPS = 7
LEVEL = 1 / 65535


def photo() -> np.ndarray:
    """The astronaut enlarged to the output size."""
    return cv2.resize(skdata.astronaut(), SIZE, interpolation=cv2.INTER_CUBIC).astype(np.float32) / 255


def uncounted(image: np.ndarray, source: icc.MatrixShaper, target: icc.MatrixShaper) -> np.ndarray:
    """The matrix path as it was before it counted: converted and clipped, in the same lanes."""
    return strips.map_rows(image, lambda rows, _top: np.clip(target.encoded(target.linear_from_xyz(
        source.to_xyz(rows))), 0.0, 1.0).astype(np.float32), margin=0)


def main() -> int:
    allocator.keep_freed_memory()  # as a Chain does
    image = photo()
    srgb, adobe = icc.SPACES["sRGB"], icc.SPACES["Adobe RGB"]
    profiles = {"sRGB": icc.build_profile(srgb), "Adobe RGB": icc.build_profile(adobe), "scanner": scanner_profile()}
    cases = {  # name: (master's profile, target)
        "sRGB master → Adobe RGB (matrix)": ("sRGB", "Adobe RGB"),
        "Adobe RGB master → sRGB (matrix, counted)": ("Adobe RGB", "sRGB"),
        "scanner lookup-table profile → Adobe RGB (LittleCMS)": ("scanner", "Adobe RGB"),
    }
    paths = {name: (lambda p=p, t=t: postprocess.convert_colour_space(image, profiles[p], t)) for name, (p, t) in
             cases.items()}
    paths["Adobe RGB master → sRGB (matrix, not counted: before)"] = lambda: uncounted(image, adobe, srgb)
    times = interleaved_medians(paths, REPS)
    rows = []
    for name, (profile, target) in cases.items():
        _, _, record = postprocess.convert_colour_space(image, profiles[profile], target)
        rows.append({"case": name, "ms": times[name] * 1e3, "out_of_gamut": record["out_of_gamut"],
                     "decision": record["decision"]})
    rows.append({"case": "Adobe RGB master → sRGB (matrix, not counted: before)",
                 "ms": times["Adobe RGB master → sRGB (matrix, not counted: before)"] * 1e3})
    through_lut = postprocess.convert_colour_space(image, profiles["scanner"], "Adobe RGB")[0]
    through_matrix = postprocess.convert_colour_space(image, profiles["sRGB"], "Adobe RGB")[0]
    apart = np.abs(through_lut - through_matrix) / LEVEL
    for row in rows:
        print(row, flush=True)
    report = {"machine": f"{cpu_name()}, {strips.lanes()} strip lanes", "date": date.today().isoformat(),
              "image": f"{SIZE[0]}x{SIZE[1]} photo (scikit-image astronaut, enlarged)", "reps": REPS, "cases": rows,
              "lookup_table_from_matrix_levels": {"max": float(apart.max()), "mean": float(apart.mean())}}
    print(f"wrote {save_results('delivery_space', report)}")
    return 0


if __name__ == "__main__":
    without_options(__doc__)
    sys.exit(main())
