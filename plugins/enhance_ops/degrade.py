"""A model of how colour prints fade, for benchmarking colour restoration on real photos.

Dye density falls unevenly (cyan fastest, so red rises), the paper base yellows (a stain
that lifts shadows, strongest in red and green), and light bleaches colour. At ``strength``
1 the channels keep 75/65/55 % of their contrast over a stain of 0.16/0.12/0.04 and 35 % of
the chroma is lost; 0.6 is a moderately faded print.
"""
from __future__ import annotations

import numpy as np

from .chain.colour_math import lab_to_srgb, srgb_to_lab

CONTRAST_LOSS = np.array([0.25, 0.35, 0.45], np.float32)
STAIN = np.array([0.16, 0.12, 0.04], np.float32)
CHROMA_LOSS = 0.35


def fade(image: np.ndarray, strength: float = 1.0) -> np.ndarray:
    lab = srgb_to_lab(image)
    lab[..., 1:] *= 1 - CHROMA_LOSS * strength
    bleached = lab_to_srgb(lab)
    return np.clip(strength * STAIN + bleached * (1 - strength * CONTRAST_LOSS), 0.0, 1.0).astype(np.float32)
