"""Whether a colour scan is of a monochrome print: its colour follows its tone.

A sepia, selenium or gold-toned print, a cyanotype, or a black-and-white print scanned in
colour carries a colour that is its process's: in every part of the picture, pixels of one
lightness have one colour. Stages that read colour as damage or as the light (fading
restoration, cast removal) would strip it; fading restoration turned a cyanotype's
highlights yellow. A colour photograph, even one faded to two thirds of its chroma, has
objects of different hues at the same lightness.

The measure: pixels binned by L*, each bin's mean (a*, b*) is the tone's colour there, and
the share of pixels more than ``OFF_TONE`` from it is the share in colour of their own,
measured on a slightly blurred image so that grain, scanner noise and JPEG's chroma blocks
do not count. Simulated monochrome prints (noisy, or as JPEG at quality 50) had at most
0.7 % such pixels; colour photographs, faded or not, 4.0 % and more (docs/chain.md).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from . import strips
from .colour_math import lab_to_srgb, lightness, srgb_to_lab

MEASURED_PIXELS = 1_000_000  # an even subsample: the tone curve is pinned down by far fewer
BLUR_SIGMA = 1.5  # px: averages grain and JPEG's chroma blocks; objects' colours stay
LIGHTNESS_BIN = 2.0  # L* units a bin spans
OFF_TONE = 6.0  # Lab units from the tone's colour at that lightness: a colour of its own
MONOCHROME_SHARE = 0.02  # at most this share of pixels in colours of their own
NEUTRAL_CHROMA = 3.0  # a tone less saturated than this is untoned black and white


@dataclass(frozen=True)
class Toning:
    off_tone_share: float  # share of pixels whose colour is not their lightness's tone
    hue_deg: float  # the tone's hue angle in Lab (0 red, 90 yellow, 180 green, 270 blue)
    chroma: float  # the tone's median chroma (Lab)
    curve: np.ndarray = field(repr=False, compare=False)  # the tone's (a*, b*) at each L* bin's centre

    @property
    def monochrome(self) -> bool:
        return self.off_tone_share <= MONOCHROME_SHARE

    @property
    def described(self) -> str:
        return described(self.hue_deg, self.chroma)

    def tone_at(self, l_star: np.ndarray) -> np.ndarray:
        """The tone's (a*, b*) at each L* given, shape (..., 2): interpolated between bins,
        the nearest measured one beyond them."""
        centres = (np.arange(len(self.curve)) + 0.5) * LIGHTNESS_BIN
        flat = l_star.reshape(-1)
        return np.stack([np.interp(flat, centres, self.curve[:, i]) for i in (0, 1)], -1).reshape(
            l_star.shape + (2,)).astype(np.float32)

    def retoned(self, before: np.ndarray, after: np.ndarray) -> np.ndarray:
        """``after``, a tone curve's work on ``before`` (sRGB), with each pixel's colour moved
        from the tone at its old lightness to the tone at its new one: the same curve on
        every channel darkens a dark brown to a saturated red-brown, where the print at
        that lightness is a deeper brown of its own. What a pixel's colour differs from the
        tone by (a stain, a hand tint) it keeps."""
        lab = srgb_to_lab(before)
        lightness_after = lightness(after) * np.float32(100)
        lab[..., 1:] += self.tone_at(lightness_after) - self.tone_at(lab[..., 0])
        lab[..., 0] = lightness_after
        return np.clip(lab_to_srgb(lab), 0.0, 1.0)

    def as_record(self) -> dict[str, Any]:
        return {"off_tone_share": round(self.off_tone_share, 4), "hue_deg": round(self.hue_deg, 1),
                "chroma": round(self.chroma, 2)}


def described(hue_deg: float, chroma: float) -> str:
    """A tone in words, as records and notes give it (from ``Toning.as_record``'s values too)."""
    if chroma < NEUTRAL_CHROMA:
        return "untoned"
    return f"toned at hue {hue_deg:.0f} deg, chroma {chroma:.0f}"


def measure(image: np.ndarray, where: np.ndarray | None = None) -> Toning:
    """``image``: sRGB, float, three channels; measured where ``where`` is true (the print,
    without the scanner's background), else everywhere."""
    sample = np.ascontiguousarray(strips.subsample(image, MEASURED_PIXELS), dtype=np.float32)
    lab = srgb_to_lab(cv2.GaussianBlur(sample, (0, 0), BLUR_SIGMA))
    lab = lab.reshape(-1, 3) if where is None else lab[strips.subsample(where, MEASURED_PIXELS)]
    bins = np.clip(lab[:, 0] / LIGHTNESS_BIN, 0, 100 / LIGHTNESS_BIN).astype(np.intp)
    counts = np.bincount(bins, minlength=int(100 / LIGHTNESS_BIN) + 1)
    tone_a = np.bincount(bins, weights=lab[:, 1], minlength=len(counts)) / np.maximum(counts, 1)
    tone_b = np.bincount(bins, weights=lab[:, 2], minlength=len(counts)) / np.maximum(counts, 1)
    off = np.hypot(lab[:, 1] - tone_a[bins], lab[:, 2] - tone_b[bins]) > OFF_TONE
    chroma = np.hypot(tone_a, tone_b)[bins]
    hue = math.degrees(math.atan2(float((tone_b * counts).sum()), float((tone_a * counts).sum()))) % 360
    index = np.arange(len(counts))
    seen = counts >= max(1, len(lab) // 2000)  # a bin of a few stray pixels is no tone
    curve = np.stack([np.interp(index, index[seen], tone[seen]) for tone in (tone_a, tone_b)], -1)
    return Toning(float(off.mean()), hue, float(np.median(chroma)), curve.astype(np.float32))
