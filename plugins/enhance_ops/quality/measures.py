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

from ..chain import strips
from ..chain.colour_math import luma
from ..chain.denoise import estimate_sigma, estimate_sigma_bands, sample_bands
from .metrics import Rows, lpips, psnr_rows, ssim_rows

_LPIPS_BACKBONE = "alex"
LPIPS_MODEL = f"lpips-{_LPIPS_BACKBONE}"  # consistency_lpips's network, named in the ledger with its weights' hash
LPIPS_MAX_SIDE = 512  # LPIPS runs on at most this many pixels per side (block-averaged), bounding its cost
LPIPS_MIN_SIDE = 31  # and on at least this many: AlexNet's second pooling has nothing to pool below it
# The least side of the scan itself each consistency measure takes: SSIM's Gaussian window, and
# for LPIPS a scan the measure can compare with more than a handful of pixels.
MIN_SCAN_SIDE = {"consistency_ssim": 11, "consistency_lpips": 16}
SEAM_SCORE_SEEN = 4.0  # seam scores above this count as seams (artefact_score)
# The faintest seam worth a review: a mean step of half an 8-bit level along the tile grid
# scores SEAM_SCORE_SEEN however flat the image. Without such a floor, a dark or flat image
# whose shifted grids all agree turns steps far below one level into scores in the tens.
FAINTEST_SEAM = 0.5 / 255


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
        Measure("clipping_added", True, 0.0, 1.0, "clipped_fraction of the output less the master's own, not below 0"),
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


def _shrunk_rows(size: tuple[int, int], output: np.ndarray) -> Rows:
    """The output shrunk back to (height, width) ``size``, row band by row band when the scale is whole."""
    scale = strips.integer_scale(size, output.shape)
    if scale is not None:
        return lambda r0, r1: strips.shrink_rows(output, scale, r0, r1)
    back = shrink_to(output, (size[1], size[0]))
    return lambda r0, r1: back[r0:r1]


def _bicubic_rows(source: np.ndarray, output: np.ndarray) -> Rows:
    """The source enlarged to the output's size (bicubic), row band by row band when the scale is whole."""
    scale = strips.integer_scale(source.shape, output.shape)
    if scale is not None:
        return lambda r0, r1: strips.clipped(strips.enlarge_rows(source, scale, r0, r1))
    whole = enlarge_to(source, (output.shape[1], output.shape[0]))
    return lambda r0, r1: whole[r0:r1]


def _reduced(rows: Rows, height: int, width: int, factor: int) -> np.ndarray:
    """Block means over ``factor`` × ``factor`` pixels (an area reduction; a partial last block is dropped)."""
    if factor == 1:
        return rows(0, height)
    out_h, out_w = height // factor, width // factor
    step = max(1, strips.strip_rows(width) // factor)
    parts = [
        cv2.resize(rows(r0 * factor, r1 * factor)[:, : out_w * factor], (out_w, r1 - r0), interpolation=cv2.INTER_AREA)
        .reshape(r1 - r0, out_w, -1)
        for r0, r1 in strips.spans(out_h, step)
    ]
    return np.concatenate(parts)


def _lpips_factor(height: int, width: int) -> int:
    """The block size LPIPS's inputs are reduced by: to at most ``LPIPS_MAX_SIDE`` a side, but
    never below ``LPIPS_MIN_SIDE`` on the short side. A long, thin scan (a strip of film, a
    banner) was reduced below what AlexNet takes, and the measure raised an internal error."""
    return max(1, min(math.ceil(max(height, width) / LPIPS_MAX_SIDE), min(height, width) // LPIPS_MIN_SIDE))


def consistency(sr_input: np.ndarray, sr_output: np.ndarray, *, bit_depth: int = 8) -> dict[str, float]:
    h, w = sr_input.shape[:2]
    height, width = sr_output.shape[:2]
    back = _shrunk_rows(sr_input.shape[:2], sr_output)
    source: Rows = lambda r0, r1: sr_input[r0:r1]  # noqa: E731
    perceptual = float("nan")
    if min(h, w) >= MIN_SCAN_SIDE["consistency_lpips"] and min(height, width) >= LPIPS_MIN_SIDE:
        factor = _lpips_factor(height, width)
        perceptual = lpips(_reduced(lambda a, b: sr_output[a:b], height, width, factor),
                           _reduced(_bicubic_rows(sr_input, sr_output), height, width, factor),
                           backbone=_LPIPS_BACKBONE)
    return {
        "consistency_psnr_db": psnr_rows(back, source, h, w),
        "consistency_ssim": ssim_rows(back, source, h, w, bit_depth=bit_depth)
        if min(h, w) >= MIN_SCAN_SIDE["consistency_ssim"] else float("nan"),
        "consistency_lpips": perceptual,
    }


def enlarge_to(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    out = cv2.resize(image, size, interpolation=cv2.INTER_CUBIC)
    return strips.clipped(out.reshape(size[1], size[0], image.shape[2]))


def _gradient_sum(rows: Rows, height: int, width: int) -> float:
    """Sum of |Sobel x| + |Sobel y| of luma over the whole image (one row of context per band)."""
    def band(r0: int, r1: int) -> float:
        top, bottom = max(0, r0 - 1), min(height, r1 + 1)
        y = luma(rows(top, bottom)).astype(np.float32, copy=False)
        g = np.abs(cv2.Sobel(y, cv2.CV_32F, 1, 0)) + np.abs(cv2.Sobel(y, cv2.CV_32F, 0, 1))
        return float(g[r0 - top : r1 - top].sum(dtype=np.float64))

    return sum(strips.map_bands(height, width, band))


def colourfulness(image: np.ndarray) -> float:
    """Hasler & Süsstrunk (2003), on 0-255 values; 0 for grey images."""
    if image.shape[2] == 1:
        return 0.0
    # rg, yb on 0-255 values; the third row, all zeros, only keeps OpenCV on its fast 3 → 3 path
    # (a 3 → 2 transform ran 12x slower)
    opponent = np.array([[255, -255, 0], [127.5, 127.5, -255], [0, 0, 0]], np.float32)

    def sums_of(r0: int, r1: int) -> np.ndarray:  # rg, yb, rg², yb²
        band = cv2.transform(np.ascontiguousarray(image[r0:r1]), opponent)
        mean, std = (v.ravel()[:2] for v in cv2.meanStdDev(band))  # accumulated in double
        return band.shape[0] * band.shape[1] * np.concatenate([mean, std**2 + mean**2])

    sums = np.sum(strips.map_bands(*image.shape[:2], sums_of), axis=0)
    n = image.shape[0] * image.shape[1]
    mean_rg, mean_yb = sums[0] / n, sums[1] / n
    std_rg = math.sqrt(max(0.0, sums[2] / n - mean_rg**2))
    std_yb = math.sqrt(max(0.0, sums[3] / n - mean_yb**2))
    return float(math.hypot(std_rg, std_yb) + 0.3 * math.hypot(mean_rg, mean_yb))


def halo_fraction(output: np.ndarray, source: np.ndarray, *, margin: float = 8 / 255) -> float:
    """Overshoot beyond the local range of the enlarged input: halos around edges and ringing."""
    scale = strips.integer_scale(source.shape, output.shape)
    if scale is None:
        raise ValueError(f"output {output.shape[:2]} is not a whole-number enlargement of {source.shape[:2]}")
    height, width = output.shape[:2]
    kernel = np.ones((2 * scale + 1, 2 * scale + 1), np.uint8)

    def overshoot(y0: int, y1: int) -> int:
        top, bottom = max(0, y0 - scale), min(height, y1 + scale)
        reference = luma(strips.clipped(strips.enlarge_rows(source, scale, top, bottom))).astype(np.float32, copy=False)
        low = cv2.erode(reference, kernel)[y0 - top : y1 - top] - margin
        high = cv2.dilate(reference, kernel)[y0 - top : y1 - top] + margin
        y = luma(output[y0:y1]).astype(np.float32, copy=False)
        return int(np.count_nonzero((y > high) | (y < low)))

    return sum(strips.map_bands(height, width, overshoot)) / (height * width)


def step_profiles(output: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean absolute luma step between neighbouring columns (per column pair) and rows (per
    row pair). The steps by ``cv2.absdiff``, summed in double by ``cv2.reduce``: 3.6x faster
    than numpy's diff, abs and sum over float64 copies, within 1e-8."""
    height, width = output.shape[:2]
    across_columns, across_rows = np.zeros(max(0, width - 1)), np.zeros(max(0, height - 1))

    def band_steps(y0: int, y1: int) -> tuple[np.ndarray | None, np.ndarray | None]:
        y = luma(output[y0 : min(height, y1 + 1)])
        band = y[: y1 - y0]
        columns = rows = None
        if width > 1:
            columns = cv2.reduce(cv2.absdiff(band[:, 1:], band[:, :-1]), 0, cv2.REDUCE_SUM, dtype=cv2.CV_64F).ravel()
        if y.shape[0] > 1:
            rows = cv2.reduce(cv2.absdiff(y[1:], y[:-1]), 1, cv2.REDUCE_AVG, dtype=cv2.CV_64F).ravel()
        return columns, rows

    for (y0, _), (columns, rows) in zip(strips.bands(height, width), strips.map_bands(height, width, band_steps)):
        if columns is not None:
            across_columns += columns
        if rows is not None:
            across_rows[y0 : y0 + rows.size] = rows
    return across_columns / height, across_rows


def _grid_excess(profile: np.ndarray, first: int, stride: int, step: int = 4) -> float:
    """Median excess of the step across grid lines over the steps ``step`` and twice that
    pixels beside them.

    The median, not the mean: tiling leaves its seam along every grid line, while an edge of
    the content lies on one by chance. A ruled line of a ledger whose edge fell on a tile
    boundary scored 9–20 by the mean (a seam at 4) and held a sound page for review; the
    untiled output scored the same."""
    cuts = np.arange(first, profile.size - 2 * step, stride)
    cuts = cuts[cuts >= 2 * step]
    if cuts.size == 0:
        return float("nan")
    beside = sum(profile[cuts + d] for d in (-2 * step, -step, step, 2 * step)) / 4
    return float(np.median(profile[cuts] - beside))


def _content_period(profile: np.ndarray) -> int | None:
    """The period, 5 to 40 px, of a profile that repeats strongly (a halftone screen's or a
    woven fabric's), else None. On such content the steps 4 and 8 px beside a grid line are
    at other phases of it than the line itself: a descreened halftone whose edges fell on
    the one grid line of a two-tile image scored 4.7 (seams count from 4), tiled and untiled
    outputs 74 dB apart. Seams on a pitch of 40 px or less repeat as strongly, so a period
    that divides the pitch is not taken for the content's."""
    centred = profile - profile.mean()
    energy = float(centred @ centred)
    if centred.size < 4 * _LONGEST_PERIOD or energy == 0.0:
        return None
    lags = np.arange(4, _LONGEST_PERIOD + 2)
    acf = np.array([centred[:-lag] @ centred[lag:] for lag in lags]) / energy
    peaks = [i for i in range(1, lags.size - 1) if acf[i] > max(acf[i - 1], acf[i + 1]) and acf[i] >= _PERIODIC]
    return int(lags[max(peaks, key=lambda i: acf[i])]) if peaks else None  # the strongest: a dot has two edges


_LONGEST_PERIOD, _PERIODIC = 40, 0.5


def seam_score(output: np.ndarray, grid: tuple[int, int]) -> float:
    """Tile seams, as a z-score: how far the tile grid's step excess stands above the same
    measure on every shifted grid (0 = no seams; above ~4, seams are there).

    A seam is an abrupt one-pixel jump across the tile grid; real edges are not aligned with
    it. Shifted grids keep the grid's phase modulo 8 pixels where the pitch allows (SR
    networks leave x2/x4 pixel-shuffle patterns), so they carry the same content statistics
    without the seams; short pitches fall back to phase 4, 2 or 1 to have enough of them.
    ``grid`` is the tile pitch down and across, in output pixels (they differ where a tile
    was stretched along one axis only). Everything is measured on the mean step per column
    (and per row), which is what the grid statistics average anyway.
    """
    scores = []
    for profile, stride in zip(step_profiles(output), grid[::-1]):
        true_first = stride - 1
        phase = next((p for p in (8, 4, 2, 1) if stride // p >= 7), 1)
        period = _content_period(profile)
        step = period if period and stride % period else 4  # the seams' own repetition is no content's
        shifted = [_grid_excess(profile, f, stride, step) for f in range(true_first % phase, stride, phase)
                   if f != true_first]
        shifted = [v for v in shifted if not math.isnan(v)]
        observed = _grid_excess(profile, true_first, stride, step)
        if len(shifted) < 4 or math.isnan(observed):
            continue
        centre = float(np.median(shifted))
        spread = 1.4826 * float(np.median(np.abs(np.array(shifted) - centre)))
        scores.append((observed - centre) / max(spread, FAINTEST_SEAM / SEAM_SCORE_SEEN))
    return max(0.0, max(scores, default=0.0))


def sr_integrity(
    sr_input: np.ndarray, sr_output: np.ndarray, *, tile_grid: tuple[int, int] | None = None, bit_depth: int = 8
) -> dict[str, float]:
    """Did super-resolution stay true to its input? Measured on the SR step's own input and output,
    because the stages around it change tones and colours on purpose. ``tile_grid``: the
    tiles' pitch down and across in output pixels, where the output was tiled."""
    halo = halo_fraction(sr_output, sr_input)
    seams = 0.0
    if tile_grid is not None and any(pitch < side for pitch, side in zip(tile_grid, sr_output.shape[:2])):
        seams = seam_score(sr_output, tile_grid)
    return {
        **consistency(sr_input, sr_output, bit_depth=bit_depth),
        "halo_fraction": halo,
        "seam_score": seams,
        "artefact_score": max(halo, min(1.0, max(0.0, (seams - SEAM_SCORE_SEEN) / 6.0))),
    }


def _clipped_fraction(output: np.ndarray) -> float:
    """Pixels black or white in every channel (within half a level of 8 bits)."""
    half, channels = 0.5 / 255, output.shape[2]
    black, white = ((-np.inf,) * channels, (half,) * channels), ((1 - half,) * channels, (np.inf,) * channels)

    def count(y0: int, y1: int) -> int:
        band = output[y0:y1]  # cv2.inRange: one pass, true where every channel is in range
        return sum(cv2.countNonZero(cv2.inRange(band, np.array(lo), np.array(hi))) for lo, hi in (black, white))

    return sum(strips.map_bands(*output.shape[:2], count)) / (output.shape[0] * output.shape[1])


@dataclass(frozen=True)
class InputSummary:
    """What ``descriptive`` needs of the master, taken before the master itself can be let go."""

    height: int
    width: int
    noise_sigma: float
    gradient_sum: float
    clipped_fraction: float


def summarise_input(source: np.ndarray) -> InputSummary:
    h, w = source.shape[:2]
    return InputSummary(h, w, estimate_sigma(source), _gradient_sum(lambda a, b: source[a:b], h, w),
                        _clipped_fraction(source))


def descriptive(source: np.ndarray | InputSummary, output: np.ndarray) -> dict[str, float]:
    """The master and its derivative side by side: noise, sharpness, clipping, colourfulness."""
    summary = source if isinstance(source, InputSummary) else summarise_input(source)
    h, w = summary.height, summary.width
    back = _shrunk_rows((h, w), output)
    clipped = _clipped_fraction(output)
    return {
        "noise_sigma_in": summary.noise_sigma,
        "noise_sigma_out": estimate_sigma_bands([back(a, b) for a, b in sample_bands(h, w)]),
        "sharpness_gain": _gradient_sum(back, h, w) / max(summary.gradient_sum, 1e-9),
        "clipped_fraction": clipped,
        # what the enhancement blew out: a blank page or a scan's black border is clipped already
        "clipping_added": max(0.0, clipped - summary.clipped_fraction),
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
