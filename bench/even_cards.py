"""Prints mounted on an even card, through local contrast (CLAHE, archive-photo's clip 1.2).

CLAHE gives each tile its own curve, so an even area that crosses tiles took a different
change in each: a card around a print came out lighter beside it and uneven across it.
For each of scikit-image's photographs (384 px, on a cream card 128 px wide, noise-free
and with a scanner's grain of σ 2/255): how far apart the card's change is across it
(1st to 99th percentile of its 15-px means, in 8-bit levels of lightness), how much
lighter than the rest of the card its band beside the print came out (8 to 24 px from
it), its grain after against before, and how much local contrast the print gained. Then
smaller prints (160 px on a card 48 px wide, with grain) through the whole archive-photo
chain at x4, with local contrast and without it: the card's spread in the derivative (its
15-px means of lightness, from 32 px off the print). Last, the stage's time on a 3840 ×
2160 photograph, colour and grey, median of 7.

    .venv/bin/python bench/even_cards.py   # writes bench/results/even_cards.json
    .venv/bin/python bench/even_cards.py --name even_cards_before   # the code before, kept beside it
"""
from __future__ import annotations

import argparse
import sys
import time

import cv2
import numpy as np
from cpu_inference import cpu_name, save_and_show
from dark_levels import local_std
from skimage import data as skdata

from enhance_ops.chain import pipeline, postprocess
from enhance_ops.chain.colour_math import lightness

CARD = np.array([0.9, 0.886, 0.846], np.float32)  # cream: not neutral, so never taken for a scanner's background
SIDE, PAD, GRAIN = 384, 128, 2.0 / 255
CLIP = 1.2


def mounted(name: str, grain: float, side: int = SIDE, pad: int = PAD) -> np.ndarray:
    photo = getattr(skdata, name)().astype(np.float32) / 255
    photo = np.repeat(photo[..., None], 3, 2) if photo.ndim == 2 else photo[..., :3]
    photo = cv2.resize(photo, (side, side), interpolation=cv2.INTER_AREA)
    card = np.empty((side + 2 * pad, side + 2 * pad, 3), np.float32)
    card[:] = CARD
    card[pad:-pad, pad:-pad] = photo
    card += np.random.default_rng(0).normal(0, grain, card.shape).astype(np.float32)
    return np.round(np.clip(card, 0, 1) * 255) / 255


def _ring(shape: tuple[int, ...], near: int, far: int) -> np.ndarray:
    """The card from ``near`` to ``far`` px out from the print, 8 px in from the image's edge."""
    ring = np.zeros(shape[:2], bool)
    end = shape[0] - PAD  # the card is square
    ring[PAD - far : end + far, PAD - far : end + far] = True
    ring[PAD - near : end + near, PAD - near : end + near] = False
    ring[:8], ring[-8:], ring[:, :8], ring[:, -8:] = False, False, False, False
    return ring


def cards() -> list[dict[str, object]]:
    rows = []
    for name in ("astronaut", "coffee", "chelsea", "rocket", "camera"):
        for grain in (0.0, GRAIN):
            image = mounted(name, grain)
            out, record = postprocess.local_contrast(image.copy(), clip_limit=CLIP)
            before, after = lightness(image) * 255, lightness(out) * 255
            change = cv2.blur(after - before, (15, 15))
            card, beside, rest = (_ring(image.shape, *r) for r in ((8, PAD), (8, 24), (24, PAD)))
            fine = [float((im - cv2.blur(im, (7, 7)))[_ring(image.shape, 24, PAD)].std()) for im in (before, after)]
            inner = (slice(PAD + 8, -PAD - 8),) * 2
            rows.append({
                "photo": name, "grain": round(grain * 255, 1), "even_fraction": record.get("even_fraction"),
                "card_spread": round(float(np.percentile(change[card], 99) - np.percentile(change[card], 1)), 2),
                "beside_print": round(float(change[beside].mean() - change[rest].mean()), 2),
                "card_grain_ratio": round(fine[1] / fine[0], 3) if grain else None,
                "print_gain": round(local_std(after[inner]) / local_std(before[inner]), 3),
            })
    return rows


def through_chain(side: int = 160, pad: int = 48) -> list[dict[str, object]]:
    chains = {"on": pipeline.Chain("archive-photo"),
              "off": pipeline.Chain("archive-photo", ("local_contrast.clip_limit=0",))}
    rows = []
    for name in ("astronaut", "coffee", "chelsea"):
        image = mounted(name, GRAIN, side, pad)
        row: dict[str, object] = {"photo": name, "card_level_in": round(float(lightness(image[:8, :8]).mean()) * 255, 2)}
        for contrast, chain in chains.items():
            out = chain.run(image).pixels
            scale = out.shape[0] // image.shape[0]
            means = cv2.blur(lightness(out) * 255, (15, 15))
            card = np.zeros(means.shape, bool)
            card[16:-16, 16:-16] = True
            near, end = (pad - 8) * scale, means.shape[0] - (pad - 8) * scale
            card[near:end, near:end] = False
            p1, p99 = np.percentile(means[card], (1, 99))
            row[f"spread_contrast_{contrast}"] = round(float(p99 - p1), 2)
            row[f"card_level_contrast_{contrast}"] = round(float(np.median(means[card])), 2)
        rows.append(row)
    return rows


def timings(repeats: int = 7) -> list[dict[str, object]]:
    photo = cv2.resize(skdata.astronaut().astype(np.float32) / 255, (3840, 2160), interpolation=cv2.INTER_CUBIC)
    images = {"colour": np.clip(photo, 0, 1), "grey": np.clip(photo.mean(2, keepdims=True), 0, 1)}
    seconds: dict[str, list[float]] = {kind: [] for kind in images}
    for _ in range(repeats):
        for kind, image in images.items():
            work = image.copy()
            start = time.perf_counter()
            postprocess.local_contrast(work, clip_limit=CLIP, out=work)
            seconds[kind].append(time.perf_counter() - start)
    return [{"image": f"3840 x 2160, {kind}", "median_ms": round(float(np.median(s)) * 1000, 1)}
            for kind, s in seconds.items()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", default="even_cards", help="results file name (bench/results/NAME.json)")
    args = parser.parse_args()
    report = {"machine": {"cpu": cpu_name()}, "date": time.strftime("%Y-%m-%d"), "cards": cards(),
              "through_chain": through_chain(), "timings": timings()}
    save_and_show(args.name, report, ("cards", "through_chain", "timings"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
