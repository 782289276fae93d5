"""Which parts of a black-and-white scan are dithered, and their dots turned back into tones.

A photograph or a tint in a bitonal scan is made of isolated dots: a scanner's halftone mode
(error diffusion), an ordered dither, or a printed one scanned at one bit. Enlarged as they
are, the dots stay dots, each a blob the network draws, and the gate holds the scan (a
Floyd-Steinberg photo at x2 through SPAN: 25 dB consistency); denoised, they read as salt
and pepper, and the JPEG or WebP of one came out at 7-9 dB. Descreening first, a Gaussian
over the dithered parts only (print keeps its own smoothing), gives the network the tones
the dots stand for: on four photographs dithered by Floyd-Steinberg and by a Bayer matrix,
sigma 1.0-1.5 px came closest to the photograph (26-28 dB; 2 px on a smooth one).

A dot is a pixel none of whose four neighbours shares its value, and which is not on a
diagonal line one pixel wide: its neighbours along no diagonal share its value, or along
both as in a chequer (a mid-tone's dither) that repeats two pixels along, not as where two
hatched lines cross. Lines of print and hatching are not dots. In 31-px neighbourhoods,
scikit-image's page of print and its handwriting have at most 2.7 % dots at their own small
size and under 0.8 % enlarged two or three times; a dither of the camera 7-35 % (10th to 90th
percentile). Clustered-dot screens (a newspaper's halftone at one bit) make dots of several
pixels in their mid-tones, and are found only in their highlights and shadows: docs/chain.md,
*Known limits*.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from . import strips

WINDOW = 31  # pixels across the neighbourhood in which dots are counted
DOT_SHARE = 0.03  # a neighbourhood with at least this share of dots is dithered (print: under 0.03)
MIN_SHARE = 0.02  # of the image dithered, or it is left as it is
NEAR_ENDS = 0.97  # samples within a quarter of black or white: two-valued, perhaps through a lossy codec
SIGMA = 1.2  # px: the Gaussian that turns dots back into tones


@dataclass(frozen=True)
class Dither:
    """Where a scan is dithered: ``weight`` is 1 there and 0 elsewhere, feathered between, at
    the scan's own size."""

    weight: np.ndarray  # uint8, 0-255
    share: float  # of the image's pixels, dithered

    def as_record(self) -> dict[str, float]:
        return {"share": round(self.share, 4), "sigma": SIGMA}

    def descreened(self, image: np.ndarray, elsewhere: np.ndarray) -> np.ndarray:
        """``image`` smoothed by ``SIGMA`` where dithered, ``elsewhere`` (the same image treated
        as print) outside, blended by the weight."""
        tones = cv2.GaussianBlur(image, (0, 0), SIGMA).reshape(image.shape)
        if self.share >= 1.0:
            return tones

        def blend(r0: int, r1: int) -> None:  # by strips: no float copy of the weight
            band, rest = tones[r0:r1], elsewhere[r0:r1]
            weight = self.weight[r0:r1, :, None].astype(np.float32)
            weight *= 1 / 255
            band -= rest
            band *= weight
            band += rest

        strips.map_bands(*image.shape[:2], blend)
        return tones


def find(image: np.ndarray) -> Dither | None:
    """The dithered parts of a one-channel image of black and white only (or nearly: the JPEG
    of one), or None where there are too few to matter or the image has tones of its own."""
    if image.shape[2] != 1 or not _near_ends(image):
        return None
    dots = _dots(image[:, :, 0] >= 0.5)
    density = cv2.blur(dots, (WINDOW, WINDOW), borderType=cv2.BORDER_REFLECT)
    dithered = cv2.compare(density, round(DOT_SHARE * 255), cv2.CMP_GE)
    share = cv2.countNonZero(dithered) / dithered.size
    if share < MIN_SHARE:
        return None
    # bright or dark stretches inside a photograph hold few dots but are part of it: closed
    # over, then feathered so that the smoothing fades in over a few pixels
    reach = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (WINDOW, WINDOW))
    dithered = cv2.morphologyEx(dithered, cv2.MORPH_CLOSE, reach, borderType=cv2.BORDER_REPLICATE)
    share = cv2.countNonZero(dithered) / dithered.size
    if share == 1.0:
        return Dither(dithered, 1.0)
    return Dither(cv2.GaussianBlur(dithered, (0, 0), 2 * SIGMA), share)


def _near_ends(image: np.ndarray) -> bool:
    middle = cv2.inRange(image, 0.25, 0.75)
    return cv2.countNonZero(middle) <= (1 - NEAR_ENDS) * middle.size


def _dots(light: np.ndarray) -> np.ndarray:
    """255 where a pixel is an isolated dot (see the module's docstring), else 0."""
    padded = np.pad(light, 2, mode="edge")  # beyond the border, nothing to tell a dot by
    height, width = light.shape

    def same(dy: int, dx: int) -> np.ndarray:
        return padded[2 + dy : 2 + dy + height, 2 + dx : 2 + dx + width] == light

    alone = ~(same(-1, 0) | same(1, 0) | same(0, -1) | same(0, 1))
    falling, rising = same(-1, -1) & same(1, 1), same(-1, 1) & same(1, -1)
    # where both diagonals run on, a chequer (a mid-tone's dither) repeats two steps along a
    # row or column; a crossing of two hatched lines does not
    chequer = falling & rising & (same(0, -2) | same(0, 2) | same(-2, 0) | same(2, 0))
    dots = alone & ((~falling & ~rising) | chequer)
    return dots.view(np.uint8) * np.uint8(255)
