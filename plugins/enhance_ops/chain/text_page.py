"""Does a scan read as a page of text (print or handwriting on paper), grey or colour?

The photo networks redraw letters: on scikit-image's grey page of print at 640 px
Real-ESRGAN gave 22.9 dB consistency against SPAN's 41.3, and the gate held every such page
of a nightly batch. A page of black and white only is told by its values alone
(``denoise.two_valued``); a grey or colour page needs its look. A page of text is mostly
paper, at the brightest tone around it; its ink is darker than that paper by far, in many
separate marks, and nearly all of it in strokes a few pixels wide once the page is seen at
a working size. A photograph fails at least one of these: its darks come in broad areas, or
its mid-tones are no paper, or its lightest tone is a highlight rather than the ground.

The measures are taken on the luma at ``WORKING_SIDE`` pixels on the long side (where a
300-dpi letter page's strokes are 1-2 px wide), against the paper's own tone found by a
closing, so that a yellowed, dim or unevenly lit page reads as one. A close scan of
handwriting, whose strokes are wider than ``STROKE_PX`` there, is looked at again at half
that size. A page that does not read as one is read again as a negative (microfilm, mostly:
light ink on dark film), on its inverse taken against its clearest film, the print's black.
How it was checked, and where it fails: docs/chain.md, *Known limits*.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

WORKING_SIDE = 768
STROKE_PX = 5  # ink that an opening of this diameter removes is stroke, not area
PAPER_SHARE = 0.6  # at least this much of the page is paper (dense print: 0.63)
INK_SHARE = (0.01, 0.35)
THIN_SHARE = 0.8  # at least this much of the ink is in strokes
MIN_MARKS = 20  # separate marks of ink (3 px or more): letters, words
PAPER_LEVEL = 0.6  # the paper's median tone against the page's brightest (99th percentile)


@dataclass(frozen=True)
class PageLook:
    """What a page looked like at ``side`` pixels on its long side; the ledger keeps it."""

    side: int
    paper: float  # share of pixels within 10 % of the paper's tone around them
    ink: float  # share of pixels under 70 % of it
    thin: float  # share of the ink that is in strokes narrower than STROKE_PX
    marks: int
    paper_level: float
    negative: bool = False  # light marks on dark ground, as negative microfilm: measured on its inverse

    def is_text(self) -> bool:
        return (
            self.paper >= PAPER_SHARE
            and INK_SHARE[0] <= self.ink <= INK_SHARE[1]
            and self.thin >= THIN_SHARE
            and self.marks >= MIN_MARKS
            and self.paper_level >= PAPER_LEVEL
        )


def look(image: np.ndarray, side: int = WORKING_SIDE, *, negative: bool = False) -> PageLook:
    """The page's measures at ``side`` pixels on the long side (never enlarged)."""
    return _measure(_working_luma(image, side), negative)


def _working_luma(image: np.ndarray, side: int) -> np.ndarray:
    height, width = image.shape[:2]
    factor = min(1.0, side / max(height, width))
    if factor < 1.0:
        size = (max(1, round(width * factor)), max(1, round(height * factor)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA).reshape(size[1], size[0], -1)
    # BT.601 weights (OpenCV's grey), not colour_math.luma's Rec. 709: the thresholds above were
    # set on them, and with Rec. 709 Hubble's deep field reads as a negative of a page at 250 px
    luma = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.shape[2] == 3 else image[:, :, 0]
    return np.ascontiguousarray(luma, dtype=np.float32)


def _measure(luma: np.ndarray, negative: bool) -> PageLook:
    if negative:  # printed as the film would be: its clearest part, the ink, is the print's black
        luma = np.maximum(np.float32(np.percentile(luma, 99.9)) - luma, 0)
    reach = max(7, round(min(luma.shape) / 40)) | 1  # wider than any stroke at this size
    paper = cv2.morphologyEx(luma, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (reach, reach)))
    paper = cv2.GaussianBlur(paper, (0, 0), reach)
    relative = luma / np.maximum(paper, 1e-3)
    ink = (relative < 0.7).astype(np.uint8)
    strokes = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (STROKE_PX, STROKE_PX))
    areas = int(cv2.countNonZero(cv2.morphologyEx(ink, cv2.MORPH_OPEN, strokes)))
    inked = int(cv2.countNonZero(ink))
    _, _, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    brightest = float(np.percentile(luma, 99))
    return PageLook(
        side=max(luma.shape),
        paper=float(np.count_nonzero(relative > 0.9)) / relative.size,
        ink=inked / ink.size,
        thin=1.0 - areas / inked if inked else 0.0,
        marks=int(np.count_nonzero(stats[1:, cv2.CC_STAT_AREA] >= 3)),
        paper_level=float(np.median(paper)) / brightest if brightest > 0 else 0.0,
        negative=negative,
    )


def text_page(image: np.ndarray) -> PageLook | None:
    """The look that reads as a page of text, positive or negative, at the working size or at
    half of it; None for anything else, an image too small to tell among them."""
    if min(image.shape[:2]) < 16:
        return None
    luma = _working_luma(image, WORKING_SIDE)
    first = _read(luma)
    if first or max(luma.shape) < 2 * 192:  # halved, it would be too small to tell
        return first
    return _read(_working_luma(luma[..., None], max(luma.shape) // 2))


def _read(luma: np.ndarray) -> PageLook | None:
    for negative in (False, True):
        page = _measure(luma, negative)
        if page.is_text():
            return page
    return None
