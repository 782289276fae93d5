"""How stored pixels are turned upright, by an EXIF orientation (1-8), as arrays and as places.

A HEIF file turns its image by rotation and mirroring boxes instead, which libheif applies
as it decodes; ``of_boxes`` says which EXIF orientation they amount to, so that values
counted in the stored pixels (``exif_geometry``) can be moved as the pixels were.
"""
from __future__ import annotations

import numpy as np


def upright(a: np.ndarray, orientation: int) -> np.ndarray:
    """``a`` (rows first) as shown: mirrored first, then turned by a quarter where it is."""
    if orientation in (2, 5, 7):
        a = a[:, ::-1]
    if orientation in (3, 4):
        a = a[::-1, ::-1] if orientation == 3 else a[::-1]
    elif orientation in (5, 8):
        a = np.rot90(a, 1)
    elif orientation in (6, 7):
        a = np.rot90(a, -1)
    return np.ascontiguousarray(a)


def upright_place(x: int, y: int, width: int, height: int, orientation: int) -> tuple[int, int]:
    """Where the stored pixel (x, y) of a ``width`` x ``height`` image is once shown upright."""
    right, bottom = width - 1 - x, height - 1 - y
    return {1: (x, y), 2: (right, y), 3: (right, bottom), 4: (x, bottom), 5: (y, x), 6: (bottom, x),
            7: (bottom, right), 8: (y, right)}.get(orientation, (x, y))


def of_boxes(properties: list[tuple[bytes, bytes]]) -> int:
    """The EXIF orientation that the rotation (``irot``: quarter turns anticlockwise) and
    mirroring (``imir``: axis 1 swaps left and right, 0 top and bottom, as libheif and libavif
    read it) among an item's properties amount to, applied in their order of association."""
    probe = np.arange(6).reshape(2, 3)
    shown = probe
    for kind, body in properties:
        if kind == b"irot" and body:
            shown = np.rot90(shown, body[0] & 3)
        elif kind == b"imir" and body:
            shown = shown[:, ::-1] if body[0] & 1 else shown[::-1]
    return next(turn for turn in range(1, 9) if np.array_equal(upright(probe, turn), shown))
