"""ICC matrix-shaper profiles: read them, write them, convert pixels between them in float.

Pillow's LittleCMS binding converts 8-bit images only; archive masters are often 16-bit. RGB
working spaces (sRGB, Adobe RGB, Display P3, ProPhoto, eciRGB, …) are matrix-shaper
profiles: per-channel tone curves plus a 3x3 matrix to the D50 connection space, which is
exact to apply in float32. An RGB profile built on lookup tables (a scanner's own, made by
profiling it against a target; the ICC's sRGB v4 preference profile) is not read here:
LittleCMS converts from it, in float32 too (``convert_through_littlecms``).
"""
from __future__ import annotations

import dataclasses
import struct
from dataclasses import dataclass

import cv2
import imagecodecs
import numpy as np

D50 = np.array([0.9642, 1.0, 0.8249])
_BRADFORD = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])


class UnsupportedProfileError(ValueError):
    """The profile is not an RGB matrix-shaper profile."""


@dataclass(frozen=True)
class Curve:
    """A tone curve: ``gamma`` alone, the sRGB-style parametric form, or a sampled table."""

    gamma: float = 1.0
    params: tuple[float, ...] = ()  # ICC parametric type 3: g, a, b, c, d
    table: tuple[float, ...] = ()

    def to_linear(self, x: np.ndarray) -> np.ndarray:
        x = np.clip(x, 0.0, 1.0)
        if self.table:
            return np.interp(x, np.linspace(0, 1, len(self.table)), self.table).astype(np.float32)
        if self.params:
            g, a, b, c, d = self.params
            return np.where(x >= d, np.power(a * x + b, g), c * x).astype(np.float32)
        return np.power(x, self.gamma).astype(np.float32)

    def from_linear(self, y: np.ndarray) -> np.ndarray:
        y = np.clip(y, 0.0, 1.0)
        if self.table:
            return np.interp(y, self.table, np.linspace(0, 1, len(self.table))).astype(np.float32)
        if self.params:
            g, a, b, c, d = self.params
            return np.where(y >= c * d, (np.power(y, 1 / g) - b) / a, y / c).astype(np.float32)
        return np.power(y, 1 / self.gamma).astype(np.float32)


SRGB_CURVE = Curve(params=(2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045))


@dataclass(frozen=True)
class MatrixShaper:
    name: str
    to_pcs: np.ndarray  # linear RGB → XYZ (D50), the rXYZ/gXYZ/bXYZ columns
    curves: tuple[Curve, Curve, Curve]

    def to_xyz(self, rgb: np.ndarray) -> np.ndarray:
        linear = np.stack([self.curves[i].to_linear(rgb[..., i]) for i in range(3)], axis=-1)
        return linear @ self.to_pcs.T.astype(np.float32)

    def linear_from_xyz(self, xyz: np.ndarray) -> np.ndarray:
        """Linear RGB, unclipped: a colour outside the space's gamut has a channel outside 0-1."""
        return xyz @ np.linalg.inv(self.to_pcs).T.astype(np.float32)

    def encoded(self, linear: np.ndarray) -> np.ndarray:
        return np.stack([self.curves[i].from_linear(linear[..., i]) for i in range(3)], axis=-1)


def _matrix_from_primaries(primaries: list[tuple[float, float]], white: tuple[float, float]) -> np.ndarray:
    """RGB → XYZ for the given chromaticities, adapted to D50 with Bradford (as ICC profiles are)."""
    xyz = np.array([[x / y, 1.0, (1 - x - y) / y] for x, y in primaries]).T
    w = np.array([white[0] / white[1], 1.0, (1 - white[0] - white[1]) / white[1]])
    m = xyz * np.linalg.solve(xyz, w)
    adapt = np.linalg.inv(_BRADFORD) @ np.diag((_BRADFORD @ D50) / (_BRADFORD @ w)) @ _BRADFORD
    return adapt @ m


D65 = (0.3127, 0.3290)
SRGB_PRIMARIES = [(0.64, 0.33), (0.30, 0.60), (0.15, 0.06)]  # red, green, blue (x, y)
SPACES = {
    "sRGB": MatrixShaper(
        "sRGB", _matrix_from_primaries(SRGB_PRIMARIES, D65), (SRGB_CURVE,) * 3
    ),
    "Adobe RGB": MatrixShaper(
        "Adobe RGB (1998)",
        _matrix_from_primaries([(0.64, 0.33), (0.21, 0.71), (0.15, 0.06)], D65),
        (Curve(gamma=563 / 256),) * 3,
    ),
    "Display P3": MatrixShaper(
        "Display P3", _matrix_from_primaries([(0.680, 0.320), (0.265, 0.690), (0.150, 0.060)], D65), (SRGB_CURVE,) * 3
    ),
}


def from_chromaticities(
    name: str, primaries: list[tuple[float, float]], white: tuple[float, float], curve: Curve
) -> MatrixShaper:
    """A space told by its primaries, white and one tone curve for all three channels, as a
    PNG's cHRM and gAMA chunks or H.273's code points (``cicp``) tell one."""
    return MatrixShaper(name, _matrix_from_primaries(primaries, white), (curve,) * 3)


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _xyz_tag(xyz: np.ndarray) -> bytes:
    return b"XYZ \x00\x00\x00\x00" + b"".join(_s15(v) for v in xyz)


def _curve_tag(curve: Curve) -> bytes:
    if curve.params:
        return b"para\x00\x00\x00\x00" + struct.pack(">HH", 3, 0) + b"".join(_s15(v) for v in curve.params)
    return b"curv\x00\x00\x00\x00" + struct.pack(">IH", 1, round(curve.gamma * 256)) + b"\x00\x00"


def _text_tag(text: str) -> bytes:
    """multiLocalizedUnicodeType with one English record (ICC v4)."""
    body = text.encode("utf-16-be")
    return b"mluc\x00\x00\x00\x00" + struct.pack(">II", 1, 12) + b"enUS" + struct.pack(">II", len(body), 28) + body


def build_profile(space: MatrixShaper) -> bytes:
    """A v4 display-class ICC profile for ``space`` that LittleCMS (and so Pillow) reads."""
    return _profile(b"RGB ", space.name, [
        (b"rXYZ", _xyz_tag(space.to_pcs[:, 0])),
        (b"gXYZ", _xyz_tag(space.to_pcs[:, 1])),
        (b"bXYZ", _xyz_tag(space.to_pcs[:, 2])),
        (b"rTRC", _curve_tag(space.curves[0])),
        (b"gTRC", _curve_tag(space.curves[1])),
        (b"bTRC", _curve_tag(space.curves[2])),
    ])


def build_grey_profile(name: str, curve: Curve) -> bytes:
    """A v4 display-class grey ICC profile: one tone curve to the D50 white's luminance."""
    return _profile(b"GRAY", name, [(b"kTRC", _curve_tag(curve))])


def _profile(colour_space: bytes, name: str, own_tags: list[tuple[bytes, bytes]]) -> bytes:
    tags = [(b"desc", _text_tag(name)), (b"cprt", _text_tag("No copyright, use freely")), (b"wtpt", _xyz_tag(D50)),
            *own_tags]
    table_size = 4 + 12 * len(tags)
    offset, entries, data = 128 + table_size, b"", b""
    for sig, payload in tags:
        payload += b"\x00" * (-len(payload) % 4)
        entries += sig + struct.pack(">II", offset + len(data), len(payload))
        data += payload
    size = 128 + table_size + len(data)
    header = (
        struct.pack(">I", size) + b"lcms" + bytes([4, 0x30, 0, 0]) + b"mntr" + colour_space + b"XYZ "
        + struct.pack(">6H", 2026, 1, 1, 0, 0, 0) + b"acsp" + b"\x00" * 4 + struct.pack(">I", 0)
        + b"\x00" * 8 + b"\x00" * 8 + struct.pack(">I", 0) + b"".join(_s15(v) for v in D50) + b"\x00" * 4
    )
    header += b"\x00" * (128 - len(header))
    return header + struct.pack(">I", len(tags)) + entries + data


def _read_curve(data: bytes) -> Curve:
    kind = data[:4]
    if kind == b"curv":
        (count,) = struct.unpack(">I", data[8:12])
        if count == 0:
            return Curve(gamma=1.0)
        if count == 1:
            return Curve(gamma=struct.unpack(">H", data[12:14])[0] / 256)
        values = struct.unpack(f">{count}H", data[12 : 12 + 2 * count])
        return Curve(table=tuple(v / 65535 for v in values))
    if kind == b"para":
        (function,) = struct.unpack(">H", data[8:10])
        n = {0: 1, 1: 3, 2: 4, 3: 5, 4: 7}[function]
        values = [v / 65536 for v in struct.unpack(f">{n}i", data[12 : 12 + 4 * n])]
        if function == 0:
            return Curve(gamma=values[0])
        if function == 3:
            return Curve(params=tuple(values))
        g, a, b = values[:3]
        c = values[3] if function == 2 else 0.0
        samples = np.linspace(0, 1, 4096)
        base = np.clip(a * samples + b, 0, None)
        return Curve(table=tuple(np.where(samples >= -b / a, np.power(base, g) + c, c).tolist()))
    raise UnsupportedProfileError(f"tone curve type {kind!r} is not supported")


def _tags(profile: bytes) -> dict[bytes, bytes]:
    (count,) = struct.unpack(">I", profile[128:132])
    tags = {}
    for i in range(count):
        sig, offset, size = struct.unpack(">4sII", profile[132 + 12 * i : 144 + 12 * i])
        tags[sig] = profile[offset : offset + size]
    return tags


def _description(tags: dict[bytes, bytes]) -> str:
    desc = tags.get(b"desc", b"")
    if desc[:4] == b"desc":
        (length,) = struct.unpack(">I", desc[8:12])
        return desc[12 : 12 + length].rstrip(b"\x00").decode("latin-1")
    if desc[:4] == b"mluc":
        length, offset = struct.unpack(">II", desc[20:28])
        return desc[offset : offset + length].decode("utf-16-be", "replace")
    return "embedded profile"


def description(profile: bytes) -> str | None:
    """A profile's own name (its description tag), for metadata that names it; None where it
    has none that can be read."""
    try:
        name = _description(_tags(profile)) if _is_profile(profile) else None
    except (struct.error, ValueError):
        return None
    return None if name == "embedded profile" else name.strip("\x00 ") or None


def _is_profile(profile: bytes) -> bool:
    """An ICC header: 128 bytes, a tag count, and the signature where the header holds it."""
    return len(profile) >= 132 and profile[36:40] == b"acsp"


def parse_profile(profile: bytes) -> MatrixShaper:
    if not _is_profile(profile):
        raise UnsupportedProfileError("not an ICC profile")
    if profile[16:20] != b"RGB ":
        raise UnsupportedProfileError(f"colour space {profile[16:20].decode('latin-1').strip()} is not RGB")
    tags = _tags(profile)
    needed = [b"rXYZ", b"gXYZ", b"bXYZ", b"rTRC", b"gTRC", b"bTRC"]
    if not all(t in tags for t in needed):
        raise UnsupportedProfileError("not a matrix-shaper profile (it is built on lookup tables)")
    columns = [[v / 65536 for v in struct.unpack(">3i", tags[t][8:20])] for t in needed[:3]]
    curves = tuple(_read_curve(tags[t]) for t in needed[3:])
    return MatrixShaper(_description(tags), np.array(columns).T, curves)  # type: ignore[arg-type]


def misfit(profile: bytes, channels: int) -> str | None:
    """Why ``profile`` cannot describe samples of ``channels`` colour channels (1 grey, 3 RGB),
    or None where it can: a grey profile on RGB samples, or an RGB one on grey, which libpng
    refuses and viewers ignore or misapply, or bytes that are no profile at all."""
    if not _is_profile(profile) or int.from_bytes(profile[:4], "big") > len(profile):
        return "it is not a whole ICC profile (damaged or cut short)"
    if damage := _tag_table_damage(profile):
        return f"it is damaged: {damage}"
    space, wanted = profile[16:20], {1: b"GRAY", 3: b"RGB "}.get(channels)
    if wanted is None or space == wanted:
        return None
    named, image = space.decode("latin-1").strip() or "unnamed", "grey" if channels == 1 else "RGB"
    return f"it is for {named} data, and the image is {image}"


def _tag_table_damage(profile: bytes) -> str | None:
    """Where a profile's tag table points past its end (a flipped byte in an offset or a size):
    LittleCMS refuses such a profile, libpng warns, and each viewer does otherwise with it."""
    end = int.from_bytes(profile[:4], "big")
    (count,) = struct.unpack_from(">I", profile, 128)
    if 132 + 12 * count > end:
        return f"its table of {count:,} tags runs past the profile's {end:,} bytes"
    for at in range(132, 132 + 12 * count, 12):
        sig, offset, size = struct.unpack_from(">4sII", profile, at)
        if offset + size > end:
            return f"its {sig.decode('latin-1').strip()} tag lies past the profile's {end:,} bytes"
    return None


def grey_as_rgb(profile: bytes) -> bytes | None:
    """The same greys as an RGB profile, for grey samples a format stores as RGB (WebP has no
    grey; OpenCV writes no grey+alpha PNG): a grey profile on RGB samples is refused by
    libpng and ignored by viewers. Each channel gets the grey's own tone curve, and the
    colourants (sRGB's) add up to the D50 white, so R = G = B lands where the grey profile
    puts that grey. None where ``profile`` is not a sound grey tone-curve profile."""
    if not _is_profile(profile) or profile[16:20] != b"GRAY":
        return None
    try:
        tags = _tags(profile)
        _read_curve(tags[b"kTRC"])
    except (KeyError, struct.error, UnsupportedProfileError):  # no tone curve, or a damaged one
        return None
    colourants = SPACES["sRGB"].to_pcs
    return _profile(b"RGB ", f"{_description(tags)} (as RGB)", [
        *((sig, _xyz_tag(colourants[:, i])) for i, sig in enumerate((b"rXYZ", b"gXYZ", b"bXYZ"))),
        *((sig, tags[b"kTRC"]) for sig in (b"rTRC", b"gTRC", b"bTRC")),
    ])


GAMUT_SLACK = 1 / 255  # of linear light: a channel this far outside 0-1 is a colour the space does not hold


def convert(rgb: np.ndarray, source: MatrixShaper, target: MatrixShaper) -> tuple[np.ndarray, int]:
    """Relative colorimetric conversion in float32, and how many pixels lay outside
    ``target``'s gamut (by more than ``GAMUT_SLACK``): their colours are clipped to its edge,
    so a wide-gamut master's most saturated colours are lost in a smaller space."""
    return _clipped_into(target, target.linear_from_xyz(source.to_xyz(rgb)))


def linear_profile(space: MatrixShaper) -> bytes:
    """``space`` with linear tone curves: what LittleCMS converts into, unclipped, so that
    colours outside the space can be counted (``convert_through_littlecms``)."""
    return build_profile(dataclasses.replace(space, curves=(Curve(gamma=1.0),) * 3))


def convert_through_littlecms(rgb: np.ndarray, profile: bytes, target: MatrixShaper,
                              linear_target: bytes) -> tuple[np.ndarray, int]:
    """``convert`` from an RGB profile ``parse_profile`` does not read: LittleCMS, relative
    colorimetric (its A2B1 where it has one), into ``linear_target`` (``linear_profile`` of
    ``target``), then ``target``'s curves. Raises imagecodecs.CmsError where LittleCMS
    cannot use the profile."""
    linear = imagecodecs.cms_transform(np.ascontiguousarray(rgb, np.float32), profile, linear_target,
                                       colorspace="rgb", outcolorspace="rgb", outdtype=np.float32, intent=1)
    return _clipped_into(target, linear)


def _clipped_into(target: MatrixShaper, linear: np.ndarray) -> tuple[np.ndarray, int]:
    """Linear RGB encoded by ``target``'s curves and clipped, and the pixels that lay outside it."""
    outside = 0
    if linear.min() < -GAMUT_SLACK or linear.max() > 1 + GAMUT_SLACK:  # as good as free: counted only where some are
        inside = cv2.inRange(linear, (-GAMUT_SLACK,) * 3, (1 + GAMUT_SLACK,) * 3)
        outside = inside.size - cv2.countNonZero(inside)
    return np.clip(target.encoded(linear), 0.0, 1.0).astype(np.float32), outside
