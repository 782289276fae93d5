"""Colour restoration of faded photographs.

Ageing dye prints lose density per dye (contrast falls unevenly per channel), their paper
base yellows (a yellow/magenta stain lifts the shadows) and their colours bleach. The
restoration removes the stain seen in the darkest pixels, restores the contrast between the
darkest and brightest pixels (by luma), and gives back part of the lost saturation.

Which part of a highlight's colour is the scene and which is fading cannot be told from the
pixels: a warm sunset and a yellowed print look alike. So the per-channel (cast) part of the
correction is applied only halfway (``cast_weight``), which measured best on average on the
benchmark in bench/fading_benchmark.py; docs/chain.md has its results and shortfall.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .colour_math import lab_to_srgb, luma, srgb_to_lab

Record = dict[str, Any]
_LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)


@dataclass(frozen=True)
class FadingSigns:
    black_luma: float  # luma of the darkest 0.2 %: lifted by a stained base
    range_luma: float  # white minus black luma: contrast left
    stain_chroma: float  # chroma (Lab) of the darkest pixels: the stain's colour strength
    chroma_p95: float  # saturation left

    @property
    def faded(self) -> bool:
        return (self.black_luma > 0.08 and self.stain_chroma > 4.0) or (self.range_luma < 0.7 and self.chroma_p95 < 30)

    def as_record(self) -> Record:
        return {k: round(float(v), 4) for k, v in asdict(self).items()}


def _extremes(image: np.ndarray, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    y = luma(image)
    lo, hi = np.quantile(y, [fraction, 1 - fraction])
    return image[y <= lo].mean(axis=0), image[y >= hi].mean(axis=0)


def fading_signs(image: np.ndarray, fraction: float = 0.002) -> FadingSigns:
    black, white = _extremes(image, fraction)
    black_lab = srgb_to_lab(black[None, None, :])[0, 0]
    lab = srgb_to_lab(image)
    return FadingSigns(
        black_luma=float(black @ _LUMA),
        range_luma=float((white - black) @ _LUMA),
        stain_chroma=float(np.hypot(black_lab[1], black_lab[2])),
        chroma_p95=float(np.percentile(np.hypot(lab[..., 1], lab[..., 2]), 95)),
    )


def restore_faded_colour(
    image: np.ndarray,
    *,
    reference: np.ndarray | None = None,
    mode: str = "auto",
    fraction: float = 0.002,
    cast_weight: float = 0.5,
    chroma_target: float = 35.0,
    max_chroma_gain: float = 1.6,
) -> tuple[np.ndarray, Record]:
    """``mode``: auto (only when the image shows signs of fading), on, or off.

    ``reference`` is where fading is measured (the image before super-resolution, whose
    network may deepen blacks); the correction is applied to ``image``.
    """
    if mode == "off":
        return image, {"decision": "skipped: turned off"}
    if image.shape[2] == 1:
        return image, {"decision": "skipped: greyscale image"}
    measured = image if reference is None else reference
    signs = fading_signs(measured, fraction)
    record: Record = {"signs": signs.as_record()}
    if mode == "auto" and not signs.faded:
        return image, {**record, "decision": "skipped: no signs of fading"}
    black, white = _extremes(measured, fraction)
    span = np.maximum(white - black, 1e-3)
    joint = float(span @ _LUMA)
    gains = np.power(1 / span, cast_weight) * (1 / joint) ** (1 - cast_weight)
    out = np.clip((image - black) * gains, 0.0, 1.0)
    lab = srgb_to_lab(out)
    sample = lab[::2, ::2]  # a quarter of the pixels gives the same 95th percentile, in a quarter of the time
    chroma_p95 = float(np.percentile(np.hypot(sample[..., 1], sample[..., 2]), 95))
    gain = float(np.clip(chroma_target / max(chroma_p95, 1e-3), 1.0, max_chroma_gain))
    lab[..., 1:] *= gain
    return lab_to_srgb(lab), {
        **record,
        "black_point": [round(float(v), 4) for v in black],
        "white_point": [round(float(v), 4) for v in white],
        "gains": [round(float(v), 4) for v in gains],
        "chroma_gain": round(gain, 3),
        "decision": "faded colours restored",
    }
