"""Denoising that first finds out what kind of noise there is and how much.

Impulse noise (salt-and-pepper: dust, dropouts) is repaired pixel by pixel with a median of
the neighbours, touching nothing else. Gaussian-like grain goes to the FFDNet model, whose
noise-level input is set from the measured σ, so a clean scan is not smeared and a grainy
one is not left grainy.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn

from . import strips
from .colour_math import luma
from .quantiles import median
from .superres import Inference, Tiling, upscale

Record = dict[str, Any]

# FFDNet's σ input relative to the measured σ, per strength (the seed design's three levels).
# Measured (docs/chain.md): 1.0 gives the best PSNR at σ 5-25; weak keeps film grain, strong smooths more.
STRENGTH_FACTOR = {"weak": 0.8, "medium": 1.0, "strong": 1.15}
MIN_SIGMA = 3 / 255  # below this, grain is part of the original, not a fault to remove
IMPULSE_SHARE = 0.002  # of the pixels, isolated extremes: from this share up, the noise is impulses
_LAPLACIAN_MASK = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)


@dataclass(frozen=True)
class NoiseEstimate:
    sigma: float  # Gaussian-like noise, on the [0, 1] scale (×255 for 8-bit units)
    impulse_fraction: float  # share of pixels that are isolated extreme outliers
    kind: str  # "none", "gaussian" or "impulse"

    def as_record(self) -> Record:
        return {"sigma_255": round(self.sigma * 255, 3), "impulse_fraction": round(self.impulse_fraction, 5),
                "kind": self.kind}


def impulse_mask(image: np.ndarray, *, jump: float = 0.4) -> np.ndarray:
    """Pixels at the extremes of the range that stand out from their 3x3 median: salt and pepper."""
    out = np.zeros(image.shape[:2], dtype=bool)
    for c in range(image.shape[2]):
        plane = np.ascontiguousarray(image[:, :, c])
        median = cv2.medianBlur(plane, 3)
        extreme = (plane <= 1 / 255) | (plane >= 254 / 255)
        out |= extreme & (np.abs(plane - median) > jump)
    return out


SIGMA_SAMPLE_PIXELS = 4_000_000  # noise is measured on at most this many pixels, in evenly spaced bands


def sample_bands(height: int, width: int) -> list[tuple[int, int]]:
    """Rows to measure noise on: all of them up to ``SIGMA_SAMPLE_PIXELS``, else evenly spaced
    bands adding up to about that (a few million pixels pin σ down to well under 1 %)."""
    if height * width <= SIGMA_SAMPLE_PIXELS:
        return [(0, height)]
    rows = max(64, strips.strip_rows(width))
    count = max(1, SIGMA_SAMPLE_PIXELS // (rows * width))
    starts = np.linspace(0, height - rows, count).astype(int)
    return [(int(a), int(a) + rows) for a in starts]


def estimate_sigma(image: np.ndarray, exclude: np.ndarray | None = None) -> float:
    """Immerkær's fast noise estimate per channel, leaving out edges (Tai & Yang) and impulses.

    The Laplacian-difference mask cancels smooth image content; edges, which it does not
    cancel, are dropped by their luma gradient so texture is not mistaken for noise. Channels
    are measured separately (luma would average independent channel noise down) and the
    mean σ is returned. Large images are measured on the bands of ``sample_bands``.
    """
    bands = sample_bands(*image.shape[:2])
    return estimate_sigma_bands(
        [image[a:b] for a, b in bands], None if exclude is None else [exclude[a:b] for a, b in bands]
    )


def estimate_sigma_bands(bands: list[np.ndarray], exclude: list[np.ndarray] | None = None) -> float:
    """``estimate_sigma`` over several bands of one image, with one edge threshold for all."""
    gradients = []
    for band in bands:
        y = luma(band).astype(np.float32, copy=False)
        gradients.append(np.abs(cv2.Sobel(y, cv2.CV_32F, 1, 0)) + np.abs(cv2.Sobel(y, cv2.CV_32F, 0, 1)))
    threshold = median(np.concatenate([g.ravel() for g in gradients]) if len(gradients) > 1 else gradients[0])
    channels = bands[0].shape[2]
    total, kept = np.zeros(channels), 0
    for i, (band, gradient) in enumerate(zip(bands, gradients)):
        keep = gradient <= threshold
        if exclude is not None:
            grown = cv2.dilate(exclude[i].astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
            keep &= ~grown
        keep[[0, -1], :] = False
        keep[:, [0, -1]] = False
        mask = keep.view(np.uint8)
        count = cv2.countNonZero(mask)
        if not count:
            continue
        kept += count
        # all channels in one filtering; their sums over the kept pixels from cv2.mean's
        # double-precision accumulation, without the copies boolean indexing makes
        pixels = np.ascontiguousarray(band, dtype=np.float32)
        response = cv2.filter2D(pixels, cv2.CV_32F, _LAPLACIAN_MASK, borderType=cv2.BORDER_REFLECT)
        np.abs(response, out=response)  # in place: measured on the output, this runs at its peak memory
        total += np.array(cv2.mean(response, mask=mask)[:channels]) * count
    if kept < 64:
        return 0.0
    return float(np.mean([math.sqrt(math.pi / 2) * t / kept / 6.0 for t in total]))


def two_valued(image: np.ndarray) -> bool:
    """Every sample 0 or 1: black and white, as a bitonal scan holds (or a page thresholded to
    one; in colour, line art of pure primaries). Every isolated dot of its dither would read
    as salt and pepper."""
    bands = (image[r0:r1] for r0, r1 in strips.bands(*image.shape[:2]))
    return all(np.all((band == 0) | (band == 1)) for band in bands)


def analyse_noise(
    image: np.ndarray,
    *,
    impulse_threshold: float = IMPULSE_SHARE,
    gaussian_threshold: float = MIN_SIGMA,
    exclude: np.ndarray | None = None,
) -> NoiseEstimate:
    """``exclude``: pixels that are the picture, whatever they look like (a halftone screen's
    dots), measured neither as impulses nor as grain."""
    return _noise_and_impulses(image, exclude, impulse_threshold, gaussian_threshold)[0]


def _noise_and_impulses(
    image: np.ndarray, exclude: np.ndarray | None, impulse_threshold: float = IMPULSE_SHARE,
    gaussian_threshold: float = MIN_SIGMA,
) -> tuple[NoiseEstimate, np.ndarray]:
    """``analyse_noise``'s estimate and the impulses it counted, which ``denoise`` repairs."""
    impulses = impulse_mask(image)
    if exclude is not None:
        impulses &= ~exclude
    measured = impulses.size if exclude is None else impulses.size - cv2.countNonZero(exclude.view(np.uint8))
    fraction = cv2.countNonZero(impulses.view(np.uint8)) / max(measured, 1)
    sigma = estimate_sigma(image, exclude=impulses if exclude is None else impulses | exclude)
    if fraction >= impulse_threshold:
        kind = "impulse"
    elif sigma >= gaussian_threshold:
        kind = "gaussian"
    else:
        kind = "none"
    return NoiseEstimate(sigma, fraction, kind), impulses


def remove_impulses(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Replace only the flagged pixels, by the median of their unflagged 5x5 neighbours."""
    out = image.copy()
    padded = np.pad(image, ((2, 2), (2, 2), (0, 0)), mode="reflect")
    good = np.pad(~mask, 2, mode="reflect")
    ys, xs = np.nonzero(mask)
    for c in range(image.shape[2]):
        windows = np.stack([padded[ys + dy, xs + dx, c] for dy in range(5) for dx in range(5)], axis=1)
        valid = np.stack([good[ys + dy, xs + dx] for dy in range(5) for dx in range(5)], axis=1)
        windows = np.where(valid, windows, np.nan)
        repaired = np.nanmedian(np.where(valid.any(axis=1, keepdims=True), windows, image[ys, xs, c][:, None]), axis=1)
        out[ys, xs, c] = repaired
    return out


class _WithNoiseLevel(nn.Module):
    """Presents FFDNet as an image-to-image network, so the tiling code can run it."""

    def __init__(self, model: nn.Module, sigma: float) -> None:
        super().__init__()
        self.model, self.sigma = model, sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        level = torch.full((x.shape[0], 1, 1, 1), self.sigma, dtype=x.dtype, device=x.device)
        return self.model(x, level)


def strength_for(sigma: float) -> str:
    """The seed design's mapping: light grain gets a weak pass, heavy grain a strong one."""
    sigma_255 = sigma * 255
    if sigma_255 < 8:
        return "weak"
    return "medium" if sigma_255 < 20 else "strong"


def denoise(
    image: np.ndarray,
    ffdnet: nn.Module | None,
    *,
    strength: str = "auto",
    sigma_override: float | None = None,
    tiling: Tiling = Tiling(tile=512, pad=16, overlap=8),
    inference: Inference = Inference(),
    exclude: np.ndarray | None = None,
) -> tuple[np.ndarray, Record]:
    """Measure the noise, then remove it in the way its kind needs.

    ``strength``: auto (from σ), weak, medium, strong or off; ``sigma_override`` (8-bit units)
    replaces the measured σ; ``exclude`` (boolean, per pixel) is left out of the measurements
    and of the impulse repairs, and FFDNet's tiles wholly within it are not run: the caller
    keeps those pixels as they were.
    """
    if strength == "off":
        return image, {"measured": analyse_noise(image).as_record(), "decision": "skipped: turned off"}
    if two_valued(image):
        return image, {"decision": "skipped: black and white only, as a bitonal scan: its dither and thin strokes "
                                   "are not noise"}
    estimate, mask = _noise_and_impulses(image, exclude)
    record: Record = {"measured": estimate.as_record()}
    out, decisions = image, []
    if estimate.kind == "impulse":
        out = remove_impulses(image, mask)
        decisions.append(f"impulse noise detected: {cv2.countNonZero(mask.view(np.uint8))} pixels repaired by median")
        estimate = NoiseEstimate(estimate_sigma(out, exclude=exclude), 0.0, "gaussian")
    sigma = sigma_override / 255 if sigma_override is not None else estimate.sigma
    if sigma_override is not None or sigma >= MIN_SIGMA:
        if ffdnet is None:
            raise ValueError("Gaussian denoising needs the ffdnet-color model")
        level = strength_for(sigma) if strength == "auto" else strength
        model_sigma = sigma * STRENGTH_FACTOR[level]
        out = upscale(out, _WithNoiseLevel(ffdnet, model_sigma), 1, tiling=tiling, inference=inference, unrun=exclude)
        decisions.append(
            f"Gaussian noise sigma {sigma * 255:.1f}/255: FFDNet, {level} (model sigma {model_sigma * 255:.1f})"
        )
        record.update(strength=level, model_sigma_255=round(model_sigma * 255, 3))
    if not decisions:
        return image, {**record, "decision": "skipped: no noise worth removing"}
    return out.astype(np.float32), {**record, "decision": "; ".join(decisions)}
