"""Reading Photoshop masters: this reader against Pillow's, the one a Python user has.

A 20-megapixel (5472 × 3648) photograph, scikit-image's astronaut enlarged, with a
scanner's grain of about one 8-bit level, written by ImageMagick (`make imagemagick`) as a
run-length (PackBits) PSD, the compression Photoshop saves with, at 8 and at 16 bits; each
holds one layer beside its merged image. Every path gives float32 RGB in [0, 1], what the
chain takes: ``codecs.decode`` with the strip lanes at this machine's default and at one,
and Pillow's reader with one division (it reads 8-bit PSDs only). Interleaved, each path
first in turn, after a warm-up; medians. Peak memory: each path once in a fresh process,
its highest resident size above what it held with the file read.

    .venv/bin/python bench/photoshop_reading.py [--reps 5]   # writes bench/results/photoshop_reading.json
"""
from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time

import cv2
import lanes_runs
import numpy as np
from cpu_inference import ROOT, cpu_name, peak_rss_of, save_results
from PIL import Image
from skimage import data as skdata

sys.path.insert(0, str(ROOT / "tests"))
from photoshop_files import written  # noqa: E402  (ImageMagick's documents, as the tests read them)

from enhance_ops import codecs  # noqa: E402
from enhance_ops.chain import strips  # noqa: E402

WIDTH, HEIGHT = 5472, 3648
PILLOW = "Pillow"


def cases() -> dict[str, bytes]:
    rgb = cv2.resize(skdata.astronaut(), (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC).astype(np.uint16) * 257
    rgb += np.random.default_rng(0).integers(0, 256, rgb.shape, dtype=np.uint16)
    return {"8-bit RGB": written((rgb >> 8).astype(np.uint8), "-compress", "RLE"),
            "16-bit RGB": written(rgb, "-compress", "RLE")}


def _pillow(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        pixels = np.asarray(im.convert("RGB") if im.mode != "RGB" else im, dtype=np.float32)
    pixels /= 255
    return pixels


def _read(path: str, data: bytes) -> np.ndarray:
    return _pillow(data) if path == PILLOW else codecs.decode(data).pixels


def _peak(path: str, data: bytes) -> float:
    """GB above what a fresh process held with the file read, at its highest, reading it by
    ``path``: two fresh processes read the file and reset their high-water mark (Linux's
    clear_refs 5, so what the imports held for a moment is left out), and one then reads it."""
    lanes = "" if path == PILLOW else lanes_runs.settings()[path]
    with tempfile.NamedTemporaryFile(suffix=".psd") as file:
        file.write(data)
        file.flush()
        ready = (f"import os, pathlib, photoshop_reading as bench\nos.environ[{strips.LANES_VARIABLE!r}] = {lanes!r}\n"
                 f"data = pathlib.Path({file.name!r}).read_bytes()\n"
                 "pathlib.Path('/proc/self/clear_refs').write_text('5')")
        held = peak_rss_of(ready)
        return (peak_rss_of(f"{ready}\nbench._read({path!r}, data)") - held) / 1e9


def measure(reps: int) -> dict[str, object]:
    files = cases()
    chosen = lanes_runs.settings()
    rows = []
    for case, data in files.items():
        paths = [*chosen, PILLOW] if case.startswith("8-bit") else [*chosen]
        times: dict[str, list[float]] = {path: [] for path in paths}
        for rep in range(reps + 1):  # the first round warms up
            order = paths[rep % len(paths):] + paths[:rep % len(paths)]
            for path in order:
                if path != PILLOW:
                    os.environ[strips.LANES_VARIABLE] = chosen[path]
                started = time.perf_counter()
                _read(path, data)
                took = time.perf_counter() - started
                os.environ.pop(strips.LANES_VARIABLE, None)
                if rep:
                    times[path].append(took)
        ours = codecs.decode(data, samples=True).pixels
        agree = bool(np.array_equal(ours, np.asarray(Image.open(io.BytesIO(data))))) if PILLOW in paths else None
        for path in paths:
            rows.append({"case": case, "path": path, "s": statistics.median(times[path]), "runs": times[path],
                         "peak_gb": _peak(path, data), "file_mb": len(data) / 1e6,
                         "same_samples_as_pillow": agree})
            print(f"{case:12} {path:8} {rows[-1]['s']:.3f} s  peak {rows[-1]['peak_gb']:.2f} GB", flush=True)
    return {"machine": f"{cpu_name()}, {len(os.sched_getaffinity(0))} cores", "size": f"{WIDTH} x {HEIGHT}",
            "reps": reps, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "rows": rows}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=5)
    print(save_results("photoshop_reading", measure(parser.parse_args().reps)))
