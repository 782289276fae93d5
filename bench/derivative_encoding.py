"""Writing large derivatives as PNG and TIFF, whose deflate is most of their time.

A derivative at x4 of a 1.25-megapixel scan is 20 megapixels; its bytes are written on the
shard's write thread beside the next image's network. Each case encodes a 20-megapixel
(5000 × 4000) RGB derivative with ``encoders.encode_samples``, as a shard does, with the
strip lanes at this machine's default and at one (``ENHANCE_STRIP_LANES=1``), each first in
every other round, after a warm-up; medians of the repetitions, and the file's size. Two
kinds of picture: scikit-image's astronaut enlarged bicubically (smooth, as a network's
output is) and smooth random colour with a scanner's grain (harder to compress).

    .venv/bin/python bench/derivative_encoding.py [--reps 3]   # writes bench/results/derivative_encoding.json

To time another version of the encoders with the same cases, put its ``plugins`` first:
``PYTHONPATH=/path/to/other/plugins .venv/bin/python bench/derivative_encoding.py --name NAME``.
"""
from __future__ import annotations

import statistics
import time

import cv2
import lanes_runs
import numpy as np
from skimage import data as skdata

from enhance_ops import encoders
from enhance_ops.metadata import ImageMetadata

WIDTH, HEIGHT = 5000, 4000
PROVENANCE = encoders.Provenance("archive-enhance bench", "Enhanced derivative, not the archival master: bench")


def pictures() -> dict[str, np.ndarray]:
    """Float RGB in [0, 1] at the derivative's size."""
    photo = cv2.resize(skdata.astronaut().astype(np.float32) / 255, (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC)
    rng = np.random.default_rng(0)
    grain = cv2.resize(rng.random((HEIGHT // 50, WIDTH // 50, 3)).astype(np.float32), (WIDTH, HEIGHT))
    grain += rng.normal(0, 2 / 255, grain.shape).astype(np.float32)
    return {"photo, enlarged": np.clip(photo, 0, 1), "grain": np.clip(grain, 0, 1)}


def measure(reps: int) -> list[dict[str, object]]:
    cases = {(picture, fmt, bits): encoders.to_samples(pixels, None, bits)
             for picture, pixels in pictures().items() for fmt, bits in (("PNG", 8), ("PNG", 16), ("TIFF", 16))}
    chosen = lanes_runs.settings()
    times: dict[tuple, list[float]] = {(*case, s): [] for case in cases for s in chosen}
    sizes: dict[tuple, int] = {}
    for rep in range(reps + 1):  # the first round warms up
        for (picture, fmt, bits), samples in cases.items():
            for setting in lanes_runs.in_turn(chosen, rep):
                own = samples.copy()  # the encoder of 0b20a14 turned RGB to BGR in place
                started = time.perf_counter()
                out = encoders.encode_samples(own, fmt=fmt, meta=ImageMetadata(), scale=4.0,
                                              provenance=PROVENANCE)
                took = time.perf_counter() - started
                sizes[picture, fmt, bits] = len(out)
                if rep:
                    times[picture, fmt, bits, setting].append(took)
    return [{"picture": picture, "format": fmt, "bits": bits, "lanes": setting, "s": statistics.median(runs),
             "runs": runs, "bytes": sizes[picture, fmt, bits]}
            for (picture, fmt, bits, setting), runs in times.items()]


def _line(row: dict) -> str:
    return (f"{row['picture']:16} {row['format']:4} {row['bits']:2}-bit {row['lanes']:8} {row['s']:.2f} s "
            f"{row['bytes'] / 1e6:.1f} MB")


if __name__ == "__main__":
    lanes_runs.main(__doc__, "derivative_encoding", measure, _line, f"{WIDTH} x {HEIGHT}")
