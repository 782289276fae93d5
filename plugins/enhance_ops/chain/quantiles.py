"""Percentiles of large arrays at the speed of numpy's fast selection.

``np.percentile`` asks ``np.partition`` for several positions at once (the two around each
percentile, and the last one to look for NaNs), and numpy's multi-position partition is
7-8x slower than its single-position one (40 against 5 ms for a 4-Mpx median). Here each
order statistic comes from a single-position partition of the part of the array that
holds it (the middle one first, then each side), and the interpolation is numpy's default
("linear"), so the values are those of ``np.percentile`` to float rounding. Inputs must
hold no NaN (decoded pixels never do).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _order_statistics(values: np.ndarray, ranks: list[int], offset: int = 0) -> dict[int, float]:
    """The values at the given ranks (0-based, ascending, distinct) of sorted ``values``,
    whose own ranks start at ``offset``: the middle rank by one single-position partition,
    then the ranks below it from the part below and those above from the part above."""
    if not ranks:
        return {}
    if ranks[0] == offset:  # the smallest or the largest needs a pass, not a partition
        return {ranks[0]: float(values.min()), **_order_statistics(values, ranks[1:], offset)}
    if ranks[-1] == offset + values.size - 1:
        return {ranks[-1]: float(values.max()), **_order_statistics(values, ranks[:-1], offset)}
    middle = len(ranks) // 2
    k = ranks[middle] - offset
    part = np.partition(values, k)
    found = {ranks[middle]: float(part[k])}
    found.update(_order_statistics(part[:k], ranks[:middle], offset))
    found.update(_order_statistics(part[k + 1 :], ranks[middle + 1 :], offset + k + 1))
    return found


def percentiles(values: np.ndarray, qs: Sequence[float]) -> np.ndarray:
    """``np.percentile(values, qs)`` (linear interpolation) over all of ``values``, as float64."""
    flat = np.asarray(values).ravel()
    if flat.size == 0:
        raise ValueError("percentiles of an empty array")
    positions = np.asarray(qs, dtype=np.float64) / 100 * (flat.size - 1)
    below = np.floor(positions).astype(np.int64)
    above = np.minimum(below + 1, flat.size - 1)
    stats = _order_statistics(flat, sorted(set(below.tolist()) | set(above.tolist())))
    low = np.array([stats[int(i)] for i in below])
    high = np.array([stats[int(i)] for i in above])
    return low + (high - low) * (positions - below)


def median(values: np.ndarray) -> float:
    return float(percentiles(values, [50])[0])
