"""Colour under full transparency, filled from the visible colours around it.

Nobody sees the colour of a pixel whose alpha is 0, and writers leave anything there: black,
most often, or a GIF's background. But the networks and the alpha's own enlargement spread
it into the visible edge: bicubic alpha makes the edge's pixels partly opaque, and the
colour the network gave them is part black, so a cut-out object came out with a dark
outline (on a 128-px crop at x2, the edge's colour 0.13 against the object's 0.36).
Filled first with the colours of the nearest visible pixels (push-pull: averaged down a
pyramid of halvings until no hole is left, then drawn back up), the edge keeps the object's
colour. Visible pixels, partly transparent ones included, are left as they are.
"""
from __future__ import annotations

import cv2
import numpy as np

HIDDEN_BELOW = 0.5 / 255  # alpha under half an 8-bit level: fully transparent


def fill(colour: np.ndarray, alpha: np.ndarray) -> int:
    """Fill ``colour`` (H, W, C float) in place under ``alpha`` (H, W, in [0, 1]) of 0; how many
    pixels were filled (none where nothing, or everything, is transparent)."""
    hidden = alpha < HIDDEN_BELOW
    count = int(np.count_nonzero(hidden))
    if count == 0 or count == hidden.size:
        return 0
    colour[hidden] = 0.0  # the pyramid's base, weighted by visibility: what was there counts for nothing
    levels, below, weight = [], colour, (~hidden).astype(np.float32)
    while min(weight.shape) > 1 and not weight.all():
        size = ((weight.shape[1] + 1) // 2, (weight.shape[0] + 1) // 2)
        below, weight = _resized(below, size, cv2.INTER_AREA), cv2.resize(weight, size, interpolation=cv2.INTER_AREA)
        levels.append((below, weight))
    if not levels:  # a single row or column: its visible colours' mean
        colour[hidden] = colour[~hidden].mean(axis=0)
        return count
    coarse, weight = levels[-1]
    filled = coarse / np.maximum(weight, 1e-6)[..., None]
    filled[weight <= 0] = coarse.sum(axis=(0, 1)) / weight.sum()  # a level one pixel high with holes left in it
    for premultiplied, weight in reversed(levels[:-1]):  # visible colour where there is some, the coarser elsewhere
        up = _resized(filled, (weight.shape[1], weight.shape[0]), cv2.INTER_LINEAR)
        filled = premultiplied + (1.0 - np.minimum(weight, 1.0))[..., None] * up  # premultiplied: weight x own colour
    np.copyto(colour, _resized(filled, (colour.shape[1], colour.shape[0]), cv2.INTER_LINEAR), where=hidden[..., None])
    return count


def _resized(image: np.ndarray, size: tuple[int, int], interpolation: int) -> np.ndarray:
    return cv2.resize(image, size, interpolation=interpolation).reshape(size[1], size[0], image.shape[2])
