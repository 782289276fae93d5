"""One image from bytes to enhanced bytes, with a record of what was done to it.

The models are loaded once per ``Enhancer`` and reused for every image of a batch.
"""
from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import SOFTWARE, codecs
from .chain.superres import Inference, Tiling, tiles, upscale, upscale_alpha
from .models.manifest import get_entry
from .models.weights import load_model

DEFAULT_MODELS: dict[int, tuple[str, ...]] = {
    2: ("span-x2",),
    4: ("realesrgan-x4plus",),
    8: ("realesrgan-x4plus", "span-x2"),
}


def resolve_models(scale: int, names: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The models for ``scale``: the defaults, or the named ones whose scales multiply to it."""
    if not names:
        if scale not in DEFAULT_MODELS:
            raise ValueError(f"scale must be one of {sorted(DEFAULT_MODELS)}, not {scale}")
        return DEFAULT_MODELS[scale]
    product = 1
    for name in names:
        entry = get_entry(name)
        if entry.task != "super-resolution":
            raise ValueError(f"{name} is a {entry.task} model, not a super-resolution model")
        product *= entry.scale
    if product != scale:
        raise ValueError(f"models {', '.join(names)} upscale x{product}, but x{scale} was asked for")
    return names


@dataclass(frozen=True)
class EnhanceOptions:
    scale: int = 4
    models: tuple[str, ...] = ()
    tiling: Tiling = Tiling()
    inference: Inference = Inference()
    max_pixels: int = codecs.DEFAULT_MAX_PIXELS
    output_format: str | None = None
    quality: int = 95


@dataclass
class EnhanceResult:
    data: bytes
    format: str
    record: dict[str, Any] = field(default_factory=dict)


class Enhancer:
    def __init__(self, options: EnhanceOptions) -> None:
        self.options = options
        self.model_names = resolve_models(options.scale, options.models)
        self.models = [
            (options.inference.prepare(load_model(n)), get_entry(n).scale) for n in self.model_names
        ]

    def tile_count(self, width: int, height: int) -> int:
        count = 0
        for _, scale in self.models:
            count += sum(1 for _ in tiles(height, width, self.options.tiling))
            width, height = width * scale, height * scale
        return count

    def enhance(self, data: bytes, on_tile: Callable[[], None] | None = None) -> EnhanceResult:
        opts = self.options
        timings: dict[str, float] = {}
        start = time.perf_counter()
        image = codecs.decode(data, max_pixels=opts.max_pixels)
        timings["decode_s"] = time.perf_counter() - start

        start = time.perf_counter()
        pixels, alpha = image.pixels, image.alpha
        for model, scale in self.models:
            pixels = upscale(pixels, model, scale, tiling=opts.tiling, inference=opts.inference, on_tile=on_tile)
            alpha = None if alpha is None else upscale_alpha(alpha, scale)
        timings["superres_s"] = time.perf_counter() - start

        start = time.perf_counter()
        fmt = opts.output_format or image.output_format
        description = (
            f"Enhanced derivative, not the archival master: x{opts.scale} super-resolution "
            f"({' then '.join(self.model_names)})"
        )
        out = codecs.encode(
            pixels,
            alpha,
            fmt=fmt,
            bit_depth=image.bit_depth,
            meta=image.metadata,
            scale=opts.scale,
            provenance=codecs.Provenance(SOFTWARE, description),
            quality=opts.quality,
        )
        timings["encode_s"] = time.perf_counter() - start
        record = {
            "input_sha256": hashlib.sha256(data).hexdigest(),
            "input_format": image.format,
            "input_size": image.size,
            "bit_depth": image.bit_depth,
            "channels": image.pixels.shape[2] + (image.alpha is not None),
            "output_format": fmt,
            "output_size": (pixels.shape[1], pixels.shape[0]),
            "models": list(self.model_names),
            "weights_sha256": [get_entry(n).sha256 for n in self.model_names],
            "device": opts.inference.device,
            "precision": opts.inference.precision,
            "notes": image.notes,
            **timings,
        }
        return EnhanceResult(out, fmt, record)
