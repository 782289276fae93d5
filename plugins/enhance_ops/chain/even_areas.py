"""Even areas for local contrast: where CLAHE's change must follow the level alone.

CLAHE gives each tile its own curve and interpolates between them, so an even area that
spans tiles (a print's card, a sky, a backdrop) takes a different change in each: a
noise-free card at 229/255 around a photograph came out between 223 and 242, lighter
beside the print, and CLAHE's slope deepened its grain. In even areas the change is
instead one curve of the level, the mean of what CLAHE gave the image's even areas at
each level, so an even area at one level moves as one; a pixel takes that curve's value
as far as its own level is near its area's, so an area ends at the image's own edges.

Every decision is a weight, not a threshold, and each weight changes slowly with the
pixels: while even areas were the connected components of a thresholded map, each taking
its mean, the output of archive-photo at 256² agreed with the same chain run with fp32
networks to 44.0 dB (53.6 before even areas, 53.5–53.7 now), as an area's membership and mean
jumped where a cell crossed the threshold.

The areas are found on maps of 8 × 8-pixel cells of the 8-bit lightness CLAHE works on,
before and after it, so nothing of the image's size is made; each strip of the full image
reads the maps enlarged to its rows.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from . import strips

CELL = 8  # pixels a side of a cell of the maps
EVEN = (1 / 255, 6 / 255)  # a cell is even, fully to not at all, as its 3 × 3 cells' means spread this far (24 px)
NEAR = 6 / 255  # a pixel this far from its area's level keeps CLAHE's own change
_SIMILARITY_SIGMA = 1.0  # px: the level a pixel is judged by, so grain does not decide it
_REACH = 5  # cells around an area where its pixels are looked for (the edge it stops short of)
_CURVE_SIGMA = 2.0  # levels of 255 over which the curve's sums are smoothed


@dataclass(frozen=True)
class EvenAreas:
    """Cell maps (how much a cell belongs to an even area, and the area's level there) and
    the even areas' change by level, 256 entries (in the units of the lightness CLAHE ran
    on, 0..1)."""

    weight: np.ndarray
    level: np.ndarray
    curve: np.ndarray
    fraction: float  # of the image in even areas
    size: tuple[int, int]  # the image's, (height, width)

    def settle(self, change: np.ndarray, lightness: np.ndarray, top: int) -> None:
        """Give ``change`` (rows ``top:`` of the image, in place) the even areas' curve where
        the pixel's level is near its area's."""
        rows = lightness.shape[0]
        cells_down = self.weight.shape[0] / self.size[0]
        if not self.weight[max(0, int(top * cells_down) - 1) : int((top + rows) * cells_down) + 2].any():
            return
        weight, level = (strips.resized_rows(m, top, top + rows, *self.size) for m in (self.weight, self.level))
        judged = cv2.GaussianBlur(lightness, (0, 0), _SIMILARITY_SIGMA)
        area_change = cv2.LUT(cv2.convertScaleAbs(judged, alpha=255), self.curve)  # at the nearest level
        far = cv2.min(cv2.absdiff(judged, level, dst=judged), NEAR, dst=judged)
        # the weight, falling to 0 as the pixel's level goes NEAR from the area's
        share = cv2.subtract(weight, cv2.multiply(far, weight, dst=far, scale=1 / NEAR), dst=weight)
        gap = cv2.subtract(area_change, change, dst=area_change)
        cv2.add(change, cv2.multiply(gap, share, dst=gap), dst=change)


def find(levels: np.ndarray, equalised: np.ndarray, tile_cells: float, size: tuple[int, int]) -> EvenAreas | None:
    """The even areas of an 8-bit lightness plane of ``size`` (height, width), ``levels``
    and ``equalised`` as cell maps (``reduce``). A cell counts as far as it is even and so
    is about half of the tile around it (``tile_cells`` cells): a small even patch lies
    within a few tiles' curves, which vary little over it. None where no cell is even."""
    if min(levels.shape) < 3:
        return None
    before = levels.astype(np.float32) / 255
    square = np.ones((3, 3), np.uint8)
    spread = cv2.dilate(before, square) - cv2.erode(before, square)
    even = np.clip((EVEN[1] - spread) / (EVEN[1] - EVEN[0]), 0.0, 1.0)
    side = max(3, round(np.sqrt(tile_cells)) | 1)
    even *= np.clip(2 * cv2.blur(even, (side, side)), 0.0, 1.0)
    if not even.any():
        return None
    # the curve: the change's mean at each level over the even cells, each cell's weight
    # shared between the two levels either side of its own, smoothed over a few levels
    at = before.ravel() * 255
    below = np.minimum(at.astype(np.intp), 254)
    upper_share = at - below
    change = (equalised.astype(np.float32) / 255 - before).ravel()
    weights = even.ravel()
    sums, counts = np.zeros(256), np.zeros(256)
    for index, share in ((below, 1 - upper_share), (below + 1, upper_share)):
        sums += np.bincount(index, weights * share * change, 256)
        counts += np.bincount(index, weights * share, 256)
    sums, counts = (cv2.GaussianBlur(a.reshape(1, -1), (0, 1), _CURVE_SIGMA).ravel() for a in (sums, counts))
    curve = np.where(counts > 1e-9, sums / np.maximum(counts, 1e-9), 0.0).astype(np.float32)
    # an area's pixels are looked for beside it too, up to the edge it stops short of (the
    # 3 × 3 cells there are uneven), by the even cells' mean level around each cell; the
    # weight is full once five of the 5 × 5 cells around are even (fewer, and one cell's
    # evenness moved the weight of its neighbours several times as far)
    around = cv2.blur(even, (_REACH, _REACH))
    weight = np.clip(around * (_REACH**2 / 5), 0.0, 1.0)
    level = cv2.blur(before * even, (_REACH, _REACH)) / np.maximum(around, 1e-6)
    return EvenAreas(weight, level, curve, float(even.mean()), size)


def reduce(plane: np.ndarray) -> np.ndarray:
    """The means of ``plane``'s cells, about ``CELL`` pixels a side (its height and width
    shared evenly among them)."""
    height, width = plane.shape
    return cv2.resize(plane, (-(-width // CELL), -(-height // CELL)), interpolation=cv2.INTER_AREA)
