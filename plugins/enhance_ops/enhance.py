"""One image from bytes to enhanced bytes, with a record of what was done to it.

An ``Enhancer`` holds one resolved chain (preset + loaded models) for a whole run, and a
content-hash cache so that an identical image met twice in a run is processed once. The
cache keeps the most recent results up to ``CACHE_BYTES`` of output, so a long shard of big
scans cannot fill the worker's memory with finished images. A shard starts the next images
before the previous ones are finished, so a copy can arrive while its twin is still on its
way: it then waits for the twin's result instead of being enhanced a second time.

A multi-page TIFF (a letter, a register) becomes a multi-page TIFF derivative, its pages run
through the chain one after the other; its ledger row holds each page's measures and, as the
row's own, the worst of them, so one bad page holds the whole document for review. A record
says whether the derivative holds every page (``pages_complete``): one that lacks some (a
damaged chain of TIFF directories, a one-page output format, an animated WebP) is held too.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import piexif

from . import SOFTWARE, codecs, encoders, exif_geometry
from . import derivative_metadata as dmd
from . import metadata as md
from .chain.pipeline import Chain, ChainResult, Master, TileProgress
from .chain.preprocess import LensInfo
from .chain.superres import Inference, Tiling
from .errors import EnhanceError, ImageTooLargeError
from .formats import DEFAULT_MAX_PIXELS, MAX_SIDE
from .quality.ledger import pixel_stretch, reduced_input_to
from .quality.measures import MEASURES


CACHE_BYTES = 256 * 1024**2


@dataclass(frozen=True)
class EnhanceOptions:
    preset: str = "archive-photo"
    overrides: tuple[str, ...] = ()
    tiling: Tiling = Tiling()
    inference: Inference | None = None  # None: the preset's precision on the CPU
    max_pixels: int = DEFAULT_MAX_PIXELS
    output_format: str | None = None
    quality: int = 95


@dataclass
class EnhanceResult:
    data: bytes
    format: str
    record: dict[str, Any] = field(default_factory=dict)


def _text(value: object) -> str:
    return value.decode("latin-1", "replace").strip("\x00 ") if isinstance(value, bytes) else ""


def _ratio(value: object) -> float:
    return value[0] / value[1] if isinstance(value, tuple) and len(value) == 2 and value[1] else 0.0


def lens_from_exif(exif: dict[str, Any] | None) -> LensInfo | None:
    """The optics EXIF names, for the lens-distortion stage; None without EXIF."""
    if not exif:
        return None
    zeroth, sub = exif.get("0th", {}), exif.get("Exif", {})
    return LensInfo(
        camera_make=_text(zeroth.get(piexif.ImageIFD.Make)),
        camera_model=_text(zeroth.get(piexif.ImageIFD.Model)),
        lens_make=_text(sub.get(piexif.ExifIFD.LensMake)),
        lens_model=_text(sub.get(piexif.ExifIFD.LensModel)),
        focal_length=_ratio(sub.get(piexif.ExifIFD.FocalLength)),
        aperture=_ratio(sub.get(piexif.ExifIFD.FNumber)),
    )


@dataclass(frozen=True)
class Source:
    """What the record and the encoder need of a master, kept once its pixels are let go."""

    format: str
    output_format: str
    size: tuple[int, int]
    bit_depth: int
    bits_per_sample: int
    channels: int
    metadata: md.ImageMetadata
    notes: list[str]
    damage: str | None

    @classmethod
    def of(cls, image: codecs.DecodedImage) -> Source:
        return cls(image.format, image.output_format, image.size, image.bit_depth, image.bits_per_sample,
                   image.pixels.shape[2] + (image.alpha is not None), image.metadata, image.notes, image.damage)


@dataclass
class Job:
    """One image on its way through ``Enhancer``: decoded, then run through the chain, then encoded.
    Each step lets go of what the next does not need (the decoded pixels go to the chain, which
    drops them after SR; the chain's float output goes once quantised), so a large scan is
    not held twice."""

    digest: str
    image: codecs.DecodedImage | None = None
    pages: codecs.Pages | None = None
    source: Source | None = None
    decode_s: float = 0.0
    chain_result: Any = None
    chain_s: float = 0.0
    cached: EnhanceResult | None = None
    finished: threading.Event | None = None  # set when this job, the first of its content, ends
    twin: threading.Event | None = None  # the earlier job of the same content, still on its way
    data: bytes | None = None  # kept while the twin's result is awaited, or for the later pages
    encoded: EnhanceResult | None = None  # a multi-page derivative, written page by page in ``run``
    complete: bool = True  # False where the derivative lacks pages or frames the master holds


class Enhancer:
    """The chain for a run. ``enhance`` does one image; its three steps (``start``: hash and
    decode, ``run``: the chain, ``finish``: encode) are separate so that a shard can decode the
    next image and encode the previous one while the networks work (``airflow/tasks.py``)."""

    def __init__(self, options: EnhanceOptions) -> None:
        self.options = options
        self.chain = Chain(options.preset, options.overrides, tiling=options.tiling, inference=options.inference)
        self._done: OrderedDict[str, EnhanceResult] = OrderedDict()
        self._in_flight: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def enhance(self, data: bytes, progress: TileProgress | None = None) -> EnhanceResult:
        return self.finish(self.run(self.start(data), progress))

    def start(self, data: bytes, digest: str | None = None) -> Job:
        """Hash (unless the caller already has the sha256) and decode (no model involved: safe in
        another thread). A copy of an image still on its way is left undecoded (see ``run``)."""
        job = Job(digest or hashlib.sha256(data).hexdigest())
        with self._lock:
            job.cached = self._done.get(job.digest)
            if job.cached is None:
                job.twin = self._in_flight.get(job.digest)
                if job.twin is None:
                    job.finished = self._in_flight[job.digest] = threading.Event()
        if job.twin is not None:
            job.data = data
        elif job.cached is None:
            self._decode(job, data)
        return job

    def _decode(self, job: Job, data: bytes) -> None:
        """The first page; a master with more pages keeps its bytes for them where the
        derivative is a TIFF, and is told to be its first page alone where not."""
        start = time.perf_counter()
        try:
            job.pages = pages = codecs.pages(data)
            job.image = image = codecs.decode(data, max_pixels=self.options.max_pixels, frame=pages.frames[0])
            fmt = self._output_format(image.output_format)
            if len(pages.frames) > 1 and fmt == "TIFF":
                self._within_limit(pages)
                job.data = data
        except BaseException:
            self._release(job)
            raise
        image.notes[:0] = pages.notes
        job.complete = pages.complete and (len(pages.frames) == 1 or fmt == "TIFF")
        if len(pages.frames) > 1 and fmt != "TIFF":
            image.notes.append(f"file holds {len(pages.frames)} pages: only the first is enhanced, "
                               f"as a {fmt} derivative holds one (write TIFF to keep them all)")
        job.source = Source.of(image)
        job.decode_s = time.perf_counter() - start

    def _within_limit(self, pages: codecs.Pages) -> None:
        """A document's pages together are held to the pixel limit, as one image is: its
        derivative is built in memory, and a register of hundreds of pages would outgrow the
        worker where each page alone is within it."""
        total = sum(width * height for width, height in pages.sizes)
        if total > self.options.max_pixels:
            raise ImageTooLargeError(
                f"{len(pages.sizes)} pages of {total:,} pixels in all exceed the limit of {self.options.max_pixels:,} "
                "(set max_pixels / ENHANCE_MAX_PIXELS to allow it, or split the file)"
            )

    def run(self, job: Job, progress: TileProgress | None = None) -> Job:
        """The chain: pre-processing, the networks, post-processing; for a copy of an image still
        on its way, the wait for that image's result (and the chain only if it left none: it
        failed, or its output was too large to keep)."""
        if job.twin is not None:
            job.twin.wait()
            with self._lock:
                job.cached = self._done.get(job.digest)
            data, job.data, job.twin = job.data, None, None
            if job.cached is None:
                assert data is not None
                self._decode(job, data)
        if job.cached is None and job.chain_result is None:
            (image, job.image), start = (job.image, None), time.perf_counter()
            assert image is not None
            try:
                master = self._master(image)
                del image  # the chain holds the only reference to the pixels and lets them go after SR
                job.chain_result = self.chain.run_master(master, progress=progress)
                job.chain_s = time.perf_counter() - start
                if job.data is not None:
                    job.encoded = self._all_pages(job, progress)
            except BaseException:
                self._release(job)
                raise
        return job

    def _master(self, image: codecs.DecodedImage) -> Master:
        """A decoded page as the chain takes it, once the derivative's format is known to hold it."""
        fmt = self._output_format(image.output_format)
        encoders.check_writable(fmt, image.bit_depth, image.alpha is not None)  # before any work
        return Master(image.pixels, image.alpha, image.bit_depth, image.metadata.icc_profile,
                      lens_from_exif(image.metadata.exif), max_long_side=MAX_SIDE.get(fmt), dpi=image.metadata.dpi,
                      aspect=image.metadata.aspect)

    def _all_pages(self, job: Job, progress: TileProgress | None) -> EnhanceResult:
        """A multi-page master as a multi-page TIFF. While the chain runs a page, a helper
        thread compresses the page before it into the derivative and decodes the page after
        it: decoding and encoding stay off the networks' path, as they do between a shard's
        images. Each page's float output is quantised as soon as the chain has made it, so
        one page's samples wait for the helper at most. A page that cannot be read or
        enhanced fails the master, naming the page: a derivative that silently lacks a page
        of a document is worse than none."""
        data, pages, source, result = job.data, job.pages, job.source, job.chain_result
        assert data is not None and pages is not None and source is not None and result is not None
        job.data = job.chain_result = None
        derivative, total = io.BytesIO(), len(pages.frames)
        bigtiff = pages.sample_bytes * self.chain.scale**2 > encoders.CLASSIC_TIFF_BYTES
        timing = {"decode_s": job.decode_s, "chain_s": job.chain_s, "encode_s": 0.0}

        def read(frame: int) -> tuple[Source, Master]:
            start = time.perf_counter()
            image = codecs.decode(data, max_pixels=self.options.max_pixels, frame=frame)
            source, master = Source.of(image), self._master(image)
            timing["decode_s"] += time.perf_counter() - start
            return source, master

        def write(output: _Output) -> None:
            start = time.perf_counter()
            encoders.add_tiff_page(derivative, output.samples, meta=output.meta, scale=output.scale,
                                   provenance=output.provenance, bigtiff=bigtiff)
            timing["encode_s"] += time.perf_counter() - start

        records: list[dict[str, Any]] = []
        with ThreadPoolExecutor(1, thread_name_prefix="pages") as helper:
            writing: tuple[int, Future[None]] | None = None
            master: Master | None = None  # a later page, as read ahead
            for number in range(1, total + 1):
                reading = helper.submit(read, pages.frames[number]) if number < total else None
                with _named(number, total):
                    if master is not None:
                        start = time.perf_counter()
                        result = self.chain.run_master(master, progress=progress)
                        timing["chain_s"] += time.perf_counter() - start
                    record, output = self._quantised(source, result, "TIFF")
                    del result  # the float output goes once quantised
                if writing is not None:
                    with _named(writing[0], total):
                        writing[1].result()
                writing = number, helper.submit(write, output)
                del output  # the helper holds the only reference
                records.append(record)
                if reading is not None:
                    with _named(number + 1, total):
                        source, master = reading.result()
            with _named(writing[0], total):
                writing[1].result()
        out = derivative.getvalue()
        record = {"input_sha256": job.digest, **_as_document(records), **timing, "pages_complete": job.complete,
                  "output_sha256": hashlib.sha256(out).hexdigest(), "output_bytes": len(out)}
        return EnhanceResult(out, "TIFF", record)

    def finish(self, job: Job) -> EnhanceResult:
        """Encode with the master's metadata and the record of what was done (no model involved).

        It consumes the job: the chain's float output is dropped once quantised, before
        compression."""
        if job.cached is not None:
            earlier = job.cached
            return EnhanceResult(earlier.data, earlier.format, {**earlier.record, "cache": "identical content seen earlier in this run"})
        try:
            enhanced = job.encoded or self._encode(job)
            self._remember(job.digest, enhanced)
            return enhanced
        finally:  # a copy waiting for this result goes on, with it or without it
            self._release(job)

    def _encode(self, job: Job) -> EnhanceResult:
        source, result = job.source, job.chain_result
        assert source is not None and result is not None
        start = time.perf_counter()
        fmt = self._output_format(source.output_format)
        record, output = self._quantised(source, result, fmt)
        job.chain_result = None
        del result
        out = encoders.encode_samples(output.samples, fmt=fmt, meta=output.meta, scale=output.scale,
                                      provenance=output.provenance, quality=self.options.quality)
        record = {"input_sha256": job.digest, **record, "decode_s": job.decode_s, "chain_s": job.chain_s,
                  "encode_s": time.perf_counter() - start, "pages_complete": job.complete,
                  "output_sha256": hashlib.sha256(out).hexdigest(),  # the derivative's fixity, in the ledger
                  "output_bytes": len(out)}
        return EnhanceResult(out, fmt, record)

    def _quantised(self, source: Source, result: ChainResult, fmt: str) -> tuple[dict[str, Any], _Output]:
        """What the record says of one page, and its output as integer samples (the float
        output can go once the caller lets go of ``result``)."""
        chain = self.chain
        applied = [r.stage for r in result.stages if not r.decision.startswith(("skipped", "analysed"))]
        description = (
            f"Enhanced derivative, not the archival master: preset {chain.preset_name}; "
            f"x{chain.scale} with {' then '.join(result.models)}; steps: {', '.join(applied)}"
        )
        (x, y), densities = result.stretch, (source.metadata.dpi, source.metadata.aspect)
        dpi, aspect = (d and (d[0] * x, d[1] * y) for d in densities)  # square where the chain made the pixels so
        exif, target = source.metadata.exif, chain.settings["colour_space"]["target"]
        if target and result.icc_profile != source.metadata.icc_profile:  # converted: the EXIF says so too
            exif = md.exif_saying_colour_space(exif, target)
        output_size = (result.pixels.shape[1], result.pixels.shape[0])
        exif, placed_elsewhere = exif_geometry.resampled(exif, source.size, output_size, source.metadata.stored_turn,
                                                            source.metadata.cut_to)
        geo = source.metadata.geo
        moved = _pixels_moved(source.metadata.orientation, applied) if geo else None
        if geo:
            geo = None if moved else geo.resampled(source.size, output_size)
        meta, not_carried = dmd.fitted_to(
            dataclasses.replace(source.metadata, icc_profile=result.icc_profile, dpi=dpi, aspect=aspect, exif=exif,
                                geo=geo),
            fmt, software=SOFTWARE, description=description)
        if moved:
            not_carried.append(f"GeoTIFF georeferencing not carried: {moved}")
        record = {
            "input_format": source.format,
            "input_size": source.size,
            "bit_depth": source.bit_depth,
            "bits_per_sample": source.bits_per_sample,
            "channels": source.channels,
            "output_format": fmt,
            "output_size": output_size,
            "preset": chain.preset_name,
            "settings": chain.settings,
            "models": list(result.models),
            "weights_sha256": chain.weights(result.models, lpips=result.lpips_precision is not None),
            "device": chain.inference.device,
            "precision": chain.inference.precision,
            "lpips_precision": result.lpips_precision,
            "dynamic_range": result.analysis.as_record(),
            "metrics": result.metrics,
            "stages": [dataclasses.asdict(r) for r in result.stages],
            "notes": [*source.notes, *result.notes, *placed_elsewhere, *not_carried],
            "read_as": result.read_as,
            "master_damage": source.damage,
        }
        samples = encoders.to_samples(result.pixels, result.alpha, source.bit_depth)
        return record, _Output(samples, meta, result.scale, encoders.Provenance(SOFTWARE, description))

    def _output_format(self, masters: str) -> str:
        return self.options.output_format or masters

    def _release(self, job: Job) -> None:
        if job.finished is not None:
            with self._lock:
                del self._in_flight[job.digest]
            job.finished.set()
            job.finished = None

    def _remember(self, digest: str, result: EnhanceResult) -> None:
        with self._lock:
            self._done[digest] = result
            while sum(len(r.data) for r in self._done.values()) > CACHE_BYTES and len(self._done) > 1:
                self._done.popitem(last=False)
            if len(result.data) > CACHE_BYTES:
                self._done.pop(digest)


def _pixels_moved(orientation: int, applied: list[str]) -> str | None:
    """Why a master's georeferencing no longer fits its derivative's pixels beyond their
    number, where it does not: it is for the stored pixels, and for them undistorted."""
    if orientation != 1:
        return f"the master is stored turned (EXIF orientation {orientation}) and the derivative upright"
    if "lens" in applied:
        return "lens distortion correction moved the pixels"
    return None


@dataclass
class _Output:
    """One page's output, quantised, with what its encoder needs."""

    samples: np.ndarray
    meta: md.ImageMetadata
    scale: float
    provenance: encoders.Provenance


@contextmanager
def _named(number: int, total: int) -> Iterator[None]:
    """An error of one page of a master, told by its number."""
    try:
        yield
    except EnhanceError as exc:
        raise type(exc)(f"page {number} of {total}: {exc}") from exc


def _as_document(pages: list[dict[str, Any]]) -> dict[str, Any]:
    """The record of a multi-page master: the first page's, with every page's sizes and
    measures under ``pages``, the worst value of each measure over the pages as the master's
    own (what the gate and a query on the ledger see), stage times summed over the pages, and
    a later page's notes and any page's damage told by its number. Its models are every
    page's (a bitonal page goes through other ones than a photograph), and so is what each
    page was read as (``read_as``: a faded print on the second page counts in the report)."""
    first, seconds = pages[0], {}
    for page in pages:
        for stage in page["stages"]:
            seconds[stage["stage"]] = seconds.get(stage["stage"], 0.0) + stage["seconds"]
    return {
        **first,
        "models": list(dict.fromkeys(name for page in pages for name in page["models"])),
        "weights_sha256": {name: sha for page in pages for name, sha in page["weights_sha256"].items()},
        "lpips_precision": next((page["lpips_precision"] for page in pages if page["lpips_precision"]), None),
        "metrics": {name: worst for name, measure in MEASURES.items()
                    if (worst := _worst([page["metrics"].get(name) for page in pages], measure.lower_better)) is not None},
        "stages": [{**stage, "seconds": seconds[stage["stage"]]} for stage in first["stages"]],
        "notes": [*first["notes"], *(f"page {n}: {note}" for n, page in enumerate(pages[1:], 2) for note in page["notes"])],
        "master_damage": "; ".join(f"page {n}: {page['master_damage']}" for n, page in enumerate(pages, 1)
                                   if page["master_damage"]) or None,
        "pages": [{"page": n, "input_size": list(page["input_size"]), "output_size": list(page["output_size"]),
                   "bit_depth": page["bit_depth"], "bits_per_sample": page["bits_per_sample"],
                   "channels": page["channels"],
                   "reduced_input_to": reduced_input_to(page["stages"]), "pixel_stretch": pixel_stretch(page["stages"]),
                   "models": page["models"],
                   "read_as": page["read_as"],
                   "metrics": page["metrics"],
                   "master_damage": page["master_damage"]}
                  for n, page in enumerate(pages, 1)],
    }


def _worst(values: list[float | None], lower_better: bool) -> float | None:
    measured = [v for v in values if v is not None and not math.isnan(v)]
    if not measured:
        return None
    return max(measured) if lower_better else min(measured)
