"""EXIF values counted in the master's pixels, told the derivative's.

A camera says where its subject is (SubjectArea, SubjectLocation) in the pixels it stored, and
how many of them a millimetre of its sensor holds (FocalPlaneX/YResolution), from which a
reader works out the sensor's size and the lens's 35 mm equivalent. The derivative is upright
and has more pixels: carried as stored, the subject was placed in the upper left part of the
picture, or beside it where the master was stored turned, and the sensor came out as large as
the scale factor times its own size. Each is moved as the pixels were: turned upright by the
master's EXIF orientation (a HEIC's by its rotation and mirroring boxes, as an iPhone's
portraits are stored), after an AVIF's clean-aperture cut, then scaled along each axis. A
lens correction's few pixels are left out, small against what a subject area marks.
"""
from __future__ import annotations

import copy
import math
from typing import Any

import piexif

from .orientation import upright_place
from .tiff_exif import rational

_SHORT_MAX = 2**16 - 1  # SubjectArea and SubjectLocation are SHORTs


def resampled(exif: dict[str, Any] | None, size: tuple[int, int], output_size: tuple[int, int], orientation: int,
              cut_to: tuple[int, int, int, int] | None = None) -> tuple[dict[str, Any] | None, list[str]]:
    """``exif`` of a master decoded upright at ``size`` (width, height) from pixels stored in
    EXIF ``orientation`` (and cut from its coded image to ``cut_to``, left, top, width and
    height, before turning), for its derivative of ``output_size``; and notes for what could
    not be carried."""
    sub = (exif or {}).get("Exif") or {}
    if not {piexif.ExifIFD.SubjectArea, piexif.ExifIFD.SubjectLocation, piexif.ExifIFD.FocalPlaneXResolution,
            piexif.ExifIFD.FocalPlaneYResolution} & set(sub):
        return exif, []
    exif = copy.deepcopy(exif)
    sub, notes = exif["Exif"], []
    turned = orientation in (5, 6, 7, 8)
    across, down = output_size[0] / size[0], output_size[1] / size[1]
    stored = (size[1], size[0]) if turned else size
    _focal_plane(sub, across, down, turned)
    for tag in (piexif.ExifIFD.SubjectArea, piexif.ExifIFD.SubjectLocation):
        if tag not in sub:
            continue
        moved = _subject(sub[tag], stored, orientation, across, down, cut_to[:2] if cut_to else (0, 0))
        name = piexif.TAGS["Exif"][tag]["name"]
        if moved is None:
            kept = " that its clean aperture keeps" if cut_to else ""
            notes.append(f"EXIF {name} not carried: {sub[tag]} is not a place in the master's stored pixels{kept}")
            del sub[tag]
        elif max(moved) > _SHORT_MAX:
            notes.append(f"EXIF {name} not carried: in the derivative's pixels it is {moved}, past what the tag "
                         f"holds ({_SHORT_MAX})")
            del sub[tag]
        else:
            sub[tag] = moved
    return exif, notes


def _focal_plane(sub: dict[int, Any], across: float, down: float, turned: bool) -> None:
    """The pixels per unit of the sensor along the derivative's width and height: the stored
    image's height runs along the derivative's width where the master turns by a quarter."""
    x_tag, y_tag = piexif.ExifIFD.FocalPlaneXResolution, piexif.ExifIFD.FocalPlaneYResolution
    stored = {x_tag: sub.get(x_tag), y_tag: sub.get(y_tag)}
    if turned:
        stored = {x_tag: stored[y_tag], y_tag: stored[x_tag]}
    for tag, factor in ((x_tag, across), (y_tag, down)):
        value = stored[tag]
        pair = rational(value[0] / value[1] * factor) if _is_rational(value) else None
        if pair:
            sub[tag] = pair
        else:
            sub.pop(tag, None)  # damaged (a zero denominator), missing or too large: better no size than a wrong one


def _is_rational(value: Any) -> bool:
    return isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, int) for v in value) and value[1] > 0


def _subject(value: Any, stored: tuple[int, int], orientation: int, across: float, down: float,
             cut_at: tuple[int, int]) -> tuple[int, ...] | None:
    """A subject's place (x, y), circle (x, y, diameter) or rectangle (x, y, width, height),
    its centre given, in the derivative's pixels; None where it is not one in the stored ones."""
    if not isinstance(value, tuple) or len(value) not in (2, 3, 4) or not all(isinstance(v, int) for v in value):
        return None
    width, height = stored
    left, top = value[0] - cut_at[0], value[1] - cut_at[1]
    if not (0 <= left < width and 0 <= top < height):
        return None
    x, y = upright_place(left, top, width, height, orientation)
    placed = [math.floor((x + 0.5) * across), math.floor((y + 0.5) * down)]  # the pixel holding its centre
    if len(value) == 3:
        placed.append(round(value[2] * (across + down) / 2))
    elif len(value) == 4:
        extent = (value[3], value[2]) if orientation in (5, 6, 7, 8) else (value[2], value[3])
        placed += [round(extent[0] * across), round(extent[1] * down)]
    return tuple(placed)
