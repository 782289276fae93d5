"""Post-processing: adaptive sharpening, local contrast, and conversion to the delivery colour space."""
from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from . import icc
from .colour_math import lab_to_srgb, luma, srgb_to_lab

Record = dict[str, Any]


def _on_luma(image: np.ndarray, new_luma: np.ndarray, old_luma: np.ndarray) -> np.ndarray:
    """Apply a luma change to every channel equally, so hues are untouched."""
    return np.clip(image + (new_luma - old_luma)[..., None], 0.0, 1.0).astype(np.float32)


def adaptive_sharpen(
    image: np.ndarray,
    *,
    amount: float = 0.6,
    sigma: float = 1.0,
    noise_sigma: float = 0.0,
    edge_contrast: float = 0.25,
    overshoot: float = 0.01,
) -> tuple[np.ndarray, Record]:
    """Frequency-aware unsharp masking on luma that cannot ring or halo.

    Only the band between ``sigma`` and ``3 sigma`` is boosted (fine detail, not the noise
    floor nor large-scale tone); the gain falls with measured noise and where an edge is
    already strong; and the result is held within the local 3x3 range of the input (plus
    ``overshoot``), which is what removes halos.
    """
    if amount <= 0:
        return image, {"decision": "skipped: amount 0"}
    y = luma(image).astype(np.float32)
    band = cv2.GaussianBlur(y, (0, 0), sigma) - cv2.GaussianBlur(y, (0, 0), 3 * sigma)
    gx, gy = cv2.Sobel(y, cv2.CV_32F, 1, 0), cv2.Sobel(y, cv2.CV_32F, 0, 1)
    edge = np.sqrt(gx * gx + gy * gy) / 8.0
    noise_damping = 1.0 / (1.0 + (noise_sigma * 255 / 4.0) ** 2)
    gain = amount * noise_damping / (1.0 + (edge / edge_contrast) ** 2)
    sharpened = y + gain * (y - cv2.GaussianBlur(y, (0, 0), sigma) + band)
    kernel = np.ones((3, 3), np.uint8)
    low, high = cv2.erode(y, kernel) - overshoot, cv2.dilate(y, kernel) + overshoot
    sharpened = np.clip(sharpened, low, high)
    return _on_luma(image, sharpened, y), {
        "amount": amount,
        "sigma": sigma,
        "noise_damping": round(float(noise_damping), 3),
        "decision": "sharpened (halo-limited)",
    }


def _clahe_on(plane: np.ndarray, clip_limit: float, tile_px: int) -> np.ndarray:
    """CLAHE of a [0, 1] plane, at float precision.

    OpenCV's 16-bit CLAHE spreads each tile over 65,536 bins, where the clip limit collapses
    to one count per bin and the result is near-full equalisation. So the curve is taken on
    256 levels and applied as a correction to the full-precision plane.
    """
    height, width = plane.shape
    grid = (max(1, round(width / tile_px)), max(1, round(height / tile_px)))
    clahe = cv2.createCLAHE(clipLimit=clip_limit, tileGridSize=grid)
    coarse = np.round(np.clip(plane, 0, 1) * 255).astype(np.uint8)
    change = clahe.apply(coarse).astype(np.float32) / 255 - coarse.astype(np.float32) / 255
    return np.clip(plane + cv2.GaussianBlur(change, (0, 0), 1.0), 0.0, 1.0)


def local_contrast(image: np.ndarray, *, clip_limit: float = 1.5, tile_px: int = 128) -> tuple[np.ndarray, Record]:
    """CLAHE on lightness only (Lab L*), so colours are untouched; tiles of about ``tile_px``."""
    if clip_limit <= 0:
        return image, {"decision": "skipped: clip limit 0"}
    record: Record = {"clip_limit": clip_limit, "tile_px": tile_px}
    if image.shape[2] == 1:
        return _clahe_on(image[..., 0], clip_limit, tile_px)[..., None], {**record, "decision": "CLAHE on grey levels"}
    lab = srgb_to_lab(image)
    lab[..., 0] = _clahe_on(lab[..., 0] / 100, clip_limit, tile_px) * 100
    return lab_to_srgb(lab), {**record, "decision": "CLAHE on L*"}


def convert_colour_space(
    image: np.ndarray, source_profile: bytes | None, target: str | None
) -> tuple[np.ndarray, bytes | None, Record]:
    """Convert to ``target`` (sRGB, Adobe RGB, Display P3) and return the profile to embed.

    With no embedded profile the input is taken as sRGB, the web's and most scanners'
    default. A profile that is not RGB matrix-shaper is left in place, and the record says so.
    """
    if target is None:
        return image, source_profile, {"decision": "skipped: keep the input's colour space"}
    if target not in icc.SPACES:
        raise ValueError(f"colour space must be one of {sorted(icc.SPACES)}, not {target!r}")
    if image.shape[2] == 1:
        return image, source_profile, {"decision": "skipped: greyscale image"}
    try:
        source = icc.parse_profile(source_profile) if source_profile else icc.SPACES["sRGB"]
    except icc.UnsupportedProfileError as exc:
        return image, source_profile, {"decision": f"skipped: {exc}"}
    space = icc.SPACES[target]
    out = icc.convert(image, source, space)
    return out, icc.build_profile(space), {
        "source": source.name,
        "target": space.name,
        "decision": f"converted from {source.name} to {space.name}",
    }
