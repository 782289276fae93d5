"""Even areas for local contrast: where CLAHE's change must be one value.

CLAHE gives each tile its own curve and interpolates between them, so an even area that
spans tiles (a print's border, a sky, a backdrop) takes a different change in each: a
noise-free border at 229/255 around a photograph came out between 223 and 242, lighter
beside the print, and CLAHE's slope deepened its grain. Over each even area the change is
made one value, the mean of what CLAHE gave it; a pixel takes that value as far as its
own level is near the area's, so the boundary falls on the image's own edges.

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
EVEN = 3 / 255  # the most an even area's cell means spread over 3 × 3 cells (24 px)
NEAR = 6 / 255  # a pixel this far from its area's level keeps CLAHE's own change
_SIMILARITY_SIGMA = 1.0  # px: the level a pixel is judged by, so grain does not decide it
_REACH = 5  # cells around an area where its pixels are looked for (the edge it stops short of)


@dataclass(frozen=True)
class EvenAreas:
    """Cell maps: how much a cell belongs to an even area, the area's level there and its
    one change (in the units of the lightness CLAHE ran on, 0..1)."""

    weight: np.ndarray
    level: np.ndarray
    change: np.ndarray
    fraction: float  # of the cells in even areas
    size: tuple[int, int]  # the image's, (height, width)

    def settle(self, change: np.ndarray, lightness: np.ndarray, top: int) -> None:
        """Give ``change`` (rows ``top:`` of the image, in place) each even area's one value
        where the pixel's level is near the area's."""
        rows = lightness.shape[0]
        cells_down = self.weight.shape[0] / self.size[0]
        if not self.weight[max(0, int(top * cells_down) - 1) : int((top + rows) * cells_down) + 2].any():
            return
        weight, level, area_change = (strips.resized_rows(m, top, top + rows, *self.size)
                                      for m in (self.weight, self.level, self.change))
        judged = cv2.GaussianBlur(lightness, (0, 0), _SIMILARITY_SIGMA)
        far = cv2.min(cv2.absdiff(judged, level, dst=judged), NEAR, dst=judged)
        # the weight, falling to 0 as the pixel's level goes NEAR from the area's
        share = cv2.subtract(weight, cv2.multiply(far, weight, dst=far, scale=1 / NEAR), dst=weight)
        gap = cv2.subtract(area_change, change, dst=area_change)
        cv2.add(change, cv2.multiply(gap, share, dst=gap), dst=change)


def find(levels: np.ndarray, equalised: np.ndarray, tile_cells: float, size: tuple[int, int]) -> EvenAreas | None:
    """The even areas of an 8-bit lightness plane of ``size`` (height, width), ``levels``
    and ``equalised`` as cell maps (``reduce``), at least a quarter of a tile (``tile_cells``
    cells) each: a smaller area lies within a few tiles' curves, which vary little over it.
    None where no area is."""
    if min(levels.shape) < 3:
        return None
    before = levels.astype(np.float32) / 255
    square = np.ones((3, 3), np.uint8)
    even = (cv2.dilate(before, square) - cv2.erode(before, square) <= EVEN).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(even, connectivity=8)
    kept = stats[:, cv2.CC_STAT_AREA] >= tile_cells / 4
    kept[0] = False  # the uneven cells
    labels[~kept[labels]] = 0
    if not labels.any():
        return None
    change = equalised.astype(np.float32) / 255 - before
    flat = labels.ravel()
    means = (np.bincount(flat, change.ravel(), count) / np.maximum(np.bincount(flat, minlength=count), 1))
    inside = labels > 0
    # an area's pixels are looked for beside it too, up to the edge it stops short of (the
    # 3 × 3 cells there are uneven); every cell takes the level and change of the nearest area
    around = cv2.blur(inside.astype(np.float32), (_REACH, _REACH))
    weight = np.clip(around * (_REACH**2 / 3), 0.0, 1.0)
    _, nearest = cv2.distanceTransformWithLabels(
        (~inside).astype(np.uint8), cv2.DIST_L2, 3, labelType=cv2.DIST_LABEL_PIXEL)
    source = np.flatnonzero(inside)[nearest - 1]  # the nearest area cell (labelled 1.. in scan order)
    level = before.ravel()[source]
    return EvenAreas(weight, level, means[labels.ravel()[source]].astype(np.float32), float(inside.mean()), size)


def reduce(plane: np.ndarray) -> np.ndarray:
    """The means of ``plane``'s cells, about ``CELL`` pixels a side (its height and width
    shared evenly among them)."""
    height, width = plane.shape
    return cv2.resize(plane, (-(-width // CELL), -(-height // CELL)), interpolation=cv2.INTER_AREA)
