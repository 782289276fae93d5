"""Run a preset's stages over one image and record what each did.

The record of a stage holds the settings it used, its decision in words ("impulse noise
detected: …", "skipped: no cast"), what it measured, and its time, so the ledger can show
every step taken on an archive image.
"""
from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from torch import nn

from .. import allocator, threads
from ..models.manifest import get_entry
from ..models.weights import load_model
from ..quality import measures
from ..quality.metrics import lpips_precision
from . import (
    color,
    denoise,
    dither,
    findings,
    hidden_colour,
    pixel_aspect,
    postprocess,
    preprocess,
    scan_border,
    screen,
    strips,
    superres,
    text_page,
)
from .colour_math import pixel_products
from .presets import BITONAL_DEFAULTS, resolve_models, resolve_preset

Stage = Callable[[np.ndarray, "np.ndarray | None"], tuple[np.ndarray, dict[str, Any]]]  # (image, out)


@dataclass
class Master:
    """The image a chain run starts from, handed over: the run takes the pixels out (leaving
    None) and drops them as soon as it has no more use for them, so a caller that keeps no
    other reference gets that memory back while the output-size image is being made."""

    pixels: np.ndarray | None
    alpha: np.ndarray | None = None
    bit_depth: int = 8
    icc_profile: bytes | None = None
    lens: preprocess.LensInfo | None = None
    max_long_side: int | None = None  # what the derivative's format holds (WebP: 16,383 px)
    dpi: tuple[float, float] | None = None  # (x, y), as the master's tags say
    aspect: tuple[float, float] | None = None  # (x, y) densities given without a unit, where no dpi is

    def densities(self) -> tuple[tuple[float, float] | None, str, str]:
        """The pixel densities that say how square the pixels are, the ledger's key for them,
        and how a record says them."""
        if self.dpi or not self.aspect:
            said = f"{self.dpi[0]:g} x {self.dpi[1]:g} dpi" if self.dpi else ""
            return self.dpi, "master_dpi", said
        return self.aspect, "master_aspect", f"{self.aspect[0]:g} x {self.aspect[1]:g}, a pixel aspect without a unit"


@dataclass(frozen=True)
class TileProgress:
    """A progress display's view of the networks' work: ``planned`` with an image's (or a
    page's) tile count once its route and size are known, since a black-and-white page goes
    to other models and an image over the output cap is reduced first; then ``done`` after
    each tile. ``stage_done`` after each stage of the chain, with its name: on a large image a
    stage outside the networks runs for minutes, which a watchdog must not take for a hang."""

    planned: Callable[[int], None]
    done: Callable[[], None]
    stage_done: Callable[[str], None] = lambda _name: None


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
    models: tuple[str, ...]  # the SR models this image went through
    metrics: dict[str, float] = field(default_factory=dict)
    stretch: pixel_aspect.Stretch = pixel_aspect.SQUARE  # beyond ``scale``, to square pixels
    lpips_precision: str | None = None  # what consistency_lpips was computed in; None where not measured
    notes: list[str] = field(default_factory=list)  # what an archivist should know of what the chain did
    read_as: list[str] = field(default_factory=list)  # the kinds of ``findings.findings``: faded, monochrome, …


def _dots(image: np.ndarray) -> dither.Dither | None:
    """Where the image is dithered or screened: at one bit (or nearly), by its dots; in grey or
    colour tones, by a printed screen's grid in its spectrum."""
    return dither.find(image) or screen.find(image)


def _measured_on(the_print: scan_border.ThePrint | None) -> str:
    if the_print is None:
        return "analysed"
    return (f"analysed on the print: the scanner's background around it and the print's edge, a blend of the two "
            f"({1 - the_print.share:.0%} of the scan), left out of what exposure, colour cast and fading are judged "
            "by; the background keeps its pixels through them")


def _gamut_note(conversion: dict[str, Any]) -> str:
    return (f"{conversion['out_of_gamut']:.2%} of the pixels lay outside {conversion['target']}'s gamut and were "
            f"clipped to its edge: the master's {conversion['source']} holds more saturated colours "
            "(colour_space.target null keeps the master's own space)")


def _blend_into(
    after: np.ndarray, before: Callable[[int, int], np.ndarray], amount: float | Callable[[int, int], np.ndarray]
) -> np.ndarray:
    """``after`` moved back towards ``before`` (given as rows r0:r1), keeping ``amount`` of the
    change (a share, or one a pixel for rows r0:r1); in place, by strips."""
    def blend(r0: int, r1: int) -> None:
        band, base = after[r0:r1], before(r0, r1)
        band -= base
        band *= amount(r0, r1) if callable(amount) else amount
        band += base

    strips.map_bands(*after.shape[:2], blend)
    return after


GAMUT_NOTE = 0.001  # the share of pixels clipped to the target's gamut that the ledger's notes tell of
_CHANNEL_DIFFERENCES = np.array([[1, -1, 0], [0, 1, -1], [1, 0, -1]], np.float32)


def _channel_spread(pixels: np.ndarray) -> float:
    """The largest difference between two channels of one pixel (max - min over channels):
    the pairwise differences, their peak by ``cv2.norm``, 40x faster than numpy's
    reductions over an axis of three."""
    return float(cv2.norm(pixel_products(pixels, _CHANNEL_DIFFERENCES), cv2.NORM_INF)) if pixels.size else 0.0


def is_neutral(pixels: np.ndarray, tolerance: float = 1.5 / 255) -> bool:
    """An RGB scan of a black-and-white original: its three channels agree everywhere.

    A colour scan almost always gives itself away in a sparse sample, which is checked
    first; only a scan that passes it is checked whole, by strips."""
    if pixels.shape[2] != 3 or _channel_spread(pixels[::16, ::16]) > tolerance:
        return False
    return all(_channel_spread(pixels[r0:r1]) <= tolerance for r0, r1 in strips.bands(*pixels.shape[:2]))


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
        allocator.keep_freed_memory()  # this process now works on large images: reuse their pages
        threads.single_threaded_blas()  # and leaves its cores to torch's threads
        strips.lanes()  # a bad ENHANCE_STRIP_LANES is refused here, before any image
        self.preset_name = preset
        self.settings = resolve_preset(preset, overrides)
        sr = self.settings["superres"]
        self.scale = int(sr["scale"])
        self.model_names = resolve_models(self.scale, sr["models"])
        self.bitonal_names = resolve_models(self.scale, sr["bitonal_models"], BITONAL_DEFAULTS)
        self.inference = inference or superres.Inference(precision=self.settings["inference"]["precision"])
        self.tiling = tiling.on(self.inference.device)
        self._networks = {n: self.inference.prepare(load_model(n)) for n in {*self.model_names, *self.bitonal_names}}
        needs_ffdnet = self.settings["denoise"]["strength"] != "off"
        self.ffdnet = self.inference.prepare(load_model("ffdnet-color")) if needs_ffdnet else None

    def weights(self, models: tuple[str, ...] | list[str], *, lpips: bool = False) -> dict[str, str]:
        """The hash of each model an image went through (its SR models, and FFDNet where loaded),
        and of the LPIPS network where its consistency was measured with it."""
        names = list(models) + (["ffdnet-color"] if self.ffdnet is not None else [])
        if lpips:
            names.append(measures.LPIPS_MODEL)
        return {n: get_entry(n).sha256 for n in names}

    def sr_models(self, names: tuple[str, ...]) -> list[tuple[nn.Module, int, superres.Tiling]]:
        """Each of ``names`` as (network, scale, tiling), in the order they run."""
        return [(self._networks[n], get_entry(n).scale, self.tiling.for_model(get_entry(n))) for n in names]

    def tile_count(self, width: int, height: int, names: tuple[str, ...] | None = None) -> int:
        """The tiles ``names`` (by default the preset's photo models) run on an image of this size."""
        count = 0
        for _, scale, tiling in self.sr_models(self.model_names if names is None else names):
            count += sum(1 for _ in superres.tiles(height, width, tiling))
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
        dpi: tuple[float, float] | None = None,
        progress: TileProgress | None = None,
    ) -> ChainResult:
        return self.run_master(Master(pixels, alpha, bit_depth, icc_profile, lens, dpi=dpi), progress=progress)

    def run_master(self, master: Master, *, progress: TileProgress | None = None) -> ChainResult:
        """The chain on a handed-over master (see ``Master``). Once super-resolution has run,
        the only image alive is the output-size one: everything later was measured before."""
        s = self.settings
        records: list[StageRecord] = []
        (pixels, master.pixels), (alpha, master.alpha) = (master.pixels, None), (master.alpha, None)
        assert pixels is not None, "this master was already run"
        bit_depth = master.bit_depth
        square = s["superres"]["square_pixels"]
        densities, densities_key, densities_said = master.densities()
        stretch = pixel_aspect.stretch_for(densities) if square else pixel_aspect.SQUARE

        def step(name: str, blend: float, fn: Stage, *, in_place: bool = False, print_only: bool = False) -> None:
            """Run one stage; after SR (``in_place``) it overwrites the output-size image
            unless its change is to be blended, which needs the image before it.
            ``print_only``: the scanner's background around a print keeps its pixels."""
            nonlocal image, untouched
            start = time.perf_counter()
            result, details = fn(image, image if in_place and blend >= 1.0 else None)
            untouched = untouched and result is image
            changed = result is not image and not details.get("decision", "").startswith("skipped")
            keep = the_print if print_only else None
            if (blend < 1.0 or keep) and changed and result.shape == image.shape:
                if np.may_share_memory(result, image):  # never blend into the stage's input
                    result = result.copy()
                height, width = image.shape[:2]
                amount = blend if keep is None else (
                    lambda r0, r1: np.float32(blend) * keep.weight_rows(r0, r1, height, width))
                result = _blend_into(result, lambda r0, r1: image[r0:r1], amount)
                if blend < 1.0:
                    details = {**details, "blend": blend}
            image = result
            decision = str(details.pop("decision", "done"))
            records.append(StageRecord(name, decision, time.perf_counter() - start, details))
            if progress:
                progress.stage_done(name)

        if alpha is not None:  # before anything measures or enlarges the colour: it is part of what they see
            start = time.perf_counter()
            if filled := hidden_colour.fill(pixels, alpha):
                records.append(StageRecord(
                    "hidden_colour", f"colour under full transparency ({filled} px) filled from the visible colours "
                    "around it, which the enlargement would otherwise spread into the visible edge",
                    time.perf_counter() - start, {"filled_px": filled}))
        neutral = is_neutral(pixels)
        start = time.perf_counter()
        source_summary, source_height = measures.summarise_input(pixels), pixels.shape[0]
        measuring_s = time.perf_counter() - start
        start = time.perf_counter()
        text = self._text_page(pixels)  # on the master: exposure and denoising change how its paper reads
        looking_s = time.perf_counter() - start
        image = pixels[..., :1].copy() if neutral else pixels
        untouched = not neutral  # still the very pixels ``source_summary`` measured
        del pixels
        if neutral:
            records.append(StageRecord("input", "neutral RGB scan processed as grey (no tint can appear)", 0.0))
        start = time.perf_counter()
        the_print = scan_border.find(image)  # what tone and colour are measured on, and change
        where = the_print.mask if the_print else None
        analysis = preprocess.analyse_dynamic_range(image, bit_depth, where)
        records.append(StageRecord("dynamic_range", _measured_on(the_print), time.perf_counter() - start,
                                   analysis.as_record() | ({} if the_print is None else
                                                           {"print_share": round(the_print.share, 4)})))

        restore = s["colour_restore"]
        start = time.perf_counter()
        stained, stain_record = color.restorable(  # before exposure stretches it away
            image, restore["mode"], stained_only=True, where=where)
        planning_s = time.perf_counter() - start
        if s["exposure"]["enabled"] and stained:
            faded = "colour_restore.mode=on" if restore["mode"] == "on" else "a faded print (lifted, tinted blacks)"
            records.append(StageRecord("exposure", f"skipped: {faded}, whose range colour restoration stretches "
                                       "channel by channel (the same levels on all three keep its cast)", 0.0))
        elif s["exposure"]["enabled"]:
            step("exposure", s["exposure"]["blend"],
                 lambda im, _: preprocess.compensate_exposure(im, analysis, where=where), print_only=True)
        if s["colour_cast"]["enabled"]:
            step("colour_cast", s["colour_cast"]["blend"],
                 lambda im, _: preprocess.correct_colour_cast(im, where=where), print_only=True)
        if s["lens"]["enabled"]:
            coefficients = {"k1": s["lens"]["k1"], "k2": s["lens"]["k2"]}
            before_lens = image
            step("lens", s["lens"]["blend"],
                 lambda im, _: preprocess.correct_lens_distortion(im, master.lens, coefficients))
            moved = image is not before_lens
            del before_lens  # nothing input-sized may outlive SR
            if moved and the_print is not None:  # the print's edges moved with it
                the_print = scan_border.find(image)
                where = the_print.mask if the_print else None
        start = time.perf_counter()
        dots = _dots(image) if s["superres"]["descreen"] else None  # they are the picture, not noise
        looking_s += time.perf_counter() - start  # the superres stage's: it decides its models and input
        # where the scan's own pixels are kept; around them, and in the feather between, grain
        picture = dots.weight == 255 if dots and dots.in_tones and dots.share < 1.0 else None
        step("denoise", s["denoise"]["blend"], lambda im, _: self._denoise(im, dots, picture))
        noise_left = source_summary.noise_sigma if untouched and picture is None \
            else denoise.estimate_sigma(image, exclude=picture)
        start = time.perf_counter()
        # after denoising, before SR deepens blacks; a stained print's stain found above
        correction, restore_record = color.plan_restoration(
            image, mode="on" if stained else restore["mode"], where=where,
            strength=stain_record["strength"] if stained else None)
        if stained:  # what it was restored for, which the signs after denoising may no longer show
            restore_record = {"stain": stain_record["stain"], **restore_record}
        planning_s += time.perf_counter() - start

        step("superres", 1.0, lambda im, _: self._superres(
            im, progress, bit_depth, master.max_long_side, text, stretch, dots))
        records[-1].seconds += looking_s
        metrics = records[-1].details.pop("metrics")
        models = tuple(records[-1].details["models"])
        lpips_in = records[-1].details.get("lpips_precision")
        effective_scale = image.shape[0] / source_height
        if alpha is not None:
            alpha = superres.upscale_alpha(alpha, *image.shape[:2])

        # From here on the image is output-sized: every stage works in row strips, in place.
        def print_weight(output: np.ndarray) -> Callable[[int, int], np.ndarray] | None:
            """Where a tone stage's change is kept: the print, not the scanner's background."""
            if the_print is None:
                return None
            return lambda r0, r1: the_print.weight_rows(r0, r1, *output.shape[:2])

        sharpen, contrast = s["sharpen"], s["local_contrast"]
        step("colour_restore", restore["blend"], in_place=True, fn=lambda im, out: (
            im if correction is None else correction.apply(im, out=out, share=print_weight(im)), dict(restore_record)))
        records[-1].seconds += planning_s
        step("sharpen", sharpen["blend"], in_place=True, fn=lambda im, out: postprocess.adaptive_sharpen(
            im, amount=sharpen["amount"], noise_sigma=noise_left, out=out))
        step("local_contrast", contrast["blend"], in_place=True, fn=lambda im, out: postprocess.local_contrast(
            im, clip_limit=contrast["clip_limit"], out=out, share=print_weight(im)))
        if neutral:
            image = np.repeat(image, 3, axis=2)
        start = time.perf_counter()
        image, profile, details = postprocess.convert_colour_space(
            image, master.icc_profile, s["colour_space"]["target"], out=image)
        records.append(StageRecord("colour_space", str(details.pop("decision")), time.perf_counter() - start, details))
        found = findings.findings([dataclasses.asdict(r) for r in records])
        notes = [f.note for f in found]
        if dots:
            notes.append(f"{dots.made} {dots.inks}{dots.where}: its dots were descreened into tones before "
                         "enlarging (superres.descreen=false keeps them)")
        if details.get("out_of_gamut", 0) >= GAMUT_NOTE:
            notes.append(_gamut_note(details))
        if stretch != pixel_aspect.SQUARE:
            assert densities is not None
            start = time.perf_counter()
            image = pixel_aspect.stretched(image, stretch)
            alpha = None if alpha is None else pixel_aspect.stretched(alpha, stretch)
            axis = "rows" if stretch[1] > 1 else "columns"
            records.append(StageRecord(
                "square_pixels", f"{axis} stretched x{max(stretch):.4g} to square pixels (master at {densities_said})",
                time.perf_counter() - start,
                {densities_key: list(densities), "stretch": list(stretch),
                 "output_size": [image.shape[1], image.shape[0]]}))
        elif square and pixel_aspect.ratio(densities) > pixel_aspect.MAX_RATIO:
            assert densities is not None
            records.append(StageRecord(
                "square_pixels", f"skipped: the master's resolution tags ({densities_said}) are "
                "further apart than a scanner's, taken for a tagging error", 0.0, {densities_key: list(densities)}))
        start = time.perf_counter()
        metrics.update(measures.descriptive(source_summary, image))
        metrics["composite_score"] = measures.composite(metrics)
        records.append(StageRecord("measures", "analysed: noise, sharpness, clipping, colourfulness in and out",
                                   measuring_s + time.perf_counter() - start))
        return ChainResult(image, alpha, profile, effective_scale, analysis, records, models, metrics, stretch,
                           lpips_in, notes, [f.kind for f in found])

    def _denoise(
        self, image: np.ndarray, dots: dither.Dither | None, picture: np.ndarray | None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Denoised, but where dithered or screened: there the dots are the picture. Around a
        screen printed in tones (a photograph on a page of print) the grain is the scan's."""
        if dots and picture is None:
            return image, {"decision": f"skipped: {dots.made}{dots.where}, whose dots are the picture, not noise"}
        dn = self.settings["denoise"]
        out, record = denoise.denoise(image, self.ffdnet, strength=dn["strength"], sigma_override=dn["sigma"],
                                      inference=self.inference, exclude=picture)
        if dots and picture is not None:
            if out is not image:
                out = dots.mixed(image, out, out=out)
            record["decision"] += f"; not where {dots.made}{dots.where}, whose dots are the picture"
            record["left_as_scanned_share"] = round(dots.share, 4)
        return out, record

    def _text_page(self, pixels: np.ndarray) -> text_page.PageLook | None:
        """How the master reads as a page of text, looked at only where that would change the models."""
        if not self.settings["superres"]["text_pages"] or self.bitonal_names == self.model_names:
            return None
        return text_page.text_page(pixels)

    def _superres(
        self,
        image: np.ndarray,
        progress: TileProgress | None,
        bit_depth: int,
        format_limit: int | None,
        text: text_page.PageLook | None,
        stretch: pixel_aspect.Stretch,
        dots: dither.Dither | None,
    ) -> tuple[np.ndarray, dict[str, Any]]:
        sr = self.settings["superres"]
        two_valued = denoise.two_valued(image)  # black and white only: the photo networks would redraw its strokes
        bitonal = two_valued or dots is not None
        text = None if bitonal else text
        names = self.bitonal_names if bitonal or text else self.model_names
        sr_models = self.sr_models(names)
        details: dict[str, Any] = {"models": list(names), "scale": self.scale}
        if text:
            details["text_page"] = dataclasses.asdict(text)
        sigma = get_entry(names[0]).bitonal_sigma
        source = image
        if dots:  # before any reduction, which would average the dots on its own grid
            smoothed = bool(sigma) and dots.share < 1.0 and not dots.in_tones  # the rest: print in black and white
            print_part = cv2.GaussianBlur(image, (0, 0), sigma).reshape(image.shape) if smoothed else image
            source = dots.descreened(image, print_part)
            details["descreened"] = dots.as_record()
            if smoothed:
                details["bitonal_smoothing_sigma"] = sigma
        height, width = image.shape[:2]
        cap = min(int(sr["max_output_long_side"]), format_limit or sys.maxsize)
        longest = max(height * stretch[1], width * stretch[0]) * self.scale  # the derivative's, square pixels and all
        if longest > cap:
            factor = cap / longest
            size = (max(1, int(width * factor)), max(1, int(height * factor)))
            source = cv2.resize(source, size, interpolation=cv2.INTER_AREA).reshape(size[1], size[0], image.shape[2])
            details["reduced_input_to"] = list(size)
            details["output_long_side_cap"] = cap
        # SPAN turns hard steps into noise
        if not dots and sigma and two_valued and (source is image or denoise.two_valued(source)):
            source = cv2.GaussianBlur(source, (0, 0), sigma).reshape(source.shape)
            details["bitonal_smoothing_sigma"] = sigma
        if progress:
            progress.planned(self.tile_count(source.shape[1], source.shape[0], names))
        out, started = source, time.perf_counter()
        for model, scale, tiling in sr_models:
            out = superres.upscale(out, model, scale, tiling=tiling, inference=self.inference,
                                   on_tile=progress.done if progress else None)
        details["tile_px"] = [tiling.tile for _, _, tiling in sr_models]
        details["tile_context_px"] = [tiling.context for _, _, tiling in sr_models]
        details["tile_overlap_px"] = [tiling.cross_fade for _, _, tiling in sr_models]
        details["network_s"] = round(time.perf_counter() - started, 4)  # the stage's parts, timed for bench/
        if sr["colour_guard"]:
            started = time.perf_counter()
            superres.keep_input_colour(out, source, out=out)
            details["colour_guard"] = True
            details["colour_guard_s"] = round(time.perf_counter() - started, 4)
        _, first_scale, first_tiling = sr_models[0]
        down, across = (first_tiling.pitch(side) * first_scale for side in source.shape[:2])  # its grid, output px
        details["tile_grid_px"] = [down, across]
        started = time.perf_counter()
        details["metrics"] = measures.sr_integrity(source, out, tile_grid=(down, across), bit_depth=bit_depth)
        if not np.isnan(details["metrics"]["consistency_lpips"]):
            details["lpips_precision"] = lpips_precision()
        details["integrity_checks_s"] = round(time.perf_counter() - started, 4)
        if sr["blend"] < 1.0:
            _blend_into(out, lambda r0, r1: strips.clipped(strips.enlarge_rows(source, self.scale, r0, r1)), sr["blend"])
            details["blend"] = sr["blend"]
        decision = f"x{self.scale} with {' then '.join(names)}"
        if bitonal and names != self.model_names:
            redrawn = "the descreened tones, sharpening what the screen never held" if dots and dots.in_tones \
                else "a black-and-white page's strokes"
            decision += f" in place of {' then '.join(self.model_names)}, which would redraw {redrawn}"
        if text:
            decision += (f" in place of {' then '.join(self.model_names)}, which would redraw its letters: read as a"
                         f" {'negative of a ' if text.negative else ''}page of text ({text.paper:.0%} paper,"
                         f" {text.ink:.0%} ink, {text.thin:.0%} of it in thin strokes, {text.marks} marks, at"
                         f" {text.side} px)")
        if "reduced_input_to" in details:
            decision += f" (input first reduced to {details['reduced_input_to']} to keep the long side <= {cap})"
        if dots:
            decision += (f"; {dots.made}{dots.where} ({dots.kind}), so first descreened there (Gaussian sigma "
                         f"{dots.sigma} px), which the network would enlarge as dots")
        if "bitonal_smoothing_sigma" in details:
            decision += (f"; {'the rest ' if dots else ''}black and white only, so first smoothed (Gaussian sigma "
                         f"{sigma} px)")
        return out, {**details, "decision": decision}
