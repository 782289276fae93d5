"""The scanner's background around a print, so that what the chain measures is the print.

Archives scan a print whole, edges and all, on the scanner's black or white background (or
under its white lid), which leaves a uniform frame around the picture. Its black was the
darkest 0.2 % that fading is judged by, so a faded print scanned on black never looked
faded, and its white was the white point exposure and the restoration stretch to.

The background is what is connected to the image's edges in the colour of the outermost
pixels (within ``TOLERANCE``); it counts as one only where that colour is neutral (black
felt, a white lid, grey card: a print's own paper border or a mount, tinted by age, is the
print's, and fades with it), where it surrounds the print (most of the outermost pixels are
in it) or runs along two sides that meet (a print laid against a flatbed's corner), and
where what it leaves is one or more rectangles, as prints are: a portrait on a plain
studio backdrop, or a sky over a straight horizon, is a picture and leaves no rectangle
inside a frame.

The tone stages then leave the background as it was scanned (``ThePrint.weight_rows``): the
print's own stretch had clipped a white lid to white over a quarter of a scan, which the
gate holds as highlights blown.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from . import strips
from .colour_math import srgb_to_lab

LOOKED_AT_PIXELS = 1_000_000  # the background is found on an area reduction to at most this
TOLERANCE = 0.08  # of full scale, per channel, from the frame's median colour: noise, a lid's shading
NEUTRAL_CHROMA = 4.0  # Lab: a background more saturated than this is a paper border or a mount
FRAME_SHARE = 0.9  # of the outermost pixels the background must hold to surround the print,
# or of each of two sides that meet, for a print laid against a flatbed's corner
RING = 2  # reduced pixels at the print's edge, a blend of print and background, left out too
RECTANGULAR = 0.93  # a print fills at least this much of its smallest enclosing (turned) rectangle
SMALLEST_PRINT = 0.01  # of the image: smaller islands (dust on the background, a label) are left out
LEAST_LEFT = 0.25  # of the image: a "print" smaller than this is not taken for one
FEATHER = 3  # reduced pixels over which the tone stages' change falls off into the background


@dataclass(frozen=True)
class ThePrint:
    mask: np.ndarray  # full size: True on the print, less its edge; what is measured
    weight: np.ndarray  # reduced: 1 on the print and its edge, falling to 0 into the background

    @property
    def share(self) -> float:
        return float(self.mask.mean())

    def weight_rows(self, y0: int, y1: int, height: int, width: int) -> np.ndarray:
        """Rows ``y0:y1`` of the weight enlarged (bilinear) to ``height`` x ``width``, the
        size of the master or of an enlargement of it, shape (rows, width, 1)."""
        return strips.resized_rows(self.weight, y0, y1, height, width)[..., None]


def find(image: np.ndarray) -> ThePrint | None:
    """The print; None where there is no background around it to leave out."""
    height, width = image.shape[:2]
    factor = min(1.0, math.sqrt(LOOKED_AT_PIXELS / (height * width)))
    small = image if factor == 1.0 else cv2.resize(
        image, (max(1, round(width * factor)), max(1, round(height * factor))), interpolation=cv2.INTER_AREA)
    small = small.reshape(small.shape[0], small.shape[1], -1)
    if min(small.shape[:2]) < 8:
        return None
    colour = np.median(_frame(small), axis=0)
    if colour.size == 3 and math.hypot(*srgb_to_lab(colour.astype(np.float32)[None, None])[0, 0, 1:]) > NEUTRAL_CHROMA:
        return None
    near = np.all(np.abs(small - colour) <= TOLERANCE, axis=-1)
    if _frame(near).mean() < FRAME_SHARE and not _against_a_corner(near):
        return None
    _, labels = cv2.connectedComponents(near.astype(np.uint8), connectivity=4)
    touching = np.unique(_frame(labels))
    background = np.isin(labels, touching[touching > 0])  # label 0: the pixels not near the colour
    ring = np.ones((2 * RING + 1, 2 * RING + 1), np.uint8)
    inside = ~cv2.dilate(background.astype(np.uint8), ring).astype(bool)
    count, islands, stats, _ = cv2.connectedComponentsWithStats(inside.astype(np.uint8), connectivity=8)
    kept = np.zeros(count, bool)
    for island in range(1, count):
        area = stats[island, cv2.CC_STAT_AREA]
        if area < SMALLEST_PRINT * inside.size:
            continue
        contours, _ = cv2.findContours((islands == island).astype(np.uint8), cv2.RETR_EXTERNAL,
                                       cv2.CHAIN_APPROX_SIMPLE)
        (_, _), (w, h), _ = cv2.minAreaRect(np.concatenate(contours))
        if area < RECTANGULAR * w * h:
            return None  # a shape on a plain ground, not a print on the scanner's
        kept[island] = True
    the_print = kept[islands]
    if the_print.mean() < LEAST_LEFT:
        return None
    with_edge = cv2.dilate(the_print.astype(np.uint8), ring)
    weight = cv2.blur(cv2.dilate(with_edge, np.ones((2 * FEATHER - 1,) * 2, np.uint8)).astype(np.float32),
                      (2 * FEATHER - 1, 2 * FEATHER - 1))
    return ThePrint(cv2.resize(the_print.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST) > 0,
                    np.maximum(weight, with_edge))


def _against_a_corner(near: np.ndarray) -> bool:
    """The background along two sides that meet: a print laid against the flatbed's corner
    guide, which its other two sides run off. A sky over a horizon holds one side only."""
    top, bottom, left, right = (float(side.mean()) for side in (near[0], near[-1], near[:, 0], near[:, -1]))
    return any(min(a, b) >= FRAME_SHARE for a, b in ((top, left), (top, right), (bottom, left), (bottom, right)))


def _frame(array: np.ndarray) -> np.ndarray:
    """The outermost pixels' values, each once, side after side."""
    return np.concatenate([array[0], array[-1], array[1:-1, 0], array[1:-1, -1]])
