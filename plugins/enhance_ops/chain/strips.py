"""Whole-image operations done a band of rows at a time, so large scans fit in memory.

After super-resolution an image is many times its input's size; a stage that made two or
three float copies of it (blurs, Lab planes, masks) would need several times the output's
memory. Local operations instead run on horizontal strips with enough rows of context
(``margin``) that every kept row is exactly what the whole-image operation gives, and
write their result in place. Resampling between an input and its enlargement is done the
same way, strip by strip, with the same pixel alignment as ``cv2.resize``.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator

import cv2
import numpy as np

STRIP_PIXELS = 1 << 20  # pixels per strip (about 12 MB of float RGB): temporaries stay small


def strip_rows(width: int, *, align: int = 1) -> int:
    """Rows per strip for an image ``width`` wide, a multiple of ``align``."""
    rows = max(align, STRIP_PIXELS // max(1, width))
    return rows - rows % align


def spans(length: int, step: int) -> Iterator[tuple[int, int]]:
    for start in range(0, length, step):
        yield start, min(length, start + step)


def bands(height: int, width: int) -> Iterator[tuple[int, int]]:
    """The row ranges of an image ``height`` × ``width`` taken a strip at a time."""
    return spans(height, strip_rows(width))


def map_rows(
    image: np.ndarray,
    fn: Callable[[np.ndarray, int], np.ndarray],
    *,
    margin: int,
    out: np.ndarray | None = None,
    align: int = 1,
) -> np.ndarray:
    """``fn`` over strips of ``image``; ``out`` may be ``image`` itself (in place).

    ``fn`` takes rows with up to ``margin`` rows of context above and below, and the index
    of the first of them in ``image``, and returns as many rows. When writing in place, the
    context rows above a strip were already overwritten, so their original values are kept
    aside before each strip is written. With ``align`` (which must divide ``margin``), every
    window starts on a multiple of it: whole blocks of an enlargement, for work done at the
    input's resolution.
    """
    if margin % align:
        raise ValueError(f"margin {margin} is not a multiple of align {align}")
    height = image.shape[0]
    in_place = out is image
    if out is None:
        out = np.empty_like(image)
    saved: np.ndarray | None = None  # original rows just above the next strip
    # a strip at least ``margin`` tall, so the rows kept aside are never already overwritten
    for y0, y1 in spans(height, max(margin, strip_rows(image.shape[1], align=align))):
        top, bottom = max(0, y0 - margin), min(height, y1 + margin)
        window = image[top:bottom] if saved is None else np.concatenate([saved, image[y0:bottom]])
        result = fn(window, top)
        if in_place:
            saved = image[max(0, y1 - margin) : y1].copy() if margin else None
        out[y0:y1] = result[y0 - top : y1 - top]
    return out


def enlarge_rows(source: np.ndarray, scale: int, y0: int, y1: int) -> np.ndarray:
    """Rows ``y0:y1`` of the bicubic enlargement of ``source`` by ``scale``, identical to
    those rows of ``cv2.resize(source, ..., INTER_CUBIC)`` (bicubic reads two rows either side)."""
    height, width, channels = source.shape
    a, b = max(0, y0 // scale - 2), min(height, (y1 - 1) // scale + 3)
    big = cv2.resize(source[a:b], (width * scale, (b - a) * scale), interpolation=cv2.INTER_CUBIC)
    return big.reshape(-1, width * scale, channels)[y0 - a * scale : y1 - a * scale]


def clipped(fresh: np.ndarray) -> np.ndarray:
    """``fresh`` clipped to [0, 1] in place: for an array just made by the caller, which
    ``np.clip`` would otherwise copy (on a new strip that also means new pages to fault in:
    a third of the halo measure's time)."""
    return np.clip(fresh, 0.0, 1.0, out=fresh)


def shrink_rows(output: np.ndarray, scale: int, r0: int, r1: int) -> np.ndarray:
    """Rows ``r0:r1`` of ``output`` area-averaged down by ``scale`` (blocks never straddle strips)."""
    block = output[r0 * scale : r1 * scale]
    width = output.shape[1] // scale
    return cv2.resize(block, (width, r1 - r0), interpolation=cv2.INTER_AREA).reshape(r1 - r0, width, output.shape[2])


def subsample(image: np.ndarray, max_pixels: int) -> np.ndarray:
    """Every k-th pixel on both axes, k the smallest that leaves at most ``max_pixels``: for
    statistics (percentiles, extremes) that a few million pixels pin down as well as all."""
    step = max(1, int(np.ceil(np.sqrt(image.shape[0] * image.shape[1] / max_pixels))))
    return image[::step, ::step]


def integer_scale(source: tuple[int, ...], output: tuple[int, ...]) -> int | None:
    """The enlargement factor from shape ``source`` to shape ``output`` when it is a whole
    number on both axes, else None."""
    (h, w), (H, W) = source[:2], output[:2]
    if H % h or W % w or H // h != W // w:
        return None
    return H // h
