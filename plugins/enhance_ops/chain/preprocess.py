"""Pre-processing: look at the scan's tonal range, then fix exposure, colour cast and lens geometry.

Every function takes float32 (H, W, C) in [0, 1] and returns the new image with a record of
what it measured and decided, so the ledger can say why an image looks the way it does.
"""
from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np

from . import quantiles, strips, toning
from .colour_math import LUMA, linear_to_srgb, luma, srgb_to_linear

Record = dict[str, Any]


@dataclass(frozen=True)
class DynamicRange:
    p0_5: float
    p1: float
    p50: float
    p99: float
    p99_5: float
    shadows_clipped: float
    highlights_clipped: float
    effective_bits: float

    def as_record(self) -> Record:
        return {k: round(v, 5) for k, v in asdict(self).items()}


def analyse_dynamic_range(image: np.ndarray, bit_depth: int = 8, where: np.ndarray | None = None) -> DynamicRange:
    """Percentiles of luma, the share of clipped pixels, and how many levels are really used,
    of the pixels ``where`` is true (the print, without the scanner's background), else all.

    ``effective_bits`` is log2 of the distinct luma levels at the file's precision: a 16-bit
    scan of a faded print may use only 9 bits of its range.
    """
    image = strips.pixels_where(image, where)
    y = luma(image)
    p = quantiles.percentiles(y, [0.5, 1, 50, 99, 99.5])
    top = 2**bit_depth - 1
    half_step = 0.5 / top
    # distinct levels by counting, not by np.unique's sort (the same count for values in [0, 1])
    levels = np.count_nonzero(np.bincount(np.rint(np.clip(y, 0.0, 1.0) * top).astype(np.int32).ravel()))
    channels = [image[..., c] for c in range(image.shape[2])]
    return DynamicRange(
        p0_5=float(p[0]),
        p1=float(p[1]),
        p50=float(p[2]),
        p99=float(p[3]),
        p99_5=float(p[4]),
        # channel by channel: numpy's reductions over an axis of three are several times slower
        shadows_clipped=float(np.mean(functools.reduce(np.logical_and, (c <= half_step for c in channels)))),
        highlights_clipped=float(np.mean(functools.reduce(np.logical_or, (c >= 1 - half_step for c in channels)))),
        effective_bits=float(math.log2(max(levels, 1))),
    )


def compensate_exposure(
    image: np.ndarray,
    analysis: DynamicRange,
    *,
    min_white: float = 0.7,
    max_black: float = 0.12,
    median_range: tuple[float, float] = (0.25, 0.65),
    target_median: float = 0.45,
    max_gamma: float = 1.8,
    where: np.ndarray | None = None,
) -> tuple[np.ndarray, Record]:
    """Stretch a clearly compressed tonal range to full scale, then move an off-centre median
    toward ``target_median``.

    Conservative on purpose: a dim but correctly exposed photo (no pure white) or a night
    scene is an archive's content, not a fault. ``analysis`` and ``where`` are of the print
    alone (the scanner's background left out: ``scan_border.py``). The same curve is applied
    to every channel, so hues do not shift; on a monochrome print, whose colour is its
    toning, each pixel then takes the tone the print has at its new lightness
    (``toning.Toning.retoned``).
    """
    black, white = analysis.p0_5, analysis.p99_5
    record: Record = {"black_point": round(black, 4), "white_point": round(white, 4)}
    if white - black < 0.05:
        return image, {**record, "decision": "skipped: almost flat image"}
    stretch = black > max_black or white < min_white
    lo, hi = (black, white) if stretch else (0.0, 1.0)
    out = np.clip((image - lo) / (hi - lo), 0.0, 1.0)
    median = quantiles.median(luma(strips.pixels_where(out, where)))
    gamma = 1.0
    # Mid-tones move only with a compressed range: a dark night scene with bright lights stays dark.
    if stretch and not median_range[0] <= median <= median_range[1] and 0.0 < median < 1.0:
        gamma = float(np.clip(math.log(target_median) / math.log(median), 1 / max_gamma, max_gamma))
        out = np.power(out, gamma)
    decision = []
    if stretch:
        decision.append(f"levels stretched from [{black:.3f}, {white:.3f}]")
    if gamma != 1.0:
        decision.append(f"mid-tones moved with gamma {gamma:.3f} (median {median:.3f} -> {target_median})")
    if not decision:
        return image, {**record, "decision": "skipped: exposure already fine"}
    if image.shape[-1] == 3 and (tone := toning.measure(image, where)).monochrome:
        out = strips.map_rows(out, lambda rows, top: tone.retoned(image[top:top + len(rows)], rows), margin=0, out=out)
        decision.append(f"the tone of a monochrome print kept ({tone.described})")
        record["toning"] = tone.as_record()
    return out.astype(np.float32), {**record, "gamma": round(gamma, 4), "decision": "; ".join(decision)}


def estimate_illuminant(
    image: np.ndarray, *, p: float = 6.0, sigma: float = 1.0, max_angle_deg: float = 20.0, min_support: float = 0.01,
    where: np.ndarray | None = None,
) -> np.ndarray | None:
    """Grey-edge estimate (van de Weijer et al.) over near-neutral regions only.

    Edges carry less of a dominant colour than pixels do, and edges in strongly coloured
    areas (an orange cat, a blue sea) are left out altogether: only regions within
    ``max_angle_deg`` of neutral — which covers greys under any plausible cast — vote.
    ``None`` when less than ``min_support`` of the image is near neutral: nothing to judge by.
    """
    linear = srgb_to_linear(image)
    smooth = cv2.GaussianBlur(linear, (0, 0), sigma)
    local = cv2.GaussianBlur(linear, (0, 0), 4 * sigma)
    cos = local.sum(-1) / (np.sqrt(3) * np.linalg.norm(local, axis=-1) + 1e-12)
    near_neutral = cos > math.cos(math.radians(max_angle_deg))
    valid = np.all(image < 0.98, axis=-1) & np.any(image > 0.02, axis=-1) & near_neutral
    if where is not None:  # the print only: the scanner's background is neutral whatever cast the print has
        valid &= where
    gx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3)
    magnitude = np.sqrt(gx**2 + gy**2)[valid]
    if magnitude.shape[0] < min_support * valid.size:
        return None
    estimate = np.power(np.mean(np.power(magnitude, p), axis=0), 1 / p)
    return (estimate / max(float(np.linalg.norm(estimate)), 1e-12)).astype(np.float32)


def angular_error_deg(a: np.ndarray, b: np.ndarray) -> float:
    cos = float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))
    return math.degrees(math.acos(min(1.0, max(-1.0, cos))))


def correct_colour_cast(
    image: np.ndarray, *, min_cast_deg: float = 1.0, max_gain: float = 2.0, p: float = 6.0,
    where: np.ndarray | None = None,
) -> tuple[np.ndarray, Record]:
    """Divide out the estimated illuminant in linear light (von Kries), keeping brightness."""
    if image.shape[-1] == 1:
        return image, {"decision": "skipped: greyscale image"}
    light = estimate_illuminant(image, p=p, where=where)
    if light is None:
        return image, {"decision": "skipped: no near-neutral regions to judge the light by"}
    neutral = np.ones(3, dtype=np.float32) / math.sqrt(3)
    cast = angular_error_deg(light, neutral)
    record: Record = {"illuminant": [round(float(v), 4) for v in light], "cast_deg": round(cast, 3)}
    if cast < min_cast_deg:
        return image, {**record, "decision": "skipped: no cast"}
    if (tone := toning.measure(image, where)).monochrome:
        return image, {**record, "toning": tone.as_record(),
                       "decision": f"skipped: a monochrome print ({tone.described}), whose colour is its process, not the light's"}
    gains = np.clip(neutral / light, 1 / max_gain, max_gain)
    linear = srgb_to_linear(image)
    y_before = float(np.mean(linear @ LUMA))
    corrected = linear * gains
    y_after = float(np.mean(corrected @ LUMA))
    corrected *= y_before / max(y_after, 1e-12)
    gains = gains * y_before / max(y_after, 1e-12)
    return linear_to_srgb(corrected), {
        **record,
        "gains": [round(float(g), 4) for g in gains],
        "decision": f"cast of {cast:.1f} deg removed",
    }


@dataclass(frozen=True)
class LensInfo:
    """What EXIF says about the optics; all optional."""

    camera_make: str = ""
    camera_model: str = ""
    lens_make: str = ""
    lens_model: str = ""
    focal_length: float = 0.0
    aperture: float = 0.0


def _radial_map(width: int, height: int, k1: float, k2: float) -> tuple[np.ndarray, np.ndarray]:
    """For every output (undistorted) pixel, where to sample the distorted input.

    Radii are normalised by the half-diagonal; r_d = r_u (1 + k1 r_u^2 + k2 r_u^4).
    """
    cx, cy = (width - 1) / 2, (height - 1) / 2
    norm = math.hypot(cx, cy)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    ux, uy = (xx - cx) / norm, (yy - cy) / norm
    r2 = ux * ux + uy * uy
    factor = 1 + k1 * r2 + k2 * r2 * r2
    return (ux * factor * norm + cx).astype(np.float32), (uy * factor * norm + cy).astype(np.float32)


def _lensfun_map(info: LensInfo, width: int, height: int) -> tuple[np.ndarray, np.ndarray, str] | None:
    import lensfunpy

    if not (info.camera_model and info.lens_model and info.focal_length > 0):
        return None
    db = lensfunpy.Database()
    cameras = db.find_cameras(info.camera_make or None, info.camera_model)
    if not cameras:
        return None
    lenses = db.find_lenses(cameras[0], info.lens_make or None, info.lens_model)
    if not lenses:
        return None
    lens = lenses[0]
    modifier = lensfunpy.Modifier(lens, cameras[0].crop_factor, width, height)
    modifier.initialize(info.focal_length, info.aperture or lens.min_aperture or 8.0, 10.0, scale=1.0)
    coords = modifier.apply_geometry_distortion()
    if coords is None:
        return None
    return coords[..., 0].astype(np.float32), coords[..., 1].astype(np.float32), f"{lens.maker} {lens.model}"


def correct_lens_distortion(
    image: np.ndarray, lens: LensInfo | None = None, coefficients: dict[str, float] | None = None
) -> tuple[np.ndarray, Record]:
    """Undo radial distortion: from the lensfun database when EXIF names a known lens, else
    from explicit ``{"k1": …, "k2": …}`` coefficients; otherwise skipped, and the record says so."""
    height, width = image.shape[:2]
    found = _lensfun_map(lens, width, height) if lens else None
    if found is not None:
        map_x, map_y, name = found
        record: Record = {"source": "lensfun", "lens": name, "focal_length": lens.focal_length if lens else None}
    elif coefficients and any(coefficients.get(k, 0.0) for k in ("k1", "k2")):
        k1, k2 = float(coefficients.get("k1", 0.0)), float(coefficients.get("k2", 0.0))
        map_x, map_y = _radial_map(width, height, k1, k2)
        record = {"source": "preset coefficients", "k1": k1, "k2": k2}
    else:
        return image, {"source": None, "decision": "skipped: lens unknown and no coefficients given"}
    out = cv2.remap(image, map_x, map_y, interpolation=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    out = out.reshape(image.shape)
    return np.clip(out, 0.0, 1.0).astype(np.float32), {**record, "decision": "radial distortion corrected"}
