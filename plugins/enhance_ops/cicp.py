"""Colour told by ITU-T H.273 code points (a PNG's cICP chunk, an AVIF's nclx colour box), as an ICC profile.

Such a file names its primaries and tone curve by number instead of embedding a profile. Taken
as sRGB, a Display P3 or BT.2020 picture loses saturation and a BT.709 one shifts in its
shadows, with nothing in the ledger to say so; the numbers are turned into the matrix-shaper
profile they describe, which the chain converts from and the derivative carries as any other.
HDR transfers (PQ, HLG) are refused: the chain and its derivatives are SDR, and an HDR scan
read as SDR would be published washed out.
"""
from __future__ import annotations

from dataclasses import dataclass

from .chain import icc
from .errors import UnsupportedImageError

_ILLUMINANT_C = (0.310, 0.316)
_DCI_WHITE = (0.314, 0.351)
# H.273 ColourPrimaries: name, red, green, blue (x, y) and white; 2 (unspecified) is taken as 1, sRGB's
_PRIMARIES = {
    1: ("BT.709", [(0.64, 0.33), (0.30, 0.60), (0.15, 0.06)], icc.D65),
    4: ("BT.470 System M", [(0.67, 0.33), (0.21, 0.71), (0.14, 0.08)], _ILLUMINANT_C),
    5: ("BT.601 625-line", [(0.64, 0.33), (0.29, 0.60), (0.15, 0.06)], icc.D65),
    6: ("BT.601 525-line", [(0.630, 0.340), (0.310, 0.595), (0.155, 0.070)], icc.D65),
    7: ("SMPTE 240M", [(0.630, 0.340), (0.310, 0.595), (0.155, 0.070)], icc.D65),
    8: ("generic film", [(0.681, 0.319), (0.243, 0.692), (0.145, 0.049)], _ILLUMINANT_C),
    9: ("BT.2020", [(0.708, 0.292), (0.170, 0.797), (0.131, 0.046)], icc.D65),
    11: ("DCI-P3 (SMPTE RP 431-2)", [(0.680, 0.320), (0.265, 0.690), (0.150, 0.060)], _DCI_WHITE),
    12: ("Display P3 (SMPTE EG 432-1)", [(0.680, 0.320), (0.265, 0.690), (0.150, 0.060)], icc.D65),
    22: ("EBU Tech 3213", [(0.630, 0.340), (0.295, 0.605), (0.155, 0.077)], icc.D65),
}
# The BT.709 curve, read as displays of such files read it: the inverse of its camera curve
_BT709 = icc.Curve(params=(1 / 0.45, 1 / 1.099, 0.099 / 1.099, 1 / 4.5, 0.081))
# H.273 TransferCharacteristics: name and curve from samples to light; 2 (unspecified) is taken as 13, sRGB's
_TRANSFERS = {
    1: ("BT.709", _BT709),
    4: ("gamma 2.2", icc.Curve(gamma=2.2)),
    5: ("gamma 2.8", icc.Curve(gamma=2.8)),
    6: ("BT.601", _BT709),
    8: ("linear", icc.Curve(gamma=1.0)),
    13: ("sRGB", icc.SRGB_CURVE),
    14: ("BT.2020 10-bit", _BT709),
    15: ("BT.2020 12-bit", _BT709),
}
_HDR = {16: "PQ (SMPTE ST 2084)", 18: "HLG (ARIB STD-B67)"}
_SRGB_PRIMARIES, _SRGB_TRANSFERS = {1, 2}, {2, 13}


@dataclass(frozen=True)
class CodePoints:
    """H.273's numbers for how samples become colour."""

    primaries: int
    transfer: int
    matrix: int
    full_range: bool

    def __str__(self) -> str:
        return f"{self.primaries}/{self.transfer}/{self.matrix}/{int(self.full_range)}"


def profile(points: CodePoints, grey: bool, source: str) -> bytes | None:
    """The ICC profile ``points`` describe, grey where the samples are; None where they say
    sRGB (or leave it unsaid), as an untagged file is taken. ``source`` names where the code
    points were read, for the refusal of those that are not processed."""
    if points.transfer in _HDR:
        raise UnsupportedImageError(f"{source} says HDR ({_HDR[points.transfer]} transfer, code points {points}): "
                                    "HDR images are not processed; the chain and its derivatives are SDR")
    transfer = 13 if points.transfer == 2 else points.transfer
    primaries = 1 if points.primaries == 2 else points.primaries
    if transfer not in _TRANSFERS:
        raise UnsupportedImageError(f"{source} names transfer characteristics {points.transfer} (code points "
                                    f"{points}), which are not processed; convert the image to an ICC-tagged one")
    if primaries not in _PRIMARIES and not grey:
        raise UnsupportedImageError(f"{source} names colour primaries {points.primaries} (code points {points}), "
                                    "which are not processed; convert the image to an ICC-tagged one")
    curve_name, curve = _TRANSFERS[transfer]
    if grey:
        return None if transfer == 13 else icc.build_grey_profile(f"{curve_name} grey", curve)
    if points.primaries in _SRGB_PRIMARIES and points.transfer in _SRGB_TRANSFERS:
        return None
    name, rgb, white = _PRIMARIES[primaries]
    return icc.build_profile(icc.from_chromaticities(f"{name} primaries, {curve_name} transfer", rgb, white, curve))
