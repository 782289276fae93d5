"""Run a preset's stages over one image and record what each did.

The record of a stage holds the settings it used, its decision in words ("impulse noise
detected: …", "skipped: no cast"), what it measured, and its time, so the ledger can show
every step taken on an archive image.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from ..models.manifest import get_entry
from ..models.weights import load_model
from ..quality import measures
from . import color, denoise, postprocess, preprocess, superres
from .presets import resolve_preset

SR_DEFAULTS: dict[int, tuple[str, ...]] = {
    2: ("span-x2",),
    4: ("realesrgan-x4plus",),
    8: ("realesrgan-x4plus", "span-x2"),
}


def resolve_models(scale: int, names: tuple[str, ...] | list[str] = ()) -> tuple[str, ...]:
    """The SR models for ``scale``: the defaults, or the named ones whose scales multiply to it."""
    if not names:
        if scale not in SR_DEFAULTS:
            raise ValueError(f"scale must be one of {sorted(SR_DEFAULTS)}, not {scale}")
        return SR_DEFAULTS[scale]
    product = 1
    for name in names:
        entry = get_entry(name)
        if entry.task != "super-resolution":
            raise ValueError(f"{name} is a {entry.task} model, not a super-resolution model")
        product *= entry.scale
    if product != scale:
        raise ValueError(f"models {', '.join(names)} upscale x{product}, but x{scale} was asked for")
    return tuple(names)


@dataclass
class StageRecord:
    stage: str
    decision: str
    seconds: float
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class ChainResult:
    pixels: np.ndarray
    alpha: np.ndarray | None
    icc_profile: bytes | None
    scale: float
    analysis: preprocess.DynamicRange
    stages: list[StageRecord]
    metrics: dict[str, float] = field(default_factory=dict)


def _blend(before: np.ndarray, after: np.ndarray, amount: float) -> np.ndarray:
    if amount >= 1.0:
        return after
    return (before + amount * (after - before)).astype(np.float32)


def is_neutral(pixels: np.ndarray, tolerance: float = 1.5 / 255) -> bool:
    """An RGB scan of a black-and-white original: its three channels agree everywhere."""
    return pixels.shape[2] == 3 and float(np.max(pixels.max(axis=2) - pixels.min(axis=2))) <= tolerance


class Chain:
    """A resolved preset plus its loaded models, reused for every image of a run."""

    def __init__(
        self,
        preset: str = "archive-photo",
        overrides: tuple[str, ...] = (),
        *,
        tiling: superres.Tiling = superres.Tiling(),
        inference: superres.Inference | None = None,
    ) -> None:
        self.preset_name = preset
        self.settings = resolve_preset(preset, overrides)
        sr = self.settings["superres"]
        self.scale = int(sr["scale"])
        self.model_names = resolve_models(self.scale, sr["models"])
        self.inference = inference or superres.Inference(precision=self.settings["inference"]["precision"])
        self.tiling = tiling
        self.sr_models = [(self.inference.prepare(load_model(n)), get_entry(n).scale) for n in self.model_names]
        needs_ffdnet = self.settings["denoise"]["strength"] != "off"
        self.ffdnet = self.inference.prepare(load_model("ffdnet-color")) if needs_ffdnet else None

    @property
    def weights(self) -> dict[str, str]:
        names = list(self.model_names) + (["ffdnet-color"] if self.ffdnet is not None else [])
        return {n: get_entry(n).sha256 for n in names}

    def tile_count(self, width: int, height: int) -> int:
        count = 0
        for _, scale in self.sr_models:
            count += sum(1 for _ in superres.tiles(height, width, self.tiling))
            width, height = width * scale, height * scale
        return count

    def run(
        self,
        pixels: np.ndarray,
        alpha: np.ndarray | None = None,
        *,
        bit_depth: int = 8,
        icc_profile: bytes | None = None,
        lens: preprocess.LensInfo | None = None,
        on_tile: Callable[[], None] | None = None,
    ) -> ChainResult:
        s = self.settings
        records: list[StageRecord] = []

        def step(name: str, blend: float, fn: Callable[[np.ndarray], tuple[np.ndarray, dict[str, Any]]]) -> None:
            nonlocal image
            start = time.perf_counter()
            result, details = fn(image)
            if blend < 1.0 and result.shape == image.shape and not details.get("decision", "").startswith("skipped"):
                result = _blend(image, result, blend)
                details = {**details, "blend": blend}
            image = result
            decision = str(details.pop("decision", "done"))
            records.append(StageRecord(name, decision, time.perf_counter() - start, details))

        neutral = is_neutral(pixels)
        image = pixels[..., :1].copy() if neutral else pixels
        if neutral:
            records.append(StageRecord("input", "neutral RGB scan processed as grey (no tint can appear)", 0.0))
        start = time.perf_counter()
        analysis = preprocess.analyse_dynamic_range(image, bit_depth)
        records.append(StageRecord("dynamic_range", "analysed", time.perf_counter() - start, analysis.as_record()))

        if s["exposure"]["enabled"]:
            step("exposure", s["exposure"]["blend"], lambda im: preprocess.compensate_exposure(im, analysis))
        if s["colour_cast"]["enabled"]:
            step("colour_cast", s["colour_cast"]["blend"], preprocess.correct_colour_cast)
        if s["lens"]["enabled"]:
            coefficients = {"k1": s["lens"]["k1"], "k2": s["lens"]["k2"]}
            step("lens", s["lens"]["blend"], lambda im: preprocess.correct_lens_distortion(im, lens, coefficients))
        dn = s["denoise"]
        step(
            "denoise",
            dn["blend"],
            lambda im: denoise.denoise(
                im, self.ffdnet, strength=dn["strength"], sigma_override=dn["sigma"], inference=self.inference
            ),
        )
        noise_left = denoise.estimate_sigma(image)

        before_sr = image
        step("superres", 1.0, lambda im: self._superres(im, on_tile, bit_depth))
        metrics = records[-1].details.pop("metrics")
        effective_scale = image.shape[0] / pixels.shape[0]
        if s["superres"]["blend"] < 1.0:
            h, w = image.shape[:2]
            base = cv2.resize(before_sr, (w, h), interpolation=cv2.INTER_CUBIC).reshape(image.shape)
            image = _blend(np.clip(base, 0, 1), image, s["superres"]["blend"])
            records[-1].details["blend"] = s["superres"]["blend"]
        if alpha is not None:
            h, w = image.shape[:2]
            alpha = np.clip(cv2.resize(alpha, (w, h), interpolation=cv2.INTER_CUBIC), 0.0, 1.0)

        step("colour_restore", s["colour_restore"]["blend"],
             lambda im: color.restore_faded_colour(im, reference=before_sr, mode=s["colour_restore"]["mode"]))
        step("sharpen", s["sharpen"]["blend"],
             lambda im: postprocess.adaptive_sharpen(im, amount=s["sharpen"]["amount"], noise_sigma=noise_left))
        step("local_contrast", s["local_contrast"]["blend"],
             lambda im: postprocess.local_contrast(im, clip_limit=s["local_contrast"]["clip_limit"]))
        if neutral:
            image = np.repeat(image, 3, axis=2)
        start = time.perf_counter()
        image, profile, details = postprocess.convert_colour_space(image, icc_profile, s["colour_space"]["target"])
        records.append(StageRecord("colour_space", str(details.pop("decision")), time.perf_counter() - start, details))
        metrics.update(measures.descriptive(pixels, image))
        metrics["composite_score"] = measures.composite(metrics)
        return ChainResult(image, alpha, profile, effective_scale, analysis, records, metrics)

    def _superres(
        self, image: np.ndarray, on_tile: Callable[[], None] | None, bit_depth: int
    ) -> tuple[np.ndarray, dict[str, Any]]:
        sr = self.settings["superres"]
        details: dict[str, Any] = {"models": list(self.model_names), "scale": self.scale}
        source = image
        height, width = image.shape[:2]
        cap = int(sr["max_output_long_side"])
        if max(height, width) * self.scale > cap:
            factor = cap / (max(height, width) * self.scale)
            size = (max(1, int(width * factor)), max(1, int(height * factor)))
            source = cv2.resize(image, size, interpolation=cv2.INTER_AREA).reshape(size[1], size[0], image.shape[2])
            details["reduced_input_to"] = list(size)
        out = source
        for model, scale in self.sr_models:
            out = superres.upscale(out, model, scale, tiling=self.tiling, inference=self.inference, on_tile=on_tile)
        if sr["colour_guard"]:
            out = superres.keep_input_colour(out, source)
            details["colour_guard"] = True
        stride = (self.tiling.tile - self.tiling.overlap) * self.sr_models[0][1]  # the first model's tile grid
        details["metrics"] = measures.sr_integrity(source, out, tile_stride=stride, bit_depth=bit_depth)
        decision = f"x{self.scale} with {' then '.join(self.model_names)}"
        if "reduced_input_to" in details:
            decision += f" (input first reduced to {details['reduced_input_to']} to keep the long side <= {cap})"
        return out, {**details, "decision": decision}
