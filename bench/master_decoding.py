"""Reading large masters whose decoding is more than a copy: CMYK, CIELab and JPEG 2000.

A print shop's CMYK scan goes through its press profile (LittleCMS), a museum's 16-bit
CIELab one through a D50 Lab profile, and a library's JPEG 2000 master through OpenJPEG's
wavelet decoder; an uncompressed RGB TIFF of the same size is the baseline. Each case is a
20-megapixel (5000 × 4000) image of smooth random colour with a scanner's grain (2 levels
of 255), decoded by ``codecs.decode`` with the strip lanes at this machine's default and at
one (``ENHANCE_STRIP_LANES=1``), interleaved, each first in every other round
(``lanes_runs``), after a warm-up; medians of the repetitions.
The press profile is the tests' CMYK profile with a grid of 17 points a side, a press
profile's size (``tests/colour_files.cmyk_profile``): no real one can be shipped.

    .venv/bin/python bench/master_decoding.py [--reps 3]   # writes bench/results/master_decoding.json

To time another version of the decoder with the same cases, put its ``plugins`` first:
``PYTHONPATH=/path/to/other/plugins .venv/bin/python bench/master_decoding.py --name NAME``.
"""
from __future__ import annotations

import io
import statistics
import sys

import cv2
import imagecodecs
import lanes_runs
import numpy as np
import tifffile
from cpu_inference import ROOT

sys.path.insert(0, str(ROOT / "tests"))
from colour_files import cmyk_profile, lab16  # noqa: E402  (the tests' press-like profile and TIFF Lab encoding)

from enhance_ops import codecs  # noqa: E402

WIDTH, HEIGHT = 5000, 4000


def _smooth(channels: int, seed: int = 0) -> np.ndarray:
    """Smooth random colour in [0, 1] with a scanner's grain, as float32 (H, W, channels)."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((HEIGHT // 50, WIDTH // 50, channels)).astype(np.float32)
    smooth = cv2.resize(coarse, (WIDTH, HEIGHT), interpolation=cv2.INTER_LINEAR).reshape(HEIGHT, WIDTH, channels)
    smooth += rng.normal(0, 2 / 255, smooth.shape).astype(np.float32)
    return np.clip(smooth, 0, 1, out=smooth)


def _tiff(samples: np.ndarray, photometric: str, profile: bytes | None = None) -> bytes:
    buf = io.BytesIO()
    tifffile.imwrite(buf, samples, photometric=photometric, iccprofile=profile, metadata=None)
    return buf.getvalue()


def _jp2(samples: np.ndarray, level: int) -> bytes:
    """A JP2 file, lossless (``level`` 0, the 5/3 wavelet, as archives keep masters) or lossy
    (the 9/7 wavelet at a quality of ``level`` dB, as access copies are made)."""
    return imagecodecs.jpeg2k_encode(samples, level=level, codecformat="jp2", reversible=level == 0, numthreads=4)


def cases() -> dict[str, bytes]:
    ink, press = _smooth(4), cmyk_profile(17)
    rgb = _smooth(3, 1)
    rgb8, rgb16 = (rgb * 255 + 0.5).astype(np.uint8), (rgb * 65535 + 0.5).astype(np.uint16)
    return {
        "RGB TIFF, 8-bit (no conversion)": _tiff(rgb8, "rgb"),
        "CMYK, 8-bit, press profile": _tiff((ink * 255 + 0.5).astype(np.uint8), "separated", press),
        "CMYK, 16-bit, press profile": _tiff((ink * 65535 + 0.5).astype(np.uint16), "separated", press),
        "CMYK, 16-bit, no profile": _tiff((ink * 65535 + 0.5).astype(np.uint16), "separated"),
        "CIELab, 16-bit (D50 Lab profile)": _tiff(lab16(rgb8, "cielab"), "cielab"),
        "JPEG 2000, 8-bit, lossless": _jp2(rgb8, 0),
        "JPEG 2000, 16-bit, lossless": _jp2(rgb16, 0),
        "JPEG 2000, 8-bit, lossy (40 dB)": _jp2(rgb8, 40),
    }


def measure(reps: int) -> list[dict[str, object]]:
    files = cases()
    chosen = lanes_runs.settings()
    times: dict[tuple[str, str], list[float]] = {(name, s): [] for name in files for s in chosen}
    for rep in range(reps + 1):  # the first round warms up
        for name, data in files.items():
            for setting in lanes_runs.in_turn(chosen, rep):
                took = lanes_runs.timed(lambda: codecs.decode(data, max_pixels=10**9))
                if rep:
                    times[name, setting].append(took)
    return [{"case": name, "lanes": setting, "s": statistics.median(times[name, setting]),
             "runs": times[name, setting]} for name, setting in times]


def _line(row: dict) -> str:
    return f"{row['case']:36} {row['lanes']:8} {row['s']:.2f} s"


if __name__ == "__main__":
    lanes_runs.main(__doc__, "master_decoding", measure, _line, f"{WIDTH} x {HEIGHT}")
