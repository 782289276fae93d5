"""Which parts of a black-and-white scan are dithered or screened, and their dots turned back
into tones.

A photograph or a tint in a bitonal scan is made of dots: isolated ones where a scanner's
halftone mode (error diffusion) or an ordered dither made it, clusters of a few pixels on a
regular grid where a printed halftone screen was scanned at one bit. Enlarged as they are,
the dots stay dots, each a blob the network draws, and the gate holds the scan (a
Floyd-Steinberg photo at x2 through SPAN: 25 dB consistency); denoised, they read as salt
and pepper, and the JPEG or WebP of one came out at 7-9 dB. Descreening first, a Gaussian
over the dithered parts only (print keeps its own smoothing), gives the network the tones
the dots stand for. On three photographs, sigma 1.2 px came closest to the photograph
dithered by Floyd-Steinberg (27-28 dB), and 1.5-2.0 px (1.8 for most) screened at periods
of 4 to 6 px (22-23 dB). A dither to a few pure colours (each channel 0 or 1, the eight
colours of a printer's or a screen's primaries) is looked at channel by channel.

Isolated dots: a pixel none of whose four neighbours shares its value, and which is not on
a diagonal line one pixel wide: its neighbours along no diagonal share its value, or along
both as in a chequer (a mid-tone's dither) that repeats two pixels along, not as where two
hatched lines cross. Lines of print and hatching are not dots. In 31-px neighbourhoods,
scikit-image's page of print and its handwriting have at most 2.7 % dots at their own small
size and under 0.8 % enlarged two or three times; a dither of the camera 7-35 % (10th to 90th
percentile). A screen's mid-tones have no isolated dots, but many small patches (8-connected,
of either colour, 40 px or less): 40 or more in a neighbourhood at periods up to 6 px, where
print has at most 37 (the page at its own size, about 100 dpi) and 20 at twice it.
Coarser screens, whose dots SPAN enlarges as shapes, pass the gate as they are.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from . import strips

WINDOW = 31  # pixels across the neighbourhood in which dots are counted
DOT_SHARE = 0.03  # a neighbourhood with at least this share of isolated dots is dithered (print: under 0.03)
PATCH_PX = 40  # a patch of one colour this small or smaller is a screen's dot
SCREEN_PATCHES = 40  # a neighbourhood with at least this many such patches is screened (print: at most 37)
MIN_SHARE = 0.02  # of the image dithered, or it is left as it is
NEAR_ENDS = 0.97  # samples within a quarter of black or white: two-valued, perhaps through a lossy codec
DITHER_SIGMA, SCREEN_SIGMA = 1.2, 1.8  # px: the Gaussians that turn dots back into tones
SIGMA_PER_PERIOD = 0.5  # a screen scanned in tones: the Gaussian's sigma, in its periods (screen.py's docstring)
FEATHER = 2.4  # px: the Gaussian over the edge of the dithered parts


@dataclass(frozen=True)
class Dither:
    """Where a scan is dithered: ``weight`` is 1 there and 0 elsewhere, feathered between, at
    the scan's own size."""

    weight: np.ndarray  # uint8, 0-255
    share: float  # of the image's pixels, dithered
    screen: bool  # a halftone screen's clustered dots, for the most part, rather than isolated ones
    colour: bool = False  # in a few pure colours rather than black and white (or, in tones, in colour)
    period: float = 0.0  # px: a screen scanned in grey or colour tones (screen.py), not at one bit

    @property
    def sigma(self) -> float:
        if self.period:
            return round(SIGMA_PER_PERIOD * self.period, 2)
        return SCREEN_SIGMA if self.screen else DITHER_SIGMA

    @property
    def in_tones(self) -> bool:
        """Scanned in tones: the rest of the image is not print of black and white."""
        return self.period > 0

    @property
    def where(self) -> str:
        return "" if self.share >= 1.0 else f" over {math.floor(self.share * 100)}% of the image"  # never "100%"

    @property
    def made(self) -> str:
        return "halftone-screened" if self.screen else "dithered"

    @property
    def inks(self) -> str:
        if self.in_tones:
            return f"and scanned in {'colour' if self.colour else 'grey'}"
        return "in a few pure colours" if self.colour else "black and white"

    @property
    def kind(self) -> str:
        if self.in_tones:
            return f"a printed halftone screen, its wave {self.period:.1f} px long"
        if self.screen:
            return "clustered dots on a grid, as a printed halftone screen makes"
        return "isolated dots, as error diffusion or an ordered dither makes"

    def as_record(self) -> dict[str, Any]:
        record = {"share": round(self.share, 4), "screen": self.screen, "colour": self.colour, "sigma": self.sigma}
        return {**record, "period_px": round(self.period, 2)} if self.in_tones else record

    def descreened(self, image: np.ndarray, elsewhere: np.ndarray) -> np.ndarray:
        """``image`` smoothed by ``sigma`` where dithered, ``elsewhere`` (the same image treated
        as print) outside, blended by the weight."""
        tones = cv2.GaussianBlur(image, (0, 0), self.sigma).reshape(image.shape)
        return tones if self.share >= 1.0 else self.mixed(tones, elsewhere, out=tones)

    def mixed(self, inside: np.ndarray, outside: np.ndarray, *, out: np.ndarray) -> np.ndarray:
        """``inside`` where dithered, ``outside`` elsewhere, blended by the weight into ``out``
        (which may be either of them)."""

        def blend(r0: int, r1: int) -> None:  # by strips: no float copy of the weight
            weight = self.weight[r0:r1, :, None].astype(np.float32)
            weight *= 1 / 255
            difference = np.subtract(inside[r0:r1], outside[r0:r1])
            difference *= weight
            np.add(outside[r0:r1], difference, out=out[r0:r1])

        strips.map_bands(*out.shape[:2], blend)
        return out


def find(image: np.ndarray) -> Dither | None:
    """The dithered parts of an image of black and white only, or of a few pure colours (each
    channel 0 or 1: eight colours, as a colour dither to a printer's or a screen's primaries
    gives), or nearly (the JPEG of one); None where there are too few to matter, the image
    has tones of its own, or it is narrower than a neighbourhood in which to count them.
    Each channel is looked at on its own; a neighbourhood is dithered where any is."""
    if min(image.shape[:2]) < WINDOW or not _near_ends(image):
        return None
    dithered, screened = (mask.view(np.uint8) for mask in _neighbourhoods(image[:, :, 0] >= 0.5))
    for channel in range(1, image.shape[2]):
        more = _neighbourhoods(image[:, :, channel] >= 0.5)
        dithered |= more[0].view(np.uint8)
        screened |= more[1].view(np.uint8)
    isolated = cv2.countNonZero(dithered)
    dithered |= screened
    dithered *= np.uint8(255)
    found = cv2.countNonZero(dithered)
    if found < MIN_SHARE * dithered.size:
        return None
    # bright or dark stretches inside a photograph hold few dots but are part of it: closed
    # over, then feathered so that the smoothing fades in over a few pixels
    reach = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (WINDOW, WINDOW))
    dithered = cv2.morphologyEx(dithered, cv2.MORPH_CLOSE, reach, borderType=cv2.BORDER_REPLICATE)
    share, screen, colour = cv2.countNonZero(dithered) / dithered.size, isolated < 0.8 * found, image.shape[2] > 1
    if share == 1.0:
        return Dither(dithered, 1.0, screen, colour)
    return Dither(cv2.GaussianBlur(dithered, (0, 0), FEATHER), share, screen, colour)


def _neighbourhoods(light: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where a neighbourhood is dithered (isolated dots) and where screened (small patches).
    By strips with the rows of context each measure needs, so as the whole image gives them:
    a 40-Mpx dither's temporaries had come to 1.1 GB."""
    dots = strips.map_rows(light, lambda rows, _: _dots(rows), margin=2).view(np.uint8)
    dots *= np.uint8(255)
    dots = cv2.blur(dots, (WINDOW, WINDOW), borderType=cv2.BORDER_REFLECT)
    dithered = dots >= round(DOT_SHARE * 255)  # numpy's: OpenCV takes an image of four pixels or fewer for a scalar
    del dots
    starts = strips.map_rows(light, lambda rows, _: _patch_starts(rows), margin=PATCH_PX + 1)
    return dithered, strips.map_rows(starts, lambda rows, _: _crowded(rows), margin=WINDOW // 2)


def _near_ends(image: np.ndarray) -> bool:
    middle = cv2.inRange(image.reshape(image.shape[0], -1), 0.25, 0.75)  # every sample, whatever its channel
    return cv2.countNonZero(middle) <= (1 - NEAR_ENDS) * middle.size


def _dots(light: np.ndarray) -> np.ndarray:
    """Where a pixel is an isolated dot (see the module's docstring)."""
    padded = np.pad(light, 2, mode="edge")  # beyond the border, nothing to tell a dot by
    height, width = light.shape

    def same(dy: int, dx: int) -> np.ndarray:
        return padded[2 + dy : 2 + dy + height, 2 + dx : 2 + dx + width] == light

    alone = ~(same(-1, 0) | same(1, 0) | same(0, -1) | same(0, 1))
    falling, rising = same(-1, -1) & same(1, 1), same(-1, 1) & same(1, -1)
    # where both diagonals run on, a chequer (a mid-tone's dither) repeats two steps along a
    # row or column; a crossing of two hatched lines does not
    chequer = falling & rising & (same(0, -2) | same(0, 2) | same(-2, 0) | same(2, 0))
    return alone & ((~falling & ~rising) | chequer)


def _patch_starts(light: np.ndarray) -> np.ndarray:
    """Where patches of either colour of at most ``PATCH_PX`` pixels start (the top left of
    their bounding box). Taken on a strip with ``PATCH_PX + 1`` rows of context, it is exact
    for the strip's own rows: a patch starting in them that the strip cuts off is taller, and
    so larger, than any counted, and one that starts above them is left to the strip above."""
    starts = np.zeros(light.shape, bool)
    for colour in (light, ~light):
        _, _, stats, _ = cv2.connectedComponentsWithStats(colour.view(np.uint8), connectivity=8)
        small = stats[1:][stats[1:, cv2.CC_STAT_AREA] <= PATCH_PX]  # label 0: the other colour
        starts[small[:, cv2.CC_STAT_TOP], small[:, cv2.CC_STAT_LEFT]] = True
    return starts


def _crowded(starts: np.ndarray) -> np.ndarray:
    """Where a neighbourhood holds at least ``SCREEN_PATCHES`` patch starts; nothing counted
    past the border (a reflection would count a patch near it twice)."""
    counts = cv2.boxFilter(starts.view(np.uint8), cv2.CV_32F, (WINDOW, WINDOW), normalize=False,
                           borderType=cv2.BORDER_CONSTANT)
    return counts >= SCREEN_PATCHES
