"""Whole-image operations done a band of rows at a time, so large scans fit in memory.

After super-resolution an image is many times its input's size; a stage that made two or
three float copies of it (blurs, Lab planes, masks) would need several times the output's
memory. Local operations instead run on horizontal strips with enough rows of context
(``margin``) that every kept row is exactly what the whole-image operation gives, and
write their result in place. Resampling between an input and its enlargement is done the
same way, strip by strip, with the same pixel alignment as ``cv2.resize``.
"""
from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from typing import TypeVar

import cv2
import numpy as np

T = TypeVar("T")
STRIP_PIXELS = 1 << 20  # pixels per strip (about 12 MB of float RGB): temporaries stay small


def strip_rows(width: int, *, align: int = 1) -> int:
    """Rows per strip for an image ``width`` wide, a multiple of ``align``. Above two lanes
    the strips shrink, so that the strips in flight hold two strips' pixels in all: each
    holds its own temporaries, and four lanes of full strips took a 40-megapixel scan at x2
    0.5 GB over its memory target (docs/benchmarks.md)."""
    count = lanes()
    rows = max(align, STRIP_PIXELS * min(count, 2) // count // max(1, width))
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
    of the first of them in ``image``, and returns as many rows. With ``align`` (which must
    divide ``margin``), every window starts on a multiple of it: whole blocks of an
    enlargement, for work done at the input's resolution.

    Strips run in waves of ``lanes()`` at once (numpy's element-wise work is one core's
    otherwise, and it is most of a post-processing stage's time). In place, each strip of a
    wave reads a copy of its window taken before any of the wave writes, and the rows just
    above the next wave are kept aside the same way, so no strip sees another's output.
    """
    if margin % align:
        raise ValueError(f"margin {margin} is not a multiple of align {align}")
    height = image.shape[0]
    in_place = out is image
    if out is None:
        out = np.empty_like(image)
    target = out
    # a strip at least ``margin`` tall, so the rows kept aside are never already overwritten
    bounds = list(spans(height, max(margin, strip_rows(image.shape[1], align=align))))
    count = lanes() if len(bounds) > 1 else 1

    def write(y0: int, y1: int, top: int, window: np.ndarray) -> None:
        target[y0:y1] = fn(window, top)[y0 - top : y1 - top]

    saved: np.ndarray | None = None  # original rows just above the wave
    for first in range(0, len(bounds), count):
        wave = bounds[first : first + count]
        jobs = []
        for y0, y1 in wave:
            top, bottom = max(0, y0 - margin), min(height, y1 + margin)
            if saved is not None and y0 == wave[0][0]:
                window = np.concatenate([saved, image[y0:bottom]])
            elif in_place and margin and len(wave) > 1:  # its context is its neighbours' to write
                window = image[top:bottom].copy()
            else:
                window = image[top:bottom]
            jobs.append(functools.partial(write, y0, y1, top, window))
        if in_place and margin:
            end = wave[-1][1]
            saved = image[max(0, end - margin) : end].copy()
        in_lanes(jobs)
    return out


# Strips in flight at once by default. More lanes mean thinner strips (``strip_rows``), whose
# context rows are then a larger share of the work. ENHANCE_STRIP_LANES sets the number
# outright (say, a share of the cores for each of several worker processes on one host).
MAX_LANES = 4
LANES_VARIABLE = "ENHANCE_STRIP_LANES"
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_in_lane = threading.local()


def lanes() -> int:
    """Strips at once: ``ENHANCE_STRIP_LANES``, else the cores this process may use up to
    ``MAX_LANES``; one inside a lane (strips run from a strip do not wait on the lanes they fill)."""
    if getattr(_in_lane, "active", False):
        return 1
    chosen = os.environ.get(LANES_VARIABLE, "").strip()
    if not chosen:
        return max(1, min(MAX_LANES, len(os.sched_getaffinity(0))))
    if not chosen.isdigit() or int(chosen) < 1:
        raise ValueError(f"{LANES_VARIABLE}={chosen!r}: give a whole number of strips at once, 1 or more")
    return int(chosen)


def map_bands(height: int, width: int, fn: Callable[[int, int], T]) -> list[T]:
    """``fn(y0, y1)`` for each of ``bands(height, width)``, in lanes; the results in order."""
    return in_lanes([functools.partial(fn, y0, y1) for y0, y1 in bands(height, width)])


def in_lanes(calls: Sequence[Callable[[], T]]) -> list[T]:
    """Each call, up to ``lanes()`` at once, and their results in order. Every call has
    finished before this returns or raises: none is left writing into a caller's arrays."""
    count = lanes()
    if count == 1 or len(calls) < 2:
        return [call() for call in calls]
    pool = _shared_pool()
    results: list[T] = []
    for first in range(0, len(calls), count):
        # the wave's first call on this thread: its freed temporaries stay in this thread's
        # malloc arena for the next stage, where a lane of its own would keep another arena's
        futures = [pool.submit(call) for call in calls[first + 1 : first + count]]
        try:
            results.append(_as_lane(calls[first]))
        finally:
            wait(futures)
        results += [future.result() for future in futures]
    return results


@contextmanager
def beside(call: Callable[[], T]) -> Iterator[Callable[[], T]]:
    """``call`` started on a lane of its own while the caller's block runs, for work that
    needs nothing from the block (a check of the bytes a one-thread decoder reads). The block
    gets a function that returns its result, which may be called after the block too.
    Leaving the block waits for ``call`` to finish, or cancels it where the block raised
    before it started. With one lane, ``call`` runs only when its result is asked for."""
    if lanes() == 1:
        yield call
        return
    future = _shared_pool().submit(call)
    try:
        yield future.result
    except BaseException:
        future.cancel()
        raise
    finally:
        wait([future])


def _shared_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(64, thread_name_prefix="strips", initializer=_mark_lane)  # threads made as needed
    return _pool


def _mark_lane() -> None:
    _in_lane.active = True


def _as_lane(call: Callable[[], T]) -> T:
    """``call`` on this thread, which is a lane while it runs."""
    before = getattr(_in_lane, "active", False)
    _in_lane.active = True
    try:
        return call()
    finally:
        _in_lane.active = before


def enlarge_rows(source: np.ndarray, scale: int, y0: int, y1: int) -> np.ndarray:
    """Rows ``y0:y1`` of the bicubic enlargement of ``source`` by ``scale``, identical to
    those rows of ``cv2.resize(source, ..., INTER_CUBIC)`` (bicubic reads two rows either side)."""
    height, width, channels = source.shape
    a, b = max(0, y0 // scale - 2), min(height, (y1 - 1) // scale + 3)
    big = cv2.resize(source[a:b], (width * scale, (b - a) * scale), interpolation=cv2.INTER_CUBIC)
    return big.reshape(-1, width * scale, channels)[y0 - a * scale : y1 - a * scale]


def resized_rows(small: np.ndarray, y0: int, y1: int, height: int, width: int) -> np.ndarray:
    """Rows ``y0:y1`` of ``small`` enlarged (bilinear) to ``height`` x ``width``, as those rows
    of ``cv2.resize(small, (width, height))``: a map kept at a fraction of an image's size
    (the print's weight, local contrast's even areas), read a strip at a time."""
    small_height = small.shape[0]
    rows = np.clip((np.arange(y0, y1) + 0.5) * small_height / height - 0.5, 0, small_height - 1)
    above = rows.astype(np.intp)
    below = np.minimum(above + 1, small_height - 1)
    share = (rows - above).astype(np.float32).reshape(-1, *([1] * (small.ndim - 1)))
    narrow = small[above] * (1 - share) + small[below] * share  # its rows, at its own width
    return cv2.resize(narrow, (width, y1 - y0), interpolation=cv2.INTER_LINEAR)


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


def pixels_where(image: np.ndarray, where: np.ndarray | None) -> np.ndarray:
    """The pixels ``where`` is true, as a one-column image (per-pixel statistics read it as
    they read the whole); the image itself without ``where``."""
    return image if where is None else image[where][:, None]


def integer_scale(source: tuple[int, ...], output: tuple[int, ...]) -> int | None:
    """The enlargement factor from shape ``source`` to shape ``output`` when it is a whole
    number on both axes, else None."""
    (h, w), (H, W) = source[:2], output[:2]
    if H % h or W % w or H // h != W // w:
        return None
    return H // h
