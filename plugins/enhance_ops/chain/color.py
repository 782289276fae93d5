"""Colour restoration of faded photographs.

Ageing dye prints lose density per dye (contrast falls unevenly per channel), their paper
base yellows (a yellow/magenta stain lifts the shadows) and their colours bleach. The
restoration removes the stain seen in the darkest pixels (by luma), restores the contrast
between them and the white (the pixels brightest in every channel), and gives back part of
the lost saturation.

Which part of a highlight's colour is the scene and which is fading cannot be told from the
pixels: a warm sunset and a yellowed print look alike. So the per-channel (cast) part of the
correction is applied only halfway (``cast_weight``), which measured best on average on the
benchmark in bench/fading_benchmark.py; docs/chain.md has its results and shortfall.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np

from . import strips, toning
from .colour_math import LUMA, lab_to_srgb, luma, srgb_to_lab
from .quantiles import percentiles

Record = dict[str, Any]
MEASURED_PIXELS = 4_000_000  # fading is measured on at most this many pixels (an even subsample)
# What a stain is told by, each from none (the first value) to certain (the second); the
# restoration's strength is their product (``stain_strength``). The luma it lifts blacks to:
# the fading model's at 0.6 is 0.074-0.138 (bench/fading_benchmark.py), warm, low-key originals'
# reach 0.077-0.102 (TID2013's I03 and I06, whole or reduced); that lift as a share of the luma
# range left, which the fading's contrast loss raises (originals to 0.121, the model's at 0.6
# from 0.107); and its chroma.
STAIN_LIFT = (0.07, 0.09)
STAIN_SHARE = (0.09, 0.13)
STAIN_CHROMA = (4.0, 8.0)
FAINTEST = 0.05  # a trace of a stain, less sure than this, is none: not a print to call faded, nor to keep from exposure
WASHED_OUT = 0.3  # blacks lifted this far are a washed-out scan's (0.35 and more), not a stain (to 0.19)
RESTORED = "faded colours restored"  # the restoration's decision where it ran


@dataclass(frozen=True)
class FadingSigns:
    black_luma: float  # luma of the darkest 0.2 %: lifted by a stained base
    range_luma: float  # white minus black luma: contrast left
    stain_chroma: float  # chroma (Lab) of the darkest pixels: the stain's colour strength
    chroma_p95: float  # saturation left

    @property
    def stained(self) -> bool:
        return self.stain > 0

    @property
    def stain(self) -> float:
        return stain_strength(self.black_luma, self.range_luma, self.stain_chroma)

    @property
    def strength(self) -> float:
        """How much of the restoration the signs call for: all of it for low contrast and
        colour (which an underexposed photo shows too), else as much as the stain is sure."""
        return 1.0 if self.range_luma < 0.7 and self.chroma_p95 < 30 else self.stain

    @property
    def faded(self) -> bool:
        return self.strength > 0

    def as_record(self) -> Record:
        return {k: round(float(v), 4) for k, v in asdict(self).items()}


def _extremes(image: np.ndarray, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    y = luma(image)
    lo, hi = percentiles(y, [100 * fraction, 100 * (1 - fraction)])
    return image[y <= lo].mean(axis=0), image[y >= hi].mean(axis=0)


def _white_point(image: np.ndarray, fraction: float) -> np.ndarray:
    """The mean of the pixels brightest in their dimmest channel: the paper or a neutral
    highlight, what a print's white was. The most luminous pixels can be a saturated colour
    (TID2013's I03: yellow caps, blue at 0.46 of red), which taken for the white reads as blue
    having lost half its range against red and green: the cast correction took the scene's
    warmth away (I03 faded at 0.6: mean b* 22 in the original, 2 restored; 11 from this white)."""
    dimmest = image.min(axis=-1)
    (bright,) = percentiles(dimmest, [100 * (1 - fraction)])
    return image[dimmest >= bright].mean(axis=0)


def _stain(image: np.ndarray, fraction: float) -> tuple[float, float, float]:
    """The darkest pixels' mean colour as its luma, the luma range left above it to the
    most luminous, and its chroma (Lab): how far a stain lifts and tints them."""
    black, white = _extremes(image, fraction)
    black_lab = srgb_to_lab(black[None, None, :])[0, 0]
    return float(black @ LUMA), float((white - black) @ LUMA), float(np.hypot(black_lab[1], black_lab[2]))


def _ramp(value: float, bounds: tuple[float, float]) -> float:
    return float(np.clip((value - bounds[0]) / (bounds[1] - bounds[0]), 0.0, 1.0))


def stain_strength(black_luma: float, range_luma: float, stain_chroma: float) -> float:
    """How sure lifted, tinted blacks are a yellowed base, 0 to 1: the share of the
    restoration applied. A warm, low-key original's shadows look like a stain, and the
    evidence overlaps, so the restoration grows with it rather than all at once: on a
    threshold, I03 reduced to half its size was restored in full, to ΔE00 13 from itself.
    Lifted past ``WASHED_OUT``, blacks are a washed-out scan's, which a stretch on all
    channels alike serves better."""
    if black_luma >= WASHED_OUT:
        return 0.0
    share = black_luma / max(range_luma, 1e-3)
    strength = _ramp(black_luma, STAIN_LIFT) * _ramp(share, STAIN_SHARE) * _ramp(stain_chroma, STAIN_CHROMA)
    return strength if strength >= FAINTEST else 0.0


def fading_signs(image: np.ndarray, fraction: float = 0.002) -> FadingSigns:
    black_luma, range_luma, stain_chroma = _stain(image, fraction)
    lab = srgb_to_lab(image)
    return FadingSigns(
        black_luma=black_luma,
        range_luma=range_luma,
        stain_chroma=stain_chroma,
        chroma_p95=float(percentiles(np.hypot(lab[..., 1], lab[..., 2]), [95])[0]),
    )


@dataclass(frozen=True)
class FadeCorrection:
    """The per-pixel correction measured on a faded image: subtract the stain, stretch, re-saturate."""

    black: np.ndarray
    gains: np.ndarray
    chroma_gain: float
    strength: float = 1.0  # the share of the change applied (``stain_strength``)

    def apply(
        self, image: np.ndarray, *, out: np.ndarray | None = None, share: Callable[[int, int], np.ndarray] | None = None
    ) -> np.ndarray:
        """In row strips; ``out=image`` works in place. The stretch and the chroma gain are
        3x4 and 3x3 products in ``cv2.transform``, one pass each over the pixels. ``share``:
        how much of the change each pixel of rows r0:r1 takes (the print all of it, the
        scanner's background around it none), else all of it everywhere; either way times
        ``strength``."""
        stretch = np.hstack([np.diag(self.gains), (-self.black * self.gains)[:, None]]).astype(np.float32)
        chroma = np.diag([1.0, self.chroma_gain, self.chroma_gain]).astype(np.float32)

        def restore(rows: np.ndarray, top: int) -> np.ndarray:
            stretched = cv2.transform(np.ascontiguousarray(rows).reshape(-1, 1, 3), stretch)
            np.clip(stretched, 0.0, 1.0, out=stretched)
            restored = lab_to_srgb(cv2.transform(srgb_to_lab(stretched), chroma)).reshape(rows.shape)
            if share is not None or self.strength < 1.0:
                restored -= rows
                restored *= np.float32(self.strength) if share is None else \
                    share(top, top + len(rows)) * np.float32(self.strength)
                restored += rows
            return restored

        return strips.map_rows(image, restore, margin=0, out=out)


def measured_pixels(reference: np.ndarray, where: np.ndarray | None = None) -> np.ndarray:
    """An even subsample of ``reference``, of its pixels ``where`` is true (the print, without
    the scanner's background: ``scan_border.py``) when given."""
    measured = strips.subsample(reference, MEASURED_PIXELS)
    return strips.pixels_where(measured, None if where is None else strips.subsample(where, MEASURED_PIXELS))


def restorable(
    reference: np.ndarray, mode: str = "auto", fraction: float = 0.002, *, stained_only: bool = False,
    where: np.ndarray | None = None,
) -> tuple[bool, Record]:
    """Whether ``mode`` restores ``reference``'s colours, with the signs measured (and why
    not, when it does not). ``mode``: auto (only when the image shows signs of fading, or with
    ``stained_only`` a stain, and is not a monochrome print, whose lifted, tinted blacks are
    its toning: ``toning.py``), on, or off. The chain asks for a stain on the master, before
    exposure would stretch it and the lost contrast away on all channels alike, keeping the
    cast that this stretch, channel by channel, takes out. Where it restores, the record's
    ``strength`` is the share of the correction to apply (all of it for ``mode=on``)."""
    if mode == "off":
        return False, {"decision": "skipped: turned off"}
    if reference.shape[2] == 1:
        return False, {"decision": "skipped: greyscale image"}
    measured = measured_pixels(reference, where)
    record: Record
    if stained_only:  # the darkest pixels alone, not every pixel's chroma: it runs on every colour master
        black_luma, range_luma, stain_chroma = _stain(measured, fraction)
        strength = stain_strength(black_luma, range_luma, stain_chroma)
        record = {"stain": {"black_luma": round(black_luma, 4), "range_luma": round(range_luma, 4),
                            "stain_chroma": round(stain_chroma, 4)}}
    else:
        signs = fading_signs(measured, fraction)
        strength, record = signs.strength, {"signs": signs.as_record()}
    found = strength > 0
    if mode == "auto" and not found:
        return False, {**record, "decision": "skipped: no stain" if stained_only else "skipped: no signs of fading"}
    if mode == "auto" and (tone := toning.measure(reference, where)).monochrome:
        return False, {**record, "toning": tone.as_record(),
                       "decision": f"skipped: a monochrome print ({tone.described}), whose colour is its process, not fading"}
    return True, {**record, "strength": 1.0 if mode == "on" else round(strength, 3)}


def plan_restoration(
    reference: np.ndarray,
    *,
    mode: str = "auto",
    fraction: float = 0.002,
    cast_weight: float = 0.5,
    chroma_target: float = 35.0,
    max_chroma_gain: float = 1.6,
    where: np.ndarray | None = None,
    strength: float | None = None,
) -> tuple[FadeCorrection | None, Record]:
    """Measure fading on ``reference`` (``restorable`` says whether ``mode`` restores it);
    None (and why, in the record) when nothing is to be done. Measuring apart from applying
    lets the chain measure before super-resolution (whose network may deepen blacks) and let
    go of that image before the output-size correction runs. ``strength``: the share of the
    correction to apply, where the stain was judged before (else as ``restorable`` says).
    """
    restore, record = restorable(reference, mode, fraction, where=where)
    if not restore:
        return None, record
    if strength is not None:
        record = {**record, "strength": round(strength, 3)}
    measured = measured_pixels(reference, where)
    black, white = _extremes(measured, fraction)[0], _white_point(measured, fraction)
    span = np.maximum(white - black, 1e-3)
    joint = float(span @ LUMA)
    gains = np.power(1 / span, cast_weight) * (1 / joint) ** (1 - cast_weight)
    stretched = srgb_to_lab(np.clip((measured - black) * gains, 0.0, 1.0))
    chroma_p95 = float(percentiles(np.hypot(stretched[..., 1], stretched[..., 2]), [95])[0])
    gain = float(np.clip(chroma_target / max(chroma_p95, 1e-3), 1.0, max_chroma_gain))
    return FadeCorrection(black.astype(np.float32), gains.astype(np.float32), gain, record["strength"]), {
        **record,
        "black_point": [round(float(v), 4) for v in black],
        "white_point": [round(float(v), 4) for v in white],
        "gains": [round(float(v), 4) for v in gains],
        "chroma_gain": round(gain, 3),
        "decision": RESTORED,
    }


def restore_faded_colour(
    image: np.ndarray,
    *,
    reference: np.ndarray | None = None,
    mode: str = "auto",
    out: np.ndarray | None = None,
    **settings: float,
) -> tuple[np.ndarray, Record]:
    """``plan_restoration`` on ``reference`` (default: the image itself), applied to ``image``."""
    correction, record = plan_restoration(image if reference is None else reference, mode=mode, **settings)
    return (image if correction is None else correction.apply(image, out=out)), record
