"""Measures for the normal archive case: no ground truth, only the scan and its enhancement.

*Consistency* asks whether super-resolution stayed true to its input: the output shrunk back
(area-averaged) must match the input (PSNR, SSIM), and the output must be perceptually close
to a plain bicubic enlargement (LPIPS). *No-reference* measures describe each image on its
own: noise, sharpness, clipping, colourfulness, and an artefact score for halos/ringing and
tile seams. The composite score folds them into one number for sorting a review queue.
Every measure's direction and range are declared in ``MEASURES``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from ..chain.colour_math import luma
from ..chain.denoise import estimate_sigma
from .metrics import lpips, psnr, ssim

LPIPS_MAX_SIDE = 512  # LPIPS runs on at most this many pixels per side (area-reduced), bounding its cost


@dataclass(frozen=True)
class Measure:
    name: str
    lower_better: bool
    low: float
    high: float
    meaning: str


MEASURES = {
    m.name: m
    for m in [
        Measure("consistency_psnr_db", False, 0.0, math.inf, "PSNR of the SR output shrunk back vs the SR input (RGB)"),
        Measure("consistency_ssim", False, -1.0, 1.0, "SSIM of the SR output shrunk back vs the SR input"),
        Measure("consistency_lpips", True, 0.0, 1.5, "LPIPS-alex of the SR output vs a bicubic enlargement of its input"),
        Measure("noise_sigma_in", True, 0.0, 1.0, "estimated noise σ of the input, [0, 1] scale"),
        Measure("noise_sigma_out", True, 0.0, 1.0, "estimated noise σ of the output, at the input's scale"),
        Measure("sharpness_gain", False, 0.0, math.inf, "mean gradient of the output shrunk back, over the input's"),
        Measure("clipped_fraction", True, 0.0, 1.0, "share of output pixels at pure black or white"),
        Measure("colourfulness", False, 0.0, math.inf, "Hasler-Süsstrunk colourfulness of the output (0-255 scale)"),
        Measure("halo_fraction", True, 0.0, 1.0, "share of output pixels overshooting the enlarged input's local range by > 8/255"),
        Measure("seam_score", True, 0.0, math.inf, "z-score of the step across the tile grid vs shifted grids (< 4: none)"),
        Measure("artefact_score", True, 0.0, 1.0, "max(halo_fraction, (seam_score - 4) / 6 clipped to 0-1)"),
        Measure("composite_score", False, 0.0, 1.0, "weighted summary (docs/quality.md)"),
    ]
}


def shrink_to(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area-average down to (width, height): the antialiased inverse of an enlargement."""
    out = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return out.reshape(size[1], size[0], image.shape[2])


def enlarge_to(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    out = cv2.resize(image, size, interpolation=cv2.INTER_CUBIC)
    return np.clip(out.reshape(size[1], size[0], image.shape[2]), 0.0, 1.0)


def _bounded(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    factor = LPIPS_MAX_SIDE / max(h, w)
    return image if factor >= 1 else shrink_to(image, (max(1, round(w * factor)), max(1, round(h * factor))))


def consistency(sr_input: np.ndarray, sr_output: np.ndarray, *, bit_depth: int = 8) -> dict[str, float]:
    h, w = sr_input.shape[:2]
    back = shrink_to(sr_output, (w, h))
    bicubic = enlarge_to(sr_input, (sr_output.shape[1], sr_output.shape[0]))
    return {
        "consistency_psnr_db": psnr(back, sr_input),
        "consistency_ssim": ssim(back, sr_input, bit_depth=bit_depth) if min(h, w) >= 11 else float("nan"),
        "consistency_lpips": lpips(_bounded(sr_output), _bounded(bicubic)) if min(h, w) >= 16 else float("nan"),
    }


def _mean_gradient(image: np.ndarray) -> float:
    y = luma(image).astype(np.float32)
    return float(np.mean(np.abs(cv2.Sobel(y, cv2.CV_32F, 1, 0)) + np.abs(cv2.Sobel(y, cv2.CV_32F, 0, 1))))


def colourfulness(image: np.ndarray) -> float:
    """Hasler & Süsstrunk (2003), on 0-255 values; 0 for grey images."""
    if image.shape[2] == 1:
        return 0.0
    r, g, b = (image[..., i].astype(np.float64) * 255 for i in range(3))
    rg, yb = r - g, 0.5 * (r + g) - b
    return float(math.hypot(rg.std(), yb.std()) + 0.3 * math.hypot(rg.mean(), yb.mean()))


def halo_fraction(output: np.ndarray, source: np.ndarray, *, margin: float = 8 / 255) -> float:
    """Overshoot beyond the local range of the enlarged input: halos around edges and ringing."""
    h, w = output.shape[:2]
    scale = max(1, round(h / source.shape[0]))
    reference = luma(enlarge_to(source, (w, h))).astype(np.float32)
    kernel = np.ones((2 * scale + 1, 2 * scale + 1), np.uint8)
    y = luma(output).astype(np.float32)
    over = (y > cv2.dilate(reference, kernel) + margin) | (y < cv2.erode(reference, kernel) - margin)
    return float(over.mean())


def _grid_excess(steps: np.ndarray, first: int, stride: int) -> float:
    """Mean excess of the step across grid lines over the steps 4 and 8 pixels beside them."""
    cuts = np.arange(first, steps.shape[1] - 8, stride)
    cuts = cuts[cuts >= 8]
    if cuts.size == 0:
        return float("nan")
    beside = sum(steps[:, cuts + d] for d in (-8, -4, 4, 8)) / 4
    return float((steps[:, cuts] - beside).mean())


def seam_score(output: np.ndarray, stride: int) -> float:
    """Tile seams, as a z-score: how far the tile grid's step excess stands above the same
    measure on every shifted grid (0 = no seams; above ~4, seams are there).

    A seam is an abrupt one-pixel jump across the tile grid; real edges are not aligned with
    it. Shifted grids keep the grid's phase modulo 8 pixels where the pitch allows (SR
    networks leave x2/x4 pixel-shuffle patterns), so they carry the same content statistics
    without the seams; short pitches fall back to phase 4, 2 or 1 to have enough of them.
    ``stride`` is the tile pitch in output pixels.
    """
    y = luma(output).astype(np.float64)
    scores = []
    for steps in (np.abs(np.diff(y, axis=1)), np.abs(np.diff(y, axis=0)).T):
        true_first = stride - 1
        phase = next((p for p in (8, 4, 2, 1) if stride // p >= 7), 1)
        shifted = [_grid_excess(steps, f, stride) for f in range(true_first % phase, stride, phase) if f != true_first]
        shifted = [v for v in shifted if not math.isnan(v)]
        observed = _grid_excess(steps, true_first, stride)
        if len(shifted) < 4 or math.isnan(observed):
            continue
        centre = float(np.median(shifted))
        spread = 1.4826 * float(np.median(np.abs(np.array(shifted) - centre)))
        scores.append((observed - centre) / max(spread, 1e-4 * float(steps.mean()) + 1e-12))
    return max(0.0, max(scores, default=0.0))


def sr_integrity(
    sr_input: np.ndarray, sr_output: np.ndarray, *, tile_stride: int | None = None, bit_depth: int = 8
) -> dict[str, float]:
    """Did super-resolution stay true to its input? Measured on the SR step's own input and output,
    because the stages around it change tones and colours on purpose."""
    halo = halo_fraction(sr_output, sr_input)
    seams = seam_score(sr_output, tile_stride) if tile_stride and tile_stride < max(sr_output.shape[:2]) else 0.0
    return {
        **consistency(sr_input, sr_output, bit_depth=bit_depth),
        "halo_fraction": halo,
        "seam_score": seams,
        "artefact_score": max(halo, min(1.0, max(0.0, (seams - 4.0) / 6.0))),
    }


def descriptive(source: np.ndarray, output: np.ndarray) -> dict[str, float]:
    """The master and its derivative side by side: noise, sharpness, clipping, colourfulness."""
    h, w = source.shape[:2]
    back = shrink_to(output, (w, h))
    half = 0.5 / 255
    return {
        "noise_sigma_in": estimate_sigma(source),
        "noise_sigma_out": estimate_sigma(back),
        "sharpness_gain": _mean_gradient(back) / max(_mean_gradient(source), 1e-9),
        "clipped_fraction": float(np.mean(np.all(output <= half, axis=-1) | np.all(output >= 1 - half, axis=-1))),
        "colourfulness": colourfulness(output),
    }


def composite(metrics: dict[str, float]) -> float:
    """0-1, higher is better: consistency (PSNR 25-45 dB → 0-1, SSIM, 1 - LPIPS) less artefacts.

    Weights: PSNR 0.35, SSIM 0.35, LPIPS 0.3; the result is multiplied by (1 - artefact_score).
    A sorting aid for review queues, not a verdict: the gate decides.
    """
    parts = {
        "psnr": min(1.0, max(0.0, (metrics["consistency_psnr_db"] - 25) / 20)),
        "ssim": max(0.0, metrics["consistency_ssim"]),
        "lpips": max(0.0, 1.0 - metrics["consistency_lpips"]),
    }
    if any(math.isnan(v) for v in parts.values()):
        return float("nan")
    score = 0.35 * parts["psnr"] + 0.35 * parts["ssim"] + 0.3 * parts["lpips"]
    return float(score * (1.0 - metrics["artefact_score"]))
