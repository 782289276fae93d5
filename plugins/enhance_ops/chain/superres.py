"""Super-resolution over tiles, blended so that no seam shows.

Only one tile (plus its context margin) is on the device at a time, so device memory is
bounded by the tile size, not the image size. Each tile is run with ``pad`` pixels of real
context around it; neighbouring tiles overlap by ``overlap`` pixels and are cross-faded
with linear ramps, which removes the small differences left at tile borders. Both come per
model from the manifest: a light model's 12 px of context already make its tiles agree with
the whole image to 70-92 dB, so it needs no cross-fade; RRDBNet's reach 56-64 dB at 32 px
with 16 px of cross-fade and 55-59 dB without (bf16-fp32), so it keeps it.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ContextManager

import cv2
import numpy as np
import torch
from torch import nn

from ..models import float_ends, onednn
from ..models.manifest import ModelEntry
from . import strips
from .colour_math import LUMA, above_shadows, luma, pixel_products
from .presets import PRECISIONS


def cpu_has_native_bf16() -> bool:
    """bf16 autocast only pays on CPUs with bf16 instructions; elsewhere it is several times slower."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def best_precision(device: str) -> str:
    """What measurably helps (bench/cpu_inference.py): fp16 on CUDA, bf16 on CPUs with native bf16, else fp32."""
    if torch.device(device).type == "cuda":
        return "fp16"
    return "bf16" if cpu_has_native_bf16() else "fp32"


@dataclass(frozen=True)
class Inference:
    """Where and how networks run. ``precision``: auto, fp32, bf16 (CPU or CUDA) or fp16 (CUDA).

    On CPU a prepared model runs in bf16 itself (weights cast once, not by autocast on every
    call) but for the convolutions that read the image and write the output, which stay fp32
    (models/float_ends.py), and, with ``prepack``, its convolutions keep oneDNN-ordered
    weights and apply the activation that follows them (models/onednn.py). Unprepared models
    still run, under autocast.
    """

    device: str = "cpu"
    precision: str = "fp32"
    channels_last: bool = True
    prepack: bool = True
    fuse_activations: bool = True  # with prepack: each activation done inside the convolution before it
    layout_per_shape: bool = False  # with prepack: weights reordered for each input shape (onednn.PackedConv2d)

    def __post_init__(self) -> None:
        try:
            kind = torch.device(self.device).type
        except RuntimeError:
            raise ValueError(f"device {self.device!r}: cpu, cuda or cuda:N") from None
        if kind == "cuda" and not torch.cuda.is_available():  # torch's own error is an assertion, deep in a shard
            built = "" if torch.backends.cuda.is_built() else ", a build without CUDA"
            raise ValueError(f"device {self.device}: no CUDA device is available here (torch {torch.__version__}{built})")
        if self.precision == "auto":
            object.__setattr__(self, "precision", best_precision(self.device))
        if self.precision not in PRECISIONS[1:]:
            raise ValueError(f"precision must be auto, fp32, bf16 or fp16, not {self.precision!r}")

    def autocast(self) -> ContextManager[object]:
        if self.precision == "fp32":
            return nullcontext()
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[self.precision]
        return torch.autocast(device_type=torch.device(self.device).type, dtype=dtype)

    def prepare(self, model: nn.Module) -> nn.Module:
        model = model.to(self.device)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        if torch.device(self.device).type == "cpu":
            if self.precision == "bf16":
                model = float_ends.bf16_inside(model)
            if self.prepack and onednn.available():
                model = onednn.pack_convolutions(model, per_shape=self.layout_per_shape)
                if self.fuse_activations:
                    model = onednn.fuse_activations(model)
        return model


def _dtype_of(model: nn.Module) -> torch.dtype:
    return next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)


# for a Tiling used without a model's entry: the manifest's defaults, what the costliest
# model (RRDBNet) needs: 32 px of context (tiled = untiled to ~55 dB) and 16 px cross-faded
SAFE_CONTEXT = ModelEntry.tile_context
SAFE_OVERLAP = ModelEntry.tile_overlap


# Tile side per device, where none is given. CPU: 256 px, the fastest measured with oneDNN
# (docs/benchmarks.md). CUDA: 1024 px; on an H200 the chain's upscale_rgb for a 960 x 540
# photo took 0.56 s at 256 px and 0.34 s at 1024 (RRDBNet x4; SPAN x2 0.075 → 0.029 s), its
# device memory 0.9 → 4.3 GiB, its agreement with the untiled fp32 output 61 → 69 dB.
DEVICE_TILES = {"cpu": 256, "cuda": 1024}
# The device's tiles along an axis grow by up to this share of their side where that takes
# one tile fewer: at 512 px in 256-px tiles (16 px cross-faded) the third held 32 px and its
# context; two of 264 px took RRDBNet x4 16 % less time. Only as much as saves that one tile,
# as a larger tile costs more per pixel: RRDBNet's on the CPU 3 % more a kept pixel at 288 px
# than at 256, with the context around each (docs/benchmarks.md, *Tiles stretched*). A tile
# side given explicitly (``--tile``) is not stretched: it is what bounds a worker's memory.
STRETCH = 1 / 8


@dataclass(frozen=True)
class Tiling:
    """``tile`` None: the device's own (``DEVICE_TILES``, see ``on``), stretched by up to
    ``STRETCH`` where that saves a tile; a ``tile`` given is the longest a tile gets. A
    ``stretch`` given holds either way. ``pad`` or ``overlap`` None: each model's own
    ``tile_context`` or ``tile_overlap`` from the manifest (see ``for_model``)."""

    tile: int | None = None
    pad: int | None = None
    overlap: int | None = None
    stretch: float | None = None  # the share of ``tile`` a tile may grow by to save one along an axis

    def __post_init__(self) -> None:
        too_small = self.tile is not None and (self.tile < 16 or self.cross_fade >= self.tile)
        negative = any(v is not None and v < 0 for v in (self.pad, self.overlap, self.stretch))
        if too_small or negative:
            raise ValueError(f"invalid tiling {self}: need tile >= 16, pad >= 0, 0 <= overlap < tile and stretch >= 0")

    def on(self, device: str) -> Tiling:
        """This tiling with the device's tile side, and its stretch unless one was given, where no side was set."""
        if self.tile is not None:
            return self
        return replace(self, tile=DEVICE_TILES[torch.device(device).type],
                       stretch=STRETCH if self.stretch is None else self.stretch)

    def for_model(self, entry: ModelEntry) -> Tiling:
        """This tiling with the model's context and overlap where none was set explicitly."""
        return replace(
            self,
            pad=entry.tile_context if self.pad is None else self.pad,
            overlap=entry.tile_overlap if self.overlap is None else self.overlap,
        )

    @property
    def context(self) -> int:
        return SAFE_CONTEXT if self.pad is None else self.pad

    @property
    def cross_fade(self) -> int:
        return SAFE_OVERLAP if self.overlap is None else self.overlap

    def side(self, length: int) -> int:
        """The tiles' side along an axis of ``length`` pixels: ``tile``, or up to ``stretch``
        of it more where that saves a tile, just enough to do so."""
        if self.tile is None:
            raise ValueError("a tiling without a tile side has none to stretch: give it the device's first (Tiling.on)")
        fade = self.cross_fade
        count = math.ceil((length - fade) / (self.tile - fade))
        if count < 2:
            return self.tile
        one_fewer = math.ceil((length + (count - 2) * fade) / (count - 1))
        return one_fewer if one_fewer <= self.tile + int(self.tile * (self.stretch or 0.0)) else self.tile

    def pitch(self, length: int) -> int:
        """Input pixels from one tile's start to the next's along an axis of ``length`` pixels."""
        return self.side(length) - self.cross_fade


def image_tensor(
    rgb: np.ndarray, dtype: torch.dtype, *, device: str = "cpu", channels_last: bool = True
) -> torch.Tensor:
    """An (h, w, c) array as a (1, c, h, w) tensor. Seen that way, an image's memory is
    already channels_last: at most one copy, with the cast, and none for a float32 image
    that stays on the CPU in that layout."""
    if any(s < 0 for s in rgb.strides):  # flipped views, which torch cannot wrap
        rgb = np.ascontiguousarray(rgb)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    x = torch.from_numpy(rgb).unsqueeze(0).permute(0, 3, 1, 2)  # unsqueeze: a real batch stride, kept by torch.cat
    if x.dtype == dtype and x.device == torch.device(device) and x.is_contiguous(memory_format=layout):
        return x
    # not ``x.to(..., memory_format=layout)``, which ignores the layout when dtype and device match
    return torch.empty(x.shape, dtype=dtype, device=device, memory_format=layout).copy_(x)


_WHOLE = (slice(None), slice(None))


def run_network(
    model: nn.Module, rgb: np.ndarray, inference: Inference, *, keep: tuple[slice, slice] = _WHOLE
) -> np.ndarray:
    """One (h, w, 3) float32 patch through ``model``; returns (h*s, w*s, 3) float32, or its
    ``keep`` rows and columns: a tile's context is cut off on the device, before the cast to
    float32 and the copy to the host, which then handle only the pixels that are kept."""
    mixed = float_ends.takes_float32(model)  # bf16 inside, fp32 ends: float32 in, and its own precisions
    dtype = torch.float32 if mixed else _dtype_of(model)
    x = image_tensor(rgb, dtype, device=inference.device, channels_last=inference.channels_last)
    with torch.inference_mode(), inference.autocast() if dtype == torch.float32 and not mixed else nullcontext():
        y = model(x)
    return y[0, :, keep[0], keep[1]].float().permute(1, 2, 0).cpu().numpy()


def _spans(length: int, tiling: Tiling) -> list[tuple[int, int]]:
    """Tiles on a regular pitch (``tiling.pitch``) from 0; the last one ends at the image's
    edge and may be shorter. Pulling a full-length last tile back inside the image instead
    would make it overlap its neighbour almost wholly: at 600 px in 256-px tiles that is a
    third 256-px tile where a 120-px one suffices, and with the context around each tile
    the network then computes more pixels for nothing."""
    stop = max(1, length - tiling.cross_fade)  # a tile starting later would hold only its neighbour's pixels
    side = tiling.side(length)
    return [(start, min(start + side, length)) for start in range(0, stop, side - tiling.cross_fade)]


def with_context(start: int, end: int, length: int, context: int) -> tuple[int, int]:
    """A tile's span widened by ``context`` pixels each side, within the image: what the network sees."""
    return max(0, start - context), min(length, end + context)


def _ramp(length: int, fade_start: int, fade_end: int) -> np.ndarray:
    """Weights 1 inside, fading linearly to ~0 over ``fade_start``/``fade_end`` pixels at the ends."""
    w = np.ones(length, dtype=np.float32)
    if fade_start:
        w[:fade_start] = (np.arange(fade_start, dtype=np.float32) + 0.5) / fade_start
    if fade_end:
        w[length - fade_end :] = np.minimum(
            w[length - fade_end :], ((np.arange(fade_end, dtype=np.float32) + 0.5) / fade_end)[::-1]
        )
    return w


def tiles(height: int, width: int, tiling: Tiling) -> Iterator[tuple[int, int, int, int]]:
    for y0, y1 in _spans(height, tiling):
        for x0, x1 in _spans(width, tiling):
            yield y0, y1, x0, x1


def _weight_profile(spans: list[tuple[int, int]], scale: int, fade: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Each span's blending ramp along one axis (in output pixels), and their sum."""
    length = spans[-1][1] * scale
    ramps, total = [], np.zeros(length, np.float32)
    for i, (a, b) in enumerate(spans):
        ramp = _ramp((b - a) * scale, fade if i > 0 else 0, fade if i < len(spans) - 1 else 0)
        ramps.append(ramp)
        total[a * scale : b * scale] += ramp
    return ramps, total


def _interiors(spans: list[tuple[int, int]], scale: int, fade: int) -> list[tuple[int, int]]:
    """Each span's (start, end) in output pixels that no neighbour's cross-fade reaches: its
    ramp is 1 there and so is the sum of ramps. A neighbour's fade ends where this span's
    begins, whenever a tile is at least two fades long; a shorter one has no interior."""
    last = len(spans) - 1
    inner = []
    for i, (a, b) in enumerate(spans):
        start, end = a * scale + (fade if i > 0 else 0), b * scale - (fade if i < last else 0)
        inner.append((start, max(start, end)))
    return inner


def _gaps(inner: list[tuple[int, int]], length: int) -> list[tuple[int, int]]:
    """The stretches of [0, ``length``) outside every one of ``inner`` (in order, disjoint)."""
    gaps, at = [], 0
    for start, end in inner:
        if start > at:
            gaps.append((at, start))
        at = max(at, end)
    return gaps + [(at, length)] if at < length else gaps


def _frame(height: int, width: int, rows: slice, cols: slice) -> list[tuple[slice, slice]]:
    """A (height, width) tile less its ``rows`` × ``cols`` interior, as up to four rectangles."""
    (r0, r1), (c0, c1) = (rows.start, rows.stop), (cols.start, cols.stop)
    pieces = [(0, r0, 0, width), (r1, height, 0, width), (r0, r1, 0, c0), (r0, r1, c1, width)]
    return [(slice(a, b), slice(c, d)) for a, b, c, d in pieces if a < b and c < d]


def upscale_rgb(
    rgb: np.ndarray,
    model: nn.Module,
    scale: int,
    *,
    tiling: Tiling = Tiling(),
    inference: Inference = Inference(),
    on_tile: Callable[[], None] | None = None,
    grey: bool = False,
    unrun: np.ndarray | None = None,
) -> np.ndarray:
    """(H, W, 3) → (H*scale, W*scale, 3), tile by tile; with ``grey``, (H*scale, W*scale, 1).
    At scale 1, a tile wholly within ``unrun`` (boolean, (H, W)) is passed through as it is,
    not run: the caller keeps those pixels of its own.

    The output is the only array at output size. Where one tile alone covers the output
    (the interior away from its cross-fades; the whole image when it is one tile) its
    pixels are written as they are, clipped. Only the bands that neighbours share are
    summed with their weights and normalised: a weight is the product of a row and a column
    ramp, so the sum of weights is an outer product of two 1-D profiles, divided out band
    by band instead of being stored per pixel.
    """
    height, width = rgb.shape[:2]
    if unrun is not None and scale != 1:
        raise ValueError("only a network that keeps the image's size can pass tiles through")
    tiling = tiling.on(inference.device)
    out = np.zeros((height * scale, width * scale, 1 if grey else 3), dtype=np.float32)
    y_spans, x_spans = _spans(height, tiling), _spans(width, tiling)
    fade = tiling.cross_fade * scale
    (y_ramps, y_total), (x_ramps, x_total) = _weight_profile(y_spans, scale, fade), _weight_profile(x_spans, scale, fade)
    y_inner, x_inner = _interiors(y_spans, scale, fade), _interiors(x_spans, scale, fade)
    for (y0, y1), wy, (iy0, iy1) in zip(y_spans, y_ramps, y_inner):
        for (x0, x1), wx, (ix0, ix1) in zip(x_spans, x_ramps, x_inner):
            cy0, cy1 = with_context(y0, y1, height, tiling.context)
            cx0, cx1 = with_context(x0, x1, width, tiling.context)
            keep = slice((y0 - cy0) * scale, (y1 - cy0) * scale), slice((x0 - cx0) * scale, (x1 - cx0) * scale)
            if unrun is not None and unrun[y0:y1, x0:x1].all():
                core = rgb[y0:y1, x0:x1]  # read only: the output is written from it
            else:
                core = run_network(model, rgb[cy0:cy1, cx0:cx1], inference, keep=keep)
            if grey:
                core = core.mean(axis=2, keepdims=True)
            top, left = y0 * scale, x0 * scale
            region = out[top : y1 * scale, left : x1 * scale]
            rows, cols = slice(iy0 - top, iy1 - top), slice(ix0 - left, ix1 - left)
            np.clip(core[rows, cols], 0.0, 1.0, out=region[rows, cols])
            for r, c in _frame(*region.shape[:2], rows, cols):
                region[r, c] += core[r, c] * (wy[r, None] * wx[None, c])[:, :, None]
            if on_tile:
                on_tile()
    # shared: whole rows between the interiors, and in the interiors' rows the columns between them
    shared = [(r0, r1, 0, out.shape[1]) for r0, r1 in _gaps(y_inner, out.shape[0])]
    shared += [(r0, r1, c0, c1) for r0, r1 in y_inner if r0 < r1 for c0, c1 in _gaps(x_inner, out.shape[1])]

    def normalise(r0: int, r1: int, c0: int, c1: int) -> None:
        band = out[r0:r1, c0:c1]
        band *= (1.0 / x_total[c0:c1])[None, :, None] / y_total[r0:r1, None, None]
        np.clip(band, 0.0, 1.0, out=band)

    pieces = [(r0 + b0, r0 + b1, c0, c1) for r0, r1, c0, c1 in shared for b0, b1 in strips.bands(r1 - r0, c1 - c0)]
    strips.in_lanes([functools.partial(normalise, *piece) for piece in pieces])
    return out


def upscale_alpha(alpha: np.ndarray, height: int, width: int) -> np.ndarray:
    """Transparency is a mask, not texture: bicubic keeps its edges without invented detail."""
    return strips.clipped(cv2.resize(alpha, (width, height), interpolation=cv2.INTER_CUBIC))


def upscale(
    pixels: np.ndarray,
    model: nn.Module,
    scale: int,
    *,
    tiling: Tiling = Tiling(),
    inference: Inference = Inference(),
    on_tile: Callable[[], None] | None = None,
    unrun: np.ndarray | None = None,
) -> np.ndarray:
    """Grey (H, W, 1) or colour (H, W, 3); grey runs as three equal channels and comes back grey."""
    grey = pixels.shape[2] == 1
    rgb = np.repeat(pixels, 3, axis=2) if grey else pixels
    return upscale_rgb(rgb, model, scale, tiling=tiling, inference=inference, on_tile=on_tile, grey=grey,
                       unrun=unrun)


_CHROMA = (np.eye(3) - np.ones((3, 1)) * LUMA[None, :]).astype(np.float32)  # rgb - luma


def keep_input_colour(
    output: np.ndarray, source: np.ndarray, *, sigma_in_px: float = 2.0, out: np.ndarray | None = None
) -> np.ndarray:
    """Colour-consistency guard: give the output the low-frequency chroma of its input, and
    in the shadows its low-frequency lightness.

    GAN upscalers shift colours and tint grey scans, and Real-ESRGAN crushes a dark, even
    area towards black: a flat 10/255 came out at 2.4, and a scanner's black felt at 5/255
    at 0.9 to 1.7, which SSIM (relative in the dark) read as structure lost, holding a
    print scanned on it for review. Detail (high-frequency chroma and lightness, and the
    lightness of mid-tones and highlights) stays as the network made it; below
    ``sigma_in_px`` input pixels, chroma is the input's, and so is lightness where the
    input is dark (``SHADOWS``, fading out between its two values). The error is
    low-frequency by definition, so it is measured and low-passed at the input's resolution
    (the output's block means against the input; scale² fewer pixels to blur than at the
    output's) and only the smooth correction is enlarged, bicubically. Done in row strips on
    whole blocks (``out=output`` works in place).
    """
    scale = strips.integer_scale(source.shape, output.shape)
    if scale is None:
        raise ValueError(f"output {output.shape[:2]} is not a whole-number enlargement of {source.shape[:2]}")
    width, channels = source.shape[1], output.shape[2]
    # OpenCV's float Gaussian kernel reaches 4 sigma; bicubic reads two rows either side
    margin = (int(np.ceil(4 * sigma_in_px)) + 3) * scale

    def guard(window: np.ndarray, top: int) -> np.ndarray:
        rows = window.shape[0] // scale
        below = source[top // scale : top // scale + rows]
        means = cv2.resize(window, (width, rows), interpolation=cv2.INTER_AREA).reshape(rows, width, channels)
        means -= below
        # chroma, luma and blur are linear: the low-passed chroma and luma of the difference are the correction
        lightness = cv2.GaussianBlur(luma(means), (0, 0), sigma_in_px)
        lightness *= 1.0 - above_shadows(cv2.GaussianBlur(luma(below), (0, 0), sigma_in_px))
        error = lightness[..., None]
        if channels == 3:
            error = cv2.GaussianBlur(pixel_products(means, _CHROMA), (0, 0), sigma_in_px) + error
        corrected = cv2.resize(error, (window.shape[1], window.shape[0]), interpolation=cv2.INTER_CUBIC)
        corrected = corrected.reshape(window.shape)
        np.subtract(window, corrected, out=corrected)  # into the enlarged correction: no second strip-sized array
        return np.clip(corrected, 0.0, 1.0, out=corrected)

    return strips.map_rows(output, guard, margin=margin, out=out, align=scale)
