"""Square pixels for a master scanned at two resolutions, as a fax is (204 × 98 dpi).

Such a master's pixels are twice as tall as they are wide. A viewer that reads the
resolution tags draws it right; a browser, most viewers and the report draw one pixel as one
square, and the page comes out squashed to half its height. The derivative is an access copy,
so its pixels are made square at the master's finer resolution: the coarser axis is stretched
(bicubic) after the chain, and the derivative's resolution tags say the same on both axes.
"""
from __future__ import annotations

import cv2
import numpy as np

from . import strips

# Resolutions closer than this are taken as square: a fine-mode fax's 204 × 196 dpi (4 %) is
# left as it is rather than resampled for a difference no reader sees.
TOLERANCE = 0.05
# Resolutions further apart than this are no scanner's (a fax's are 2.08 apart, a draft-mode
# scan's 2 or 3) but a tagging error, say 72 × 300 dpi: the pixels are left as they are.
MAX_RATIO = 3.0
Stretch = tuple[float, float]  # (columns, rows): how much each axis is enlarged beyond the scale
SQUARE: Stretch = (1.0, 1.0)


def ratio(dpi: tuple[float, float] | None) -> float:
    """The finer resolution over the coarser; 1 where the tags give none."""
    return max(dpi) / min(dpi) if dpi and min(dpi) > 0 else 1.0


def stretch_for(dpi: tuple[float, float] | None) -> Stretch:
    """How to make the pixels of a master at ``dpi`` (x, y) square at its finer resolution."""
    if not dpi or not 1 + TOLERANCE <= ratio(dpi) <= MAX_RATIO:
        return SQUARE
    x, y = dpi
    return (y / x, 1.0) if y > x else (1.0, x / y)


def stretched_size(width: int, height: int, stretch: Stretch) -> tuple[int, int]:
    """(width, height) after ``stretch``: the chain makes this size and the gate expects it."""
    return max(1, round(width * stretch[0])), max(1, round(height * stretch[1]))


def stretched(image: np.ndarray, stretch: Stretch) -> np.ndarray:
    """``image`` (H, W) or (H, W, C) enlarged along its coarser axis, bicubic (as the alpha
    plane is upscaled) and clipped to [0, 1]."""
    width, height = stretched_size(image.shape[1], image.shape[0], stretch)
    out = cv2.resize(image, (width, height), interpolation=cv2.INTER_CUBIC)
    return strips.clipped(out.reshape(height, width, *image.shape[2:]))
