"""A PNG of samples, filtered and deflated a band of rows per strip lane.

libpng, OpenCV's PNG writer, filters and deflates on one thread: at zlib level 6 a
20-megapixel derivative took 4–8 s to write on the 2-core VM (docs/benchmarks.md), more
than a GPU takes to make it. Here each band of rows is filtered as libpng filters it, each
row by whichever of the five filters leaves the smallest sum of absolute values (libpng's
heuristic), and deflated at the same level on a lane of its own, as pigz does. Each band's
deflate stream is primed with the 32 KiB of filtered rows before it and ends on a byte
boundary, so that the bands join into one zlib stream of the same size as one over the
whole image. The deflater is zlib-ng's: at level 6 it took a quarter to a half of zlib's
time on upscaled pictures, and its streams were 0.4–3 % smaller (docs/benchmarks.md).
"""
from __future__ import annotations

import functools
import struct
from collections.abc import Sequence

import numpy as np
from zlib_ng import zlib_ng

from .chain import strips
from .png_chunks import PNG_SIGNATURE, chunk

LEVEL = 6  # zlib's default, and what the derivatives were written with through OpenCV
_WINDOW = 32 * 1024  # deflate looks back this far: the priming a band takes from the one before
_COLOUR_TYPE = {1: 0, 2: 4, 3: 2, 4: 6}  # channels → grey, grey + alpha, RGB, RGBA
_ADLER_BASE = 65521


def encode(samples: np.ndarray, metadata: Sequence[bytes] = (), *, level: int = LEVEL) -> bytes:
    """(H, W, C) uint8 or uint16 samples, C of 1 to 4 (grey, grey + alpha, RGB, RGBA), as a
    PNG: its header, the ``metadata`` chunks (``png_chunks``), its pixel data and its end."""
    height, width, channels = samples.shape
    depth = samples.dtype.itemsize
    # a strip's bytes, not its pixels: filtering takes some ten 16-bit copies of each byte
    spans = list(strips.spans(height, strips.strip_rows(width * channels * depth)))
    parts = strips.in_lanes([functools.partial(_band, samples, y0, y1, level, y1 == height) for y0, y1 in spans])
    adler = 1
    for (y0, y1), (_, checksum) in zip(spans, parts):
        adler = _adler32_combine(adler, checksum, (y1 - y0) * (1 + width * channels * depth))
    # one IDAT chunk per band (a chunk holds under 2 GiB; the zlib stream runs on across them)
    pieces = [data for data, _ in parts]
    pieces[0] = b"\x78\x9c" + pieces[0]
    pieces[-1] += struct.pack(">I", adler)
    header = struct.pack(">IIBBBBB", width, height, depth * 8, _COLOUR_TYPE[channels], 0, 0, 0)
    return b"".join([PNG_SIGNATURE, chunk(b"IHDR", header), *metadata, *(chunk(b"IDAT", piece) for piece in pieces),
                     chunk(b"IEND", b"")])


def _band(samples: np.ndarray, y0: int, y1: int, level: int, last: bool) -> tuple[bytes, int]:
    """Rows y0 to y1 filtered and deflated, and the Adler-32 of their filtered bytes."""
    bpp = samples.shape[2] * samples.dtype.itemsize
    primed = min(y0, -(-_WINDOW // (samples.shape[1] * bpp + 1)))  # rows before the band whose filtered bytes prime it
    filtered = _filtered(_row_bytes(samples, max(0, y0 - primed - 1), y1), y0 > primed, bpp)
    own = filtered[primed:].tobytes()
    options = {"zdict": filtered[:primed].tobytes()[-_WINDOW:]} if primed else {}
    deflate = zlib_ng.compressobj(level, zlib_ng.DEFLATED, -15, 9, zlib_ng.Z_DEFAULT_STRATEGY, **options)
    data = deflate.compress(own) + deflate.flush(zlib_ng.Z_FINISH if last else zlib_ng.Z_SYNC_FLUSH)
    return data, zlib_ng.adler32(own)


def _row_bytes(samples: np.ndarray, y0: int, y1: int) -> np.ndarray:
    """Rows y0 to y1 as PNG stores them, (rows, stride) bytes: 16-bit samples big-endian."""
    rows = samples[y0:y1]
    if rows.dtype.itemsize == 2:
        rows = rows.astype(">u2")
    return np.ascontiguousarray(rows).view(np.uint8).reshape(y1 - y0, -1)


def _filtered(rows: np.ndarray, first_is_prior: bool, bpp: int) -> np.ndarray:
    """Each row after the first of ``rows`` (all of them where ``first_is_prior`` is false,
    the row above the first being then the image's edge, zeros) with its filter type byte,
    by libpng's heuristic: the smallest sum of its bytes taken as signed."""
    if first_is_prior:
        above, rows = rows[:-1], rows[1:]
    else:
        above = np.vstack([np.zeros((1, rows.shape[1]), np.uint8), rows[:-1]])
    raw, up = rows.astype(np.int16), above.astype(np.int16)
    left, up_left = np.zeros_like(raw), np.zeros_like(up)
    left[:, bpp:], up_left[:, bpp:] = raw[:, :-bpp], up[:, :-bpp]
    across, down, diagonal = np.abs(up - up_left), np.abs(left - up_left), np.abs(left + up - 2 * up_left)
    paeth = np.where((across <= down) & (across <= diagonal), left, np.where(down <= diagonal, up, up_left))
    out = np.empty((raw.shape[0], raw.shape[1] + 1), np.uint8)
    best = np.full(raw.shape[0], np.iinfo(np.int64).max)
    for kind, predicted in enumerate((None, left, up, (left + up) >> 1, paeth)):
        candidate = (raw if predicted is None else raw - predicted).astype(np.uint8)
        cost = np.minimum(candidate, 256 - candidate.astype(np.int16)).sum(axis=1, dtype=np.int64)
        better = cost < best
        best[better] = cost[better]
        out[better, 0] = kind
        out[better, 1:] = candidate[better]
    return out


def _adler32_combine(first: int, second: int, second_length: int) -> int:
    """The Adler-32 of two byte runs joined, from each one's and the second's length (zlib's adler32_combine)."""
    rest = second_length % _ADLER_BASE
    low = ((first & 0xFFFF) + (second & 0xFFFF) + _ADLER_BASE - 1) % _ADLER_BASE
    high = (rest * (first & 0xFFFF) + (first >> 16) + (second >> 16) + _ADLER_BASE - rest) % _ADLER_BASE
    return low | high << 16
