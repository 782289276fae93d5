"""The derivative's bytes: the enhanced pixels as integer samples, encoded with the master's
metadata told the derivative's size and where it came from.

Decoding is ``codecs``; what is carried, and how it is told the derivative, is
``derivative_metadata``. Each format's writer gets the metadata its readers look for: PNG
chunks after the header, a TIFF page's own tags and its EXIF and GPS directories, JPEG's APP
segments, WebP's chunks.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, replace

import numpy as np
import tifffile
from PIL import Image

from . import derivative_metadata as dmd
from . import metadata as md
from . import photoshop_resources, png_chunks, png_pixels, tiff_entries, tiff_exif, xmp_extension
from .chain import icc, strips
from .errors import EncodeError
from .formats import EIGHT_BIT_FORMATS, WRITE_FORMATS


@dataclass(frozen=True)
class Provenance:
    """What the derivative says about itself in its metadata."""

    software: str
    description: str


def encode(
    pixels: np.ndarray,
    alpha: np.ndarray | None,
    *,
    fmt: str,
    bit_depth: int,
    meta: md.ImageMetadata,
    scale: float,
    provenance: Provenance,
    quality: int = 95,
) -> bytes:
    """Bytes of the derivative with the master's metadata, updated for the new size."""
    check_writable(fmt, bit_depth, alpha is not None)
    return encode_samples(
        to_samples(pixels, alpha, bit_depth), fmt=fmt, meta=meta, scale=scale, provenance=provenance, quality=quality
    )


def check_writable(fmt: str, bit_depth: int, has_alpha: bool) -> None:
    """Refuse, before any work, what the format cannot hold."""
    if fmt not in WRITE_FORMATS:
        raise EncodeError(f"cannot write {fmt}; choose one of {sorted(WRITE_FORMATS)}")
    if bit_depth == 16 and fmt in EIGHT_BIT_FORMATS:
        raise EncodeError(f"{fmt} holds 8 bits per sample: write 16-bit images as PNG or TIFF")
    if has_alpha and fmt == "JPEG":
        raise EncodeError("JPEG has no alpha channel: write images with transparency as PNG, TIFF or WebP")


def to_samples(pixels: np.ndarray, alpha: np.ndarray | None, bit_depth: int) -> np.ndarray:
    """Integer samples (grey or RGB, then alpha) of float pixels, converted band by band so no
    float temporary of the whole image is made; NaN or infinity is refused."""
    top, dtype = (65535.0, np.uint16) if bit_depth == 16 else (255.0, np.uint8)
    height, width, channels = pixels.shape
    samples = np.empty((height, width, channels + (alpha is not None)), dtype)
    for r0, r1 in strips.bands(height, width):
        band = pixels[r0:r1] if alpha is None else np.concatenate([pixels[r0:r1], alpha[r0:r1, :, None]], axis=2)
        if not np.all(np.isfinite(band)):
            raise EncodeError("the enhanced pixels contain NaN or infinity")
        samples[r0:r1] = np.clip(band, 0.0, 1.0) * top + 0.5
    return samples


def encode_samples(
    samples: np.ndarray,
    *,
    fmt: str,
    meta: md.ImageMetadata,
    scale: float,
    provenance: Provenance,
    quality: int = 95,
) -> bytes:
    """``encode`` from samples made by ``to_samples``: a caller that has dropped its float
    image compresses with no copy of it."""
    if fmt == "TIFF":
        buf = io.BytesIO()
        add_tiff_page(buf, samples, meta=meta, scale=scale, provenance=provenance,
                      bigtiff=samples.nbytes > CLASSIC_TIFF_BYTES)
        return buf.getvalue()
    exif, meta, dpi = _derivative_metadata(samples, fmt, meta, scale, provenance)
    if fmt == "PNG":
        return _encode_png(samples, exif, meta, dpi, provenance)
    return _encode_pillow(samples, fmt, exif, meta, dpi, quality)


def _derivative_metadata(
    samples: np.ndarray, fmt: str, meta: md.ImageMetadata, scale: float, provenance: Provenance
) -> tuple[bytes, md.ImageMetadata, tuple[float, float] | None]:
    """The EXIF block, the metadata and the resolution of a derivative page, told its new size."""
    check_writable(fmt, 16 if samples.dtype == np.uint16 else 8, samples.shape[2] in (2, 4))
    height, width = samples.shape[:2]
    dpi = dmd.scaled_dpi(meta.dpi, scale)
    exif = dmd.derivative_exif(
        meta, width=width, height=height, dpi=dpi, software=provenance.software, description=provenance.description
    )
    if meta.xmp:
        meta = replace(meta, xmp=dmd.derivative_xmp(meta, width=width, height=height, channels=samples.shape[2],
                                                   bits=samples.dtype.itemsize * 8, dpi=dpi,
                                                   software=provenance.software,
                                                   description=provenance.description))
    if meta.icc_profile and fmt == "WEBP" and samples.shape[2] <= 2:  # grey that WebP, having none, stores as colour
        meta = replace(meta, icc_profile=icc.grey_as_rgb(meta.icc_profile) or meta.icc_profile)
    return exif, meta, dpi


def _encode_png(
    samples: np.ndarray, exif: bytes, meta: md.ImageMetadata, dpi: tuple[float, float] | None, prov: Provenance
) -> bytes:
    chunks = [png_chunks.exif(exif[6:])]
    if meta.icc_profile:
        chunks.append(png_chunks.iccp(meta.icc_profile))
    if dpi and (phys := png_chunks.phys(dpi)):
        chunks.append(phys)
    elif meta.aspect and meta.aspect[0] != meta.aspect[1] and (phys := png_chunks.phys_aspect(meta.aspect)):
        chunks.append(phys)  # left as the master's (superres.square_pixels=false, or tags too far apart)
    if meta.xmp:
        chunks.append(png_chunks.itxt("XML:com.adobe.xmp", meta.xmp.decode("utf-8", "replace")))
    if meta.iptc or meta.photoshop:  # the records, or Photoshop's resources holding them, as ImageMagick keeps either
        resources = photoshop_resources.joined(meta.photoshop, meta.iptc) if meta.photoshop else meta.iptc
        chunks.append(png_chunks.raw_profile_chunk("iptc", resources))
    description = dmd.marked_description(prov.description, meta.text.get("Description"))
    chunks += [png_chunks.itxt("Software", prov.software), png_chunks.itxt("Description", description)]
    chunks += [png_chunks.itxt(keyword, text) for keyword, text in meta.text.items() if keyword != "Description"]
    # grey + alpha as PNG's own (OpenCV, the writer until 2026-12-06, made it RGBA)
    return png_pixels.encode(samples, chunks)


# A classic TIFF's offsets end at 4 GiB: past this much pixel data the derivative is a BigTIFF
# (room is left for the metadata, and for zlib, which outgrows its input on pure noise).
CLASSIC_TIFF_BYTES = 2**32 - 2**25
# piexif type number → tifffile dtype code, for EXIF IFD0 tags copied into the TIFF's IFD0.
_TIFF_TYPES = {1: "B", 2: "s", 3: "H", 4: "I", 5: "2I", 7: "B", 9: "i", 10: "2i"}


def add_tiff_page(
    derivative: io.BytesIO,
    samples: np.ndarray,
    *,
    meta: md.ImageMetadata,
    scale: float,
    provenance: Provenance,
    bigtiff: bool = False,
) -> None:
    """One page of a TIFF derivative, with its own metadata, written at the end of
    ``derivative`` (as its first page when it is empty; ``bigtiff`` counts only then): a
    multi-page master's pages are written as the chain finishes each, so that only one
    page's output is held at a time."""
    import piexif

    exif, meta, dpi = _derivative_metadata(samples, "TIFF", meta, scale, provenance)
    loaded = piexif.load(exif)
    if meta.maker_note:  # as the master holds it, for where it lands in this file
        loaded["Exif"][tiff_exif.MAKER_NOTE] = meta.exif["Exif"][tiff_exif.MAKER_NOTE]
    zeroth, sub_ifds = loaded["0th"], tiff_exif.sub_ifds(loaded)
    extratags = tiff_exif.placeholders(list(sub_ifds))
    for tag, value in sorted(zeroth.items()):
        info = piexif.TAGS["Image"].get(tag)
        if tag in (270, 305, 282, 283, 296, 34665, 34853) or info is None or info["type"] not in _TIFF_TYPES:
            continue  # written by tifffile itself below, or sub-IFD pointers (appended afterwards)
        dtype = _TIFF_TYPES[info["type"]]
        if dtype == "s":  # the master's bytes as they are: tifffile refuses text that is not 7-bit ASCII
            extratags.append((tag, dtype, 0, value if isinstance(value, bytes) else str(value).encode(), True))
            continue
        flat = np.asarray(value).ravel()
        count = flat.size // 2 if dtype.startswith("2") else flat.size
        extratags.append((tag, dtype, count, tuple(int(v) for v in flat), True))
    if meta.icc_profile:
        extratags.append((md.ICC_TIFF_TAG, "B", len(meta.icc_profile), meta.icc_profile, True))
    if meta.xmp:
        extratags.append((700, "B", len(meta.xmp), meta.xmp, True))
    if meta.iptc:
        extratags.append((md.IPTC_TIFF_TAG, 7, len(meta.iptc), meta.iptc, True))  # UNDEFINED: bytes as they are
    if meta.photoshop:  # with the IPTC records again, as Photoshop writes them, beside the digest taken of them
        resources = photoshop_resources.joined(meta.photoshop, meta.iptc)
        extratags.append((md.PHOTOSHOP_TIFF_TAG, "B", len(resources), resources, True))
    if meta.geo:
        extratags += meta.geo.extratags()
    channels = samples.shape[2]
    first = derivative.seek(0, io.SEEK_END) == 0
    derivative.seek(0)  # tifffile reads an existing file from where the stream is
    with tifffile.TiffWriter(derivative, append=not first, bigtiff=bigtiff and first) as tiff:
        tiff.write(
            samples if channels > 1 else samples[:, :, 0],
            photometric="rgb" if channels >= 3 else "minisblack",
            extrasamples=["unassalpha"] if channels in (2, 4) else None,
            compression="zlib",
            predictor=True,  # each sample as its difference from the one to its left, as archives' TIFFs are written
            maxworkers=strips.lanes(),  # strips deflated side by side: half the time on two cores
            resolution=dpi,
            resolutionunit="INCH" if dpi else None,
            software=zeroth[piexif.ImageIFD.Software].decode("ascii"),
            description=zeroth[piexif.ImageIFD.ImageDescription],  # ours, then the master's bytes
            metadata=None,
            extratags=extratags,
        )
    if sub_ifds:
        with derivative.getbuffer() as written:  # the page just appended ends the chain of directories
            page = tiff_entries.directory_offsets(written)[-1]
        tiff_exif.append_sub_ifds(derivative, sub_ifds, page, meta.maker_note.moved_to if meta.maker_note else None)


# A JFIF density is 16-bit: Pillow wrote 80,000 dpi as 14,464 (its low 16 bits), so a 20,000-dpi
# microfilm scan at x4 said a 5.5 times larger page. Past it the JFIF header says no unit and
# the EXIF block carries the resolution, which readers then take (Pillow, exiftool).
JFIF_MAX_DENSITY = 2**16 - 1


def _encode_pillow(
    samples: np.ndarray, fmt: str, exif: bytes, meta: md.ImageMetadata, dpi: tuple[float, float] | None, quality: int
) -> bytes:
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[samples.shape[2]]
    im = Image.fromarray(samples if samples.shape[2] > 1 else samples[:, :, 0], mode=mode)
    options: dict[str, object] = {"exif": exif, "quality": quality}
    if meta.icc_profile:
        options["icc_profile"] = meta.icc_profile
    if meta.xmp and not (fmt == "JPEG" and meta.xmp_extension):
        options["xmp"] = meta.xmp
    if fmt == "JPEG":
        options["subsampling"] = 0 if quality >= 90 else 2
        extra = dmd.jpeg_app13(meta) if meta.iptc or meta.photoshop else b""
        extra += dmd.jpeg_comments(meta)
        if meta.xmp and meta.xmp_extension:  # the main packet and its extension's segments, in that order
            extra += xmp_extension.jpeg_segments(meta.xmp, meta.xmp_extension)
        if extra:
            options["extra"] = extra
        if dpi and all(1 <= round(d) <= JFIF_MAX_DENSITY for d in dpi):  # past it, the EXIF block's alone
            options["dpi"] = tuple(round(d) for d in dpi)
    if fmt == "WEBP" and mode == "LA":
        im = im.convert("RGBA")
    buf = io.BytesIO()
    im.save(buf, fmt, **options)
    return buf.getvalue()
