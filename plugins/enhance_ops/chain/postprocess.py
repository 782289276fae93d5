"""Post-processing: adaptive sharpening, local contrast, and conversion to the delivery colour space."""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import cv2
import imagecodecs
import numpy as np

from . import even_areas, icc, strips
from .colour_math import SHADOWS, above_shadows, lab_to_srgb, lightness, luma, srgb_to_lab

# the same, as L* / 100
_SHADOWS_L = tuple(float(lightness(np.full((1, 3), level, np.float32))[0]) for level in SHADOWS)

Record = dict[str, Any]


def _on_luma(image: np.ndarray, new_luma: np.ndarray, old_luma: np.ndarray) -> np.ndarray:
    """Apply a luma change to every channel equally, so hues are untouched."""
    return strips.clipped((image + (new_luma - old_luma)[..., None]).astype(np.float32, copy=False))


def adaptive_sharpen(
    image: np.ndarray,
    *,
    amount: float = 0.6,
    sigma: float = 1.0,
    noise_sigma: float = 0.0,
    edge_contrast: float = 0.25,
    overshoot: float = 0.01,
    out: np.ndarray | None = None,
) -> tuple[np.ndarray, Record]:
    """Adaptive unsharp masking on luma that cannot ring or halo.

    The detail boosted is what a Gaussian blur of ``3 sigma`` removes; the gain falls with
    the measured noise and where an edge is already strong (so grain and outlines are not
    exaggerated); and the result is held within the local 3x3 range of the input (plus
    ``overshoot``), which is what removes halos. Runs in row strips; ``out=image`` sharpens
    in place.
    """
    if amount <= 0:
        return image, {"decision": "skipped: amount 0"}
    noise_damping = 1.0 / (1.0 + (noise_sigma * 255 / 4.0) ** 2)
    kernel = np.ones((3, 3), np.uint8)
    # edge = |Sobel gradient| / 8; the gain's (edge / edge_contrast)² straight from the squares
    edge_scale = 1.0 / (64.0 * edge_contrast**2)

    def sharpen(window: np.ndarray, _top: int) -> np.ndarray:
        y = luma(window).astype(np.float32, copy=False)
        detail = y - cv2.GaussianBlur(y, (0, 0), 3 * sigma)
        gx, gy = cv2.Sobel(y, cv2.CV_32F, 1, 0), cv2.Sobel(y, cv2.CV_32F, 0, 1)
        gain = cv2.multiply(gx, gx, dst=gx)
        gain += cv2.multiply(gy, gy, dst=gy)
        gain *= edge_scale
        gain += 1.0
        np.divide(amount * noise_damping, gain, out=gain)
        sharpened = cv2.multiply(detail, gain, dst=detail)
        sharpened += y
        np.maximum(sharpened, cv2.erode(y, kernel) - overshoot, out=sharpened)  # within the 3x3 range
        np.minimum(sharpened, cv2.dilate(y, kernel) + overshoot, out=sharpened)
        return _on_luma(window, sharpened, y)

    # OpenCV's float Gaussian kernel reaches 4 sigma; the widest blur here is 3 sigma
    result = strips.map_rows(image, sharpen, margin=int(np.ceil(12 * sigma)) + 2, out=out)
    return result, {
        "amount": amount,
        "sigma": sigma,
        "noise_damping": round(float(noise_damping), 3),
        "decision": "sharpened (halo-limited)",
    }


def _levels(lightness: np.ndarray) -> np.ndarray:
    return np.round(np.clip(lightness, 0, 1) * 255).astype(np.uint8)


def local_contrast(
    image: np.ndarray, *, clip_limit: float = 1.5, tile_px: int = 128, out: np.ndarray | None = None,
    share: Callable[[int, int], np.ndarray] | None = None,
) -> tuple[np.ndarray, Record]:
    """CLAHE on lightness only (Lab L*), so colours are untouched; tiles of about ``tile_px``.
    An area as dark as a photograph's black keeps its level (``SHADOWS``, judged on the
    lightness blurred over a few pixels, so grain does not decide it): equalising a tile
    that is mostly black lifts it, and CLAHE greyed the deep field's black (its darkest
    1 %) from L* 1.0 to 3.9 and amplified its noise. An even area (a print's card, a sky)
    takes the change of one curve of its level, the mean of CLAHE's over the image's even
    areas at that level (``even_areas``): each tile's own curve had shaded a card 4 to 8
    levels of 255 apart across it and deepened its grain; the record's ``even_fraction`` is
    the share of the image in such areas. ``share``: how much
    of the change each pixel of rows r0:r1 takes, shape (rows, width, 1) (the print all of
    it, the scanner's background around it none, whose black CLAHE lifted from 5/255 to 13
    and whose grain it deepened), else all of it everywhere.

    OpenCV's 16-bit CLAHE spreads each tile over 65,536 bins, where the clip limit collapses
    to one count per bin and the result is near-full equalisation. So the curve is taken on
    256 levels and applied as a smoothed correction to the full-precision lightness, strip
    by strip; the one whole-image array is the 8-bit plane CLAHE needs, equalised in place
    (the levels it started from are recomputed from each strip), beside the even areas'
    maps of 8 × 8-pixel cells.
    """
    if clip_limit <= 0:
        return image, {"decision": "skipped: clip limit 0"}
    grey = image.shape[2] == 1
    height, width = image.shape[:2]
    curve = np.empty((height, width), np.uint8)

    def levels(y0: int, y1: int) -> None:
        rows = image[y0:y1]
        curve[y0:y1] = _levels(rows[..., 0] if grey else lightness(rows))

    strips.map_bands(height, width, levels)
    grid = (max(1, round(width / tile_px)), max(1, round(height / tile_px)))
    before = even_areas.reduce(curve)
    cv2.createCLAHE(clipLimit=clip_limit, tileGridSize=grid).apply(curve, dst=curve)
    tile_cells = width * height / (grid[0] * grid[1] * even_areas.CELL**2)
    even = even_areas.find(before, even_areas.reduce(curve), tile_cells, (height, width))
    shadows = SHADOWS if grey else _SHADOWS_L

    def apply(window: np.ndarray, top: int) -> np.ndarray:
        lab = None if grey else srgb_to_lab(window)
        lightness = window[..., 0] if lab is None else lab[..., 0] / 100
        equalised = curve[top : top + window.shape[0]].astype(np.float32) / 255
        change = cv2.GaussianBlur(equalised - _levels(lightness).astype(np.float32) / 255, (0, 0), 1.0)
        if even is not None:
            even.settle(change, lightness, top)
        if lightness.min() < shadows[1]:  # else no area of the strip is that dark
            change *= above_shadows(cv2.GaussianBlur(lightness, (0, 0), 2.0), shadows)
        if share is not None:
            change *= share(top, top + window.shape[0])[..., 0]
        if lab is None:
            return np.clip(lightness + change, 0.0, 1.0)[..., None]
        lab[..., 0] = np.clip(lightness + change, 0.0, 1.0) * 100
        return lab_to_srgb(lab)

    # OpenCV's float Gaussian kernel reaches 4 sigma: 8 rows for the shadows' blur
    result = strips.map_rows(image, apply, margin=10, out=out)
    decision = "CLAHE on grey levels" if grey else "CLAHE on L*"
    return result, {
        "clip_limit": clip_limit, "tile_px": tile_px, "decision": decision,
        "even_fraction": round(even.fraction, 3) if even is not None else 0.0,
    }


def convert_colour_space(
    image: np.ndarray, source_profile: bytes | None, target: str | None, *, out: np.ndarray | None = None
) -> tuple[np.ndarray, bytes | None, Record]:
    """Convert to ``target`` (sRGB, Adobe RGB, Display P3) and return the profile to embed.

    With no embedded profile the input is taken as sRGB, the web's and most scanners'
    default. An RGB profile that is not matrix-shaper is converted from by LittleCMS; one
    it cannot use, or a profile of another colour space, is left in place, and the record
    says so.
    """
    if target is None:
        return image, source_profile, {"decision": "skipped: keep the input's colour space"}
    if target not in icc.SPACES:
        raise ValueError(f"colour space must be one of {sorted(icc.SPACES)}, not {target!r}")
    if image.shape[2] == 1:
        return image, source_profile, {"decision": "skipped: greyscale image"}
    space = icc.SPACES[target]
    through = ""
    try:
        source = icc.parse_profile(source_profile) if source_profile else icc.SPACES["sRGB"]
        source_name, convert = source.name, functools.partial(icc.convert, source=source, target=space)
    except icc.UnsupportedProfileError as exc:
        if not source_profile or source_profile[16:20] != b"RGB ":  # a Lab or CMYK profile on RGB samples
            return image, source_profile, {"decision": f"skipped: {exc}"}
        convert = functools.partial(icc.convert_through_littlecms, profile=source_profile, target=space,
                                    linear_target=icc.linear_profile(space))
        try:
            convert(np.zeros((1, 1, 3), np.float32))  # on one pixel first, so no strip is left half converted
        except imagecodecs.CmsError as refused:
            return image, source_profile, {"decision": f"skipped: {exc}, and LittleCMS cannot use it either ({refused})"}
        source, source_name = None, icc.description(source_profile) or "the embedded profile"
        through = f" through LittleCMS: {exc}"
    if source is space:  # an untagged master, taken as sRGB, into sRGB: the same colours, nothing to convert
        return image, icc.build_profile(space), {
            "source": source_name, "target": space.name, "decision": f"kept: already {space.name}, its profile embedded"}
    outside: list[int] = []  # per strip: the pixels clipped to the target's gamut

    def converted_rows(rows: np.ndarray, _top: int) -> np.ndarray:
        converted, clipped = convert(rows)
        outside.append(clipped)
        return converted

    converted = strips.map_rows(image, converted_rows, margin=0, out=out)
    share = sum(outside) / (image.shape[0] * image.shape[1])
    clipped_said = f"; {share:.2%} of the pixels lay outside its gamut, clipped to its edge" if share else ""
    return converted, icc.build_profile(space), {
        "source": source_name,
        "target": space.name,
        "out_of_gamut": round(share, 6),
        "decision": f"converted from {source_name} to {space.name}{through}{clipped_said}",
    }
