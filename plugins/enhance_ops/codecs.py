"""Decode scans into float pixels with everything an archive needs kept beside them (the
derivative's bytes are ``encoders``').

Pillow reads the header and metadata (format, size, EXIF, ICC, XMP, DPI) without decoding
pixels, so the pixel limit is enforced before any large allocation. OpenCV decodes the
pixels because it keeps 16-bit colour (Pillow reduces it to 8 bits). The bit depth comes
from the container (the decoded sample type), never from the pixel values.

Pixels are float32 (H, W, C) in [0, 1] with C = 1 (grey) or 3 (RGB); alpha is kept apart as
float32 (H, W) so the chain can upscale it separately.
"""
from __future__ import annotations

import functools
import io
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from typing import ContextManager, NoReturn

import cv2
import imagecodecs
import numpy as np
import pillow_heif
import tifffile
from PIL import Image, ImageCms, MpoImagePlugin, PngImagePlugin, TiffImagePlugin, UnidentifiedImageError

from . import metadata as md
from . import camera_raw, damage, deep_colour, deep_jpeg, heif_boxes, jp2_boxes, jpeg_segments, jpeg_xl, netpbm
from . import photoshop_document, png_chunks, tiff_entries, tiff_header, tiff_log
from .chain import icc, strips
from .formats import (DEFAULT_MAX_PIXELS, EIGHT_BIT_FORMATS, MAX_SIDE, READ_FORMATS, WRITE_FORMATS, format_of,
                      other_format_of)
from .errors import (
    CorruptImageError,
    EmptyFileError,
    ImageError,
    ImageTooLargeError,
    NotAnImageError,
    TruncatedImageError,
    UnsupportedImageError,
)
from .orientation import upright

# The pixel limit below replaces Pillow's global decompression-bomb guard: ours is checked
# before decoding and is configurable per run.
Image.MAX_IMAGE_PIXELS = None
pillow_heif.register_heif_opener()  # HEIC's header and metadata as Pillow's other formats (samples: ``_heif_samples``)
PngImagePlugin.MAX_TEXT_CHUNK = png_chunks.MAX_TEXT_BYTES
# OpenCV's decoders log what they assume and what they cannot read on stderr, in the middle
# of progress bars and task logs, with no name of the file: every JPEG 2000 with an ICC
# profile ("unknown color space, SRGB is assumed", though its profile is carried), and
# libtiff's errors for pages OpenCV cannot read though they are sound ("Invalid tile byte
# count" for uncompressed tiles, which tifffile then reads). What matters reaches the
# ledger's notes and errors instead: a page OpenCV refuses is read by another decoder or
# fails with its own error.
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
_END_MARKERS = {"JPEG": b"\xff\xd9", "PNG": b"IEND"}


@dataclass
class DecodedImage:
    pixels: np.ndarray
    alpha: np.ndarray | None
    bit_depth: int  # of the samples as read and as a derivative holds them: 8 or 16
    format: str
    metadata: md.ImageMetadata
    mode: str
    notes: list[str] = field(default_factory=list)
    damage: str | None = None  # damage found in the compressed pixel data the decoders went past (JPEG, TIFF)
    bits_per_sample: int = 8  # as the master declares them: ``declared_bits``

    @property
    def size(self) -> tuple[int, int]:
        """(width, height), as image people say it."""
        return self.pixels.shape[1], self.pixels.shape[0]

    @property
    def output_format(self) -> str:
        """The master's own format where it is written and holds the samples (a 12-bit JPEG's
        do not fit an 8-bit one), else PNG."""
        if self.format in WRITE_FORMATS and not (self.bit_depth == 16 and self.format in EIGHT_BIT_FORMATS):
            return self.format
        return "PNG"


def decode(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS, samples: bool = False, frame: int = 0) -> DecodedImage:
    """Pixels and metadata of one file (of its ``frame``-th page or frame, counted from 0, as
    ``pages`` lists them); raises a specific ``ImageError`` subclass on bad input.

    Pixels are float32 in [0, 1]; with ``samples``, the file's own uint8/uint16 samples, a
    quarter or half the memory, for callers that look at a few pixels of a large image.
    """
    if not data:
        raise EmptyFileError("the file is empty (0 bytes)")
    restored = jpeg_xl.holds_jpeg(data)
    data = jpeg_xl.restored(data) if restored else data
    im = _open_header(data)
    if frame:
        im = _seek(im, data, frame)
    width, height = im.size
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"{width}x{height} = {width * height:,} pixels exceeds the limit of {max_pixels:,} "
            "(set max_pixels / ENHANCE_MAX_PIXELS to allow it)"
        )
    _check_decodable(im.format, width, height)
    if im.format == "TIFF":
        _check_flat(im)
        _check_sample_bytes(im, max_pixels)
    by_libdeflate = not _opencv_misreads(im) and _deflated_tiff(im)
    with _damage_check(data, im, frame, later=by_libdeflate) as damage_found:
        meta = md.read_metadata(im, data)
        notes = ([jpeg_xl.NOTE] if restored else []) + meta.notes
        checked: _Checked | None = None
        if im.mode in ("CMYK", "LAB"):
            pixels, alpha, depth, checked = _to_srgb(im, data, meta, notes, samples)
        else:
            pixels, alpha, depth, checked = _decode_pixels(data, im, samples, notes, by_libdeflate)
    if not _turned_on_reading(im, meta):
        pixels, alpha = _apply_orientation(pixels, alpha, meta.orientation)
    if meta.icc_profile and (misfit := icc.misfit(meta.icc_profile, pixels.shape[2])):
        notes.append(f"embedded ICC profile dropped: {misfit}; the derivative carries none, so viewers take sRGB")
        meta.icc_profile = None
    if meta.icc_profile is None and pixels.shape[2] == 3 and (space := md.exif_colour_space(meta.exif)):
        meta.icc_profile = icc.build_profile(icc.SPACES[space])  # viewers that read no EXIF would take sRGB
        notes.append(f"no ICC profile, but the EXIF says {space}, as a camera in its {space} mode writes: "
                     f"{icc.SPACES[space].name} assumed, and its profile embedded in the derivative")
    if meta.stored_turn in (5, 6, 7, 8):  # the tags count along the stored axes, now turned
        meta.dpi = meta.dpi and (meta.dpi[1], meta.dpi[0])
        meta.aspect = meta.aspect and (meta.aspect[1], meta.aspect[0])
    damaged = checked.damage if checked else damage_found()
    if damaged:
        notes.append(f"the {im.format}'s pixel data is damaged ({damaged}): part of the image decodes garbled or "
                     "blank; restore the master from another copy")
    return DecodedImage(pixels, alpha, depth, im.format or "", meta, im.mode, notes, damaged, declared_bits(im, data))


def declared_bits(im: Image.Image, data: bytes) -> int:
    """Bits per sample as the master stores them, for the ledger's provenance: a 12-bit scan
    is read into 16-bit samples, and its derivative is 16-bit, but the master was made with 12.
    A palette image's are its colours' (8); a PNG's sBIT, where present, is taken at its word."""
    if im.mode == "1":
        return 1
    if im.mode == "P":
        return 8
    if im.format in ("TIFF", "PSD") or isinstance(im, deep_jpeg.DeepJpeg):
        return _bits(im)
    if im.format == "PPM":
        return (netpbm.maxval(im) or 255).bit_length()
    if im.format == "PNG":
        return png_chunks.significant_bits(data) or data[24]
    if im.format == "JPEG2000" and (codestream := jp2_boxes.read(data).codestream) is not None:
        return jp2_boxes.layout(data, codestream).bits
    return _bits(im, data) if im.format in ("AVIF", "HEIF") else 8


def _damage_check(data: bytes, im: Image.Image, frame: int,
                  later: bool = False) -> ContextManager[Callable[[], str | None]]:
    """The damage check of a JPEG or TIFF, which expands the compressed data again, on a lane
    of its own while the one-thread decoders (libjpeg and libtiff under OpenCV) read it; but a
    CCITT page's after the decoder: it reads code words in Python, and beside it would only
    wait on the GIL. ``later``: only if asked, after the decoder (a deflate page libdeflate
    reads, which needs none unless libdeflate refuses it: ``_deflated_samples``)."""
    check = functools.partial(_damage, data, im.format, frame)
    compression = im.tag_v2.get(tiff_header.COMPRESSION) if im.format == "TIFF" else None
    in_c = im.format == "JPEG" or im.format == "TIFF" and not damage.read_in_python(compression)
    return strips.beside(check) if in_c and not later else nullcontext(check)


def _damage(data: bytes, fmt: str | None, frame: int) -> str | None:
    if fmt == "JPEG":
        said = damage.in_jpeg(data)
        return f"libjpeg: {said}" if said else None
    return damage.in_tiff_page(data, frame) if fmt == "TIFF" else None


_DECODED_SIDE, _DECODED_PIXELS = 1_000_000, 1 << 30  # libpng's default side limit; OpenCV's pixel limit


def _check_decodable(fmt: str | None, width: int, height: int) -> None:
    """A header past what the decoders take is refused by name: OpenCV raised a bare
    assertion (an internal error) for a side over 1,048,576 px, and libpng calls a PNG with a
    side over a million px damaged. A WebP header past the format's own limit is damage."""
    side = MAX_SIDE["WEBP"]
    if fmt == "WEBP" and max(width, height) > side:
        raise CorruptImageError(f"WEBP header declares {width}x{height}, past the format's {side:,} px a side: "
                                "the file is damaged")
    if max(width, height) > _DECODED_SIDE or width * height > _DECODED_PIXELS:
        raise UnsupportedImageError(f"{width}x{height}: images with a side over {_DECODED_SIDE:,} px or over "
                                    f"{_DECODED_PIXELS:,} pixels are not decoded; split the scan")


_SAMPLE_BYTES_PER_PIXEL = 16  # eight 16-bit samples: more than any layout read here keeps


def _check_sample_bytes(im: Image.Image, max_pixels: int) -> None:
    """A TIFF page whose samples would take more memory than the pixel limit allows at eight
    16-bit samples a pixel is refused before decoding: a damaged SamplesPerPixel (57,859 on
    a 48,152 × 16 page, found by fuzzing) had tifffile ask for 41.5 GiB."""
    samples = im.tag_v2.get(277, 1)
    need = _sample_bytes(im.width, im.height, samples, _bits(im))
    if need > max_pixels * _SAMPLE_BYTES_PER_PIXEL:
        raise ImageTooLargeError(
            f"TIFF page of {im.width}x{im.height} with {samples:,} samples per pixel would take {need:,} bytes decoded, "
            f"past {max_pixels:,} pixels of eight 16-bit samples (set max_pixels / ENHANCE_MAX_PIXELS to allow it)")


def _check_flat(im: Image.Image) -> None:
    """A volumetric TIFF page (SGI's ImageDepth past 1) is a stack of slices, which the
    decoders read as one (OpenCV its first slice without a word, tifffile the stack): refused
    by name, not read in part nor called damaged."""
    depth = im.tag_v2.get(32997, 1)  # ImageDepth
    if not isinstance(depth, int) or depth > 1:
        raise UnsupportedImageError(f"volumetric TIFF page ({depth} slices deep, SGI's ImageDepth) is not processed; "
                                    "save each slice as a page of its own")


def _seek(im: Image.Image, data: bytes, frame: int) -> Image.Image:
    try:
        im.seek(frame)
    except EOFError:
        raise CorruptImageError(f"{im.format} has no page {frame + 1}") from None
    except Exception as exc:  # Pillow raises TypeError, ValueError, OSError … on a damaged directory
        if im.format == "TIFF":
            return _tags_only(data, frame)
        raise CorruptImageError(f"{im.format} page {frame + 1} cannot be read: {exc}") from exc
    return im


def _tags_only(data: bytes, frame: int = 0) -> Image.Image:
    """A TIFF page Pillow does not read, opened for its tags (``tiff_header``); else why it is not read."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # as in ``_open_header``: tifffile says what a damaged directory costs
            return tiff_header.open_page(tiff_entries.for_pillow(data), frame)
    except Exception:
        raise _unopenable_tiff(data, frame) from None


@dataclass(frozen=True)
class Pages:
    """The pages of a master that are enhanced: a letter or a register scanned into one TIFF
    is many pages, while its reduced-resolution copies (thumbnails, pyramid levels) and
    transparency masks are not pages of the document."""

    frames: tuple[int, ...]  # the file's frame numbers of the pages, for ``decode(frame=)``
    sizes: tuple[tuple[int, int], ...]  # (width, height) of each (a TIFF page upright, others as stored)
    sample_bytes: int  # the pages' samples at 8 or 16 bits, uncompressed: what a derivative holds at x1
    notes: tuple[str, ...] = ()
    complete: bool = True  # False where the file holds pages or frames beyond those listed


_REDUCED, _MASK = 1, 4  # NewSubfileType bits


def pages(data: bytes) -> Pages:
    """The pages a TIFF holds, read from its directories only (by tifffile, which reads the
    tags of layouts Pillow does not open, such as a 1-bit transparency mask). Other formats
    are one page: an animated WebP's later frames are noted and left, and a TIFF whose
    later directories are damaged is its first page, with a note; both are not ``complete``.
    A tag tifffile had to skip is noted too, as is one of a page's EXIF or GPS directory whose
    value lies past the end of the file (``tiff_entries``)."""
    complaints: list[tiff_log.Complaint] = []
    with tiff_log.gathered(complaints):
        found = _pages(data)
    within = [e for e in tiff_entries.past_the_end(data) if e.within] if format_of(data) == "TIFF" else []
    if not complaints and not within:
        return found
    directories = tiff_entries.directory_offsets(data) if len(found.frames) > 1 else []

    def page(frame: int | None) -> str:
        return f"page {found.frames.index(frame) + 1}: " if len(found.frames) > 1 and frame in found.frames else ""

    def holding(at: int | None) -> int | None:  # the directory holding the entry at ``at`` starts nearest before it
        below = [(start, frame) for frame, start in enumerate(directories) if at is not None and start <= at]
        return max(below)[1] if below else None

    return replace(found, notes=(*found.notes, *dict.fromkeys(c.note(page(holding(c.at))) for c in complaints),
                                 *(page(e.page) + e.note() for e in within if e.page in found.frames)))


def _pages(data: bytes) -> Pages:
    if not data:
        raise EmptyFileError("the file is empty (0 bytes)")
    im = _open_header(_unwrapped(data))
    first = Pages((0,), (im.size,), _sample_bytes(im.width, im.height, _decoded_channels(im), _bits(im, data)))
    frames, sizes, sample_bytes, left = [], [], 0, {"reduced-resolution copy": 0, "transparency mask": 0}
    try:
        if isinstance(im, MpoImagePlugin.MpoImageFile):
            return _multi_picture(im, first)
        if im.format != "TIFF":
            count = getattr(im, "n_frames", 1)
            held, taken = ("images", "its primary one") if im.format == "HEIF" else ("frames", "the first")  # a burst
            return first if count == 1 else replace(first, notes=(f"file holds {count} {held}: only {taken} is enhanced",),
                                                     complete=False)
        count = len(tiff_entries.directory_offsets(data))
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            if len(tif.pages) != count:
                raise ValueError(f"{count} directories in the chain, {len(tif.pages)} readable")
            for frame, page in enumerate(tif.pages):
                kind = int(page.subfiletype)
                if kind & (_REDUCED | _MASK):
                    left["reduced-resolution copy" if kind & _REDUCED else "transparency mask"] += 1
                    continue
                width, height = page.imagewidth, page.imagelength
                frames.append(frame)
                sizes.append((height, width) if page.tags.valueof("Orientation", 1) in (5, 6, 7, 8) else (width, height))
                sample_bytes += _sample_bytes(width, height, page.samplesperpixel, page.bitspersample)
    except Exception as exc:  # tifffile raises TiffFileError, ValueError, … on a damaged directory
        return replace(first, notes=(f"the pages after the first cannot be read ({type(exc).__name__}: {exc}): "
                                     "only the first is enhanced",), complete=False)
    notes = tuple(f"{n} {what}(s) in the file not enhanced: not pages of the document" for what, n in left.items() if n)
    return Pages(tuple(frames), tuple(sizes), sample_bytes, notes) if frames else replace(first, notes=notes)


def _multi_picture(im: MpoImagePlugin.MpoImageFile, first: Pages) -> Pages:
    """A multi-picture JPEG (CIPA's MPF: cameras that store a large preview after the photo,
    stereo cameras) is its primary image. The others are noted by their kind: a reduced copy
    or an image of undefined kind (a depth map, say) leaves nothing of the picture out, but a
    view of the subject (the other half of a stereo pair, a panorama's or a multi-angle set's
    frames) does, so such a derivative is not ``complete``."""
    kinds = Counter(_mp_kind(entry["Attribute"]["MPType"]) for entry in im.mpinfo[0xB002][1:])
    left = ", ".join(f"{n} {kind[n > 1]}" for kind, n in kinds.items())
    return replace(first, notes=(f"multi-picture JPEG: its primary image is enhanced; not in the derivative: {left}",),
                   complete=_MP_VIEW not in kinds)


_MP_VIEW = ("other view of the subject (a stereo pair's, a panorama's or a multi-angle set's)",
            "other views of the subject (a stereo pair's, a panorama's or a multi-angle set's)")


def _mp_kind(mp_type: str) -> tuple[str, str]:
    """(singular, plural) words for a kind of image an MPF file holds beside its primary one."""
    if mp_type.startswith("Large Thumbnail"):
        return "reduced copy (a preview)", "reduced copies (previews)"
    if mp_type.startswith("Multi-Frame"):
        return _MP_VIEW
    return "image of undefined kind (a depth map, say)", "images of undefined kind (depth maps, say)"


def _bits(im: Image.Image, data: bytes = b"") -> int:
    """A TIFF's (current page's) deepest BitsPerSample, a Netpbm file's by its maxval, an
    AVIF's by its boxes (``data``); 8 for the other formats."""
    if im.format == "PPM":
        return netpbm.bits(im)
    if im.format == "AVIF":
        return heif_boxes.read(data).bits or 8
    if im.format == "HEIF":
        return im.info.get("bit_depth", 8)
    if isinstance(im, photoshop_document.PhotoshopImage):
        return im.document.depth
    if isinstance(im, deep_jpeg.DeepJpeg):
        return im.precision
    return max(im.tag_v2.get(258, (8,))) if im.format == "TIFF" else 8


def _decoded_channels(im: Image.Image) -> int:
    """A palette image's samples are decoded as RGB, or RGBA where it has transparency."""
    if im.mode != "P":
        return len(im.getbands())
    return 4 if "transparency" in im.info or im.palette is not None and im.palette.mode == "RGBA" else 3


def _sample_bytes(width: int, height: int, channels: int, bits: int) -> int:
    return width * height * channels * (2 if bits > 8 else 1)


def oriented_size(data: bytes) -> tuple[int, int]:
    """(width, height) as the image will be decoded (upright), read from the header only."""
    if not data:
        raise EmptyFileError("the file is empty (0 bytes)")
    data = _unwrapped(data)
    im = _open_header(data)
    meta = md.read_metadata(im, data)
    width, height = meta.cut_to[2:] if meta.cut_to else im.size
    turned = not _turned_on_reading(im, meta) and meta.orientation in (5, 6, 7, 8)
    return (height, width) if turned else (width, height)


def _turned_on_reading(im: Image.Image, meta: md.ImageMetadata) -> bool:
    """Pillow's header and OpenCV's pixels both present TIFFs upright already, by their
    Orientation tag; other formats not, and nothing turns by an XMP orientation."""
    return im.format == "TIFF" and not meta.orientation_from_xmp


def _looks_truncated(data: bytes, fmt: str | None) -> bool:
    if fmt in _END_MARKERS:
        return _END_MARKERS[fmt] not in data[-64:]
    if fmt == "JPEG2000":
        return jp2_boxes.read(data).cut_off
    if fmt in ("AVIF", "HEIF"):
        return heif_boxes.read(data).cut_off
    if fmt == "PPM":
        return netpbm.header_cut_off(data)
    if fmt == "GIF":  # its trailer byte ends it (0x3B may also turn up in the LZW data, so only the last byte counts)
        return data.rstrip(b"\x00")[-1:] != b";"
    if fmt == "BMP":  # its file header's size; asked only of a BMP no decoder read, so a size written wrong does no harm
        return int.from_bytes(data[2:6], "little") > len(data)
    return fmt == "WEBP" and (len(data) < 8 or int.from_bytes(data[4:8], "little") + 8 > len(data))


def _unsupported_samples(kind: str) -> UnsupportedImageError:
    return UnsupportedImageError(f"{kind} samples are not processed (8- and 16-bit only); convert to a 16-bit TIFF")


def _unopenable_tiff(data: bytes, frame: int = 0) -> ImageError:
    """Neither Pillow nor ``tiff_header`` opens a float or 32-bit TIFF (nor 9- to 15-bit
    CMYK or Lab, or a compression neither Pillow nor tifffile decodes), so a refusal
    alone does not mean a cut-off file: tifffile reads the first directory to tell a whole
    file we do not process from one that ends early, so nobody re-transfers a sound scan,
    and to name what to convert. An unreadable directory is most often a cut-off file."""
    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            page = tif.pages[frame]
            cut_off, dtype, bits = _cut_off(page, len(data)), page.dtype, page.bitspersample
            compression = getattr(page.compression, "name", str(page.compression))
            known_compression = int(page.compression) in TiffImagePlugin.COMPRESSION_INFO
            kind = getattr(page.photometric, "name", f"photometric {page.photometric}")  # an unknown one is an int
            layout = f"{page.samplesperpixel} × {bits}-bit {kind} samples"
            no_size = not (page.imagewidth and page.imagelength)
    except Exception:
        return TruncatedImageError.in_header("TIFF")
    if no_size:
        return CorruptImageError("TIFF page directory declares no width or height: the file is damaged")
    if cut_off:
        return TruncatedImageError.in_pixels("TIFF")
    if dtype not in (np.uint8, np.uint16):
        return _unsupported_samples(str(dtype) if dtype is not None else f"{bits}-bit")
    if bits not in (1, 8, 16):
        return UnsupportedImageError(f"TIFF of {layout} per pixel is not processed; "
                                     "convert it to 8 or 16 bits per sample")
    if not known_compression:
        return UnsupportedImageError(f"TIFF compressed with {compression} is not processed; "
                                     "save it uncompressed or with LZW or Deflate")
    return UnsupportedImageError(f"TIFF of {layout} per pixel is not processed; convert to an RGB, RGBA or grey TIFF")


def _jpeg_refusal(data: bytes) -> str | None:
    """Why neither Pillow nor ``deep_jpeg`` opens a JPEG: of CMYK deeper than 8 bits, say, or a
    lossy one of 16 bits, which libjpeg does not decode. The frame header, found by walking
    the segments, names its process, components and precision."""
    found = jpeg_segments.frame(data)
    if found is None or found.precision == 8 and found.process not in jpeg_segments.LOSSLESS:
        return None
    kind = "lossless JPEG" if found.process in jpeg_segments.LOSSLESS else "JPEG"
    return (f"{kind} of {found.components} × {found.precision}-bit samples is not processed; "
            "convert it to a 16-bit TIFF")


def _refuse(data: bytes, fmt: str | None, exc: Exception) -> NoReturn:
    """Why Pillow opens no file but a TIFF (``_tags_only``), by name."""
    if fmt is None and (other := other_format_of(data)):
        to = ("develop it to a 16-bit TIFF" if "camera raw" in other else "save it as a little-endian (Intel) TIFF"
              if "BigTIFF" in other else "convert to PNG or TIFF")
        raise UnsupportedImageError(f"{other} images are not processed; {to}") from None
    if fmt is None:
        raise NotAnImageError("not a recognised image file (PNG, JPEG, TIFF, WebP, BMP, JPEG 2000, Netpbm, GIF, AVIF, "
                              "HEIF or PSD)") from None
    if fmt == "PAM":
        raise UnsupportedImageError("PAM (Netpbm's arbitrary map) images are not processed; convert to PNG or TIFF")
    if _looks_truncated(data, fmt):
        raise TruncatedImageError.in_header(fmt) from None
    if fmt == "JPEG2000":
        _checked_jpeg2000(data)  # a layout Pillow does not open (more than four components) is named
    if fmt == "JPEG" and (refusal := _jpeg_refusal(data)):
        raise UnsupportedImageError(refusal) from None
    said = "no reader takes its values" if isinstance(exc, UnidentifiedImageError) else exc  # not its address
    raise CorruptImageError(f"{fmt} header cannot be read: {said}") from exc


def _unwrapped(data: bytes) -> bytes:
    """The JPEG a JPEG XL recompressed without loss; any other file as it is."""
    return jpeg_xl.restored(data) if jpeg_xl.holds_jpeg(data) else data


def _open_header(data: bytes) -> Image.Image:
    fmt = format_of(data)
    if fmt == "PSD":  # Pillow's reads 8-bit ones only, and takes their layers for frames
        return photoshop_document.open_header(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            im = Image.open(tiff_entries.for_pillow(data) if fmt == "TIFF" else io.BytesIO(data))
    except Exception as exc:
        if fmt == "TIFF":
            im = _tags_only(data)
        elif fmt == "JPEG" and deep_jpeg.readable(data):
            im = _deep_jpeg_header(data, exc)
        else:
            _refuse(data, fmt, exc)
    if im.format == "TIFF" and (raw := camera_raw.kind(data, im)):
        raise UnsupportedImageError(f"{raw} is not processed: its first image is a preview, and its sensor data must "
                                    "be developed first (to a 16-bit TIFF)")
    if im.format == "MPO":  # a JPEG with more images after its own (a camera's preview, a stereo view): ``_pages``
        im.format = "JPEG"
    if im.format not in READ_FORMATS:
        raise UnsupportedImageError(f"{im.format} images are not processed; convert to PNG or TIFF")
    if im.width < 1 or im.height < 1:
        raise CorruptImageError(f"image declares an empty size {im.width}x{im.height}")
    return im


def _deep_jpeg_header(data: bytes, refused: Exception) -> deep_jpeg.DeepJpeg:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return deep_jpeg.open_header(data)
    except Exception:
        _refuse(data, "JPEG", refused)


def to_unit(samples: np.ndarray) -> np.ndarray:
    """uint8/uint16 samples as float32 in [0, 1], divided in place: one float array at a
    time, not two."""
    out = np.ascontiguousarray(samples, dtype=np.float32)
    out /= np.iinfo(samples.dtype).max
    return out


_GREY_MODES = ("L", "LA", "La", "I;16", "I;16B", "I;16L", "1")


@dataclass(frozen=True)
class _Checked:
    """What a decoder found of damage in the compressed data itself, so that no damage check
    need run: libdeflate refuses a damaged strip, and the Photoshop reader finds the rows that
    decode to the wrong length."""

    damage: str | None = None


def _decode_pixels(
    data: bytes, im: Image.Image, samples: bool, notes: list[str], deflated: bool
) -> tuple[np.ndarray, np.ndarray | None, int, _Checked | None]:
    """Colour, alpha, bit depth, and what the decoder found of damage where it checked
    (``deflated``: a deflate TIFF page for libdeflate)."""
    if im.format == "TIFF":
        _check_tiles(im)
    if im.format == "PNG" and (cut := png_chunks.overrun(data)):
        raise TruncatedImageError(f"PNG chunk {cut[0].decode('latin-1')} declares {cut[1]:,} bytes, past the end of "
                                  f"the {len(data):,}-byte file: the file is truncated (or the length damaged)")
    misread = _opencv_misreads(im)
    raw = None if misread or deflated else _opencv_decode(data, im.tell())
    checked = None
    boxes = heif_boxes.read(data) if im.format in ("AVIF", "HEIF") else heif_boxes.Primary()
    if raw is not None and im.format == "TIFF" and 8 < (bits := _bits(im)) < 16:  # 12-bit grey, the one Pillow opens
        raw >>= 16 - bits  # OpenCV shifts the samples up, leaving the low bits empty: white was 65520, not 65535
        _widen(raw, bits)
    if raw is not None:
        colour, alpha = _split_opencv(raw)
    elif deflated:
        colour, alpha, checked = _deflated_samples(data, im.tell(), notes)
    elif im.format == "JPEG2000":
        colour, alpha = _jpeg2000_samples(data, im, notes)
    elif im.format == "PPM":
        colour, alpha = _full_range(netpbm.samples(data, im), netpbm.maxval(im)), None
    elif im.format == "TIFF":
        colour, alpha = _tiff_samples_past_damage(data, im.tell(), notes)
    elif isinstance(im, deep_jpeg.DeepJpeg):
        colour, alpha = _deep_jpeg_samples(data, im.precision), None
    elif im.format == "AVIF":
        colour, alpha = _avif_samples(data, im, boxes, notes)
    elif im.format == "HEIF":
        colour, alpha = _heif_samples(data, im, boxes)
    elif isinstance(im, photoshop_document.PhotoshopImage):
        colour, alpha, found = photoshop_document.samples(data, im.document, notes)
        checked = _Checked(found)
    elif im.format == "BMP" and (pillow := _pillow_bmp(im)) is not None:
        colour, alpha = pillow
    elif _looks_truncated(data, im.format):
        raise TruncatedImageError.in_pixels(im.format)
    else:  # OpenCV says no more than None; libpng's reason, on stderr, names no file
        why = png_chunks.pixel_data_damage(data) if im.format == "PNG" else None
        said = f": {why}" if why else " (damaged file)"
        raise CorruptImageError(f"{im.format} pixel data cannot be decoded{said}")
    if colour.dtype not in (np.uint8, np.uint16):
        raise _unsupported_samples(str(colour.dtype))
    depth = colour.dtype.itemsize * 8
    if colour.shape[2] == 3 and (im.mode in _GREY_MODES or im.format == "PNG" and png_chunks.is_grey(data)):
        colour = colour[:, :, :1]
    if colour.shape[:2] != (im.height, im.width):
        raise CorruptImageError(f"decoded size {colour.shape[1]}x{colour.shape[0]} differs from the header's {im.size}")
    notes.extend(_companions_left_out(boxes.companions))  # none but an AVIF's or a HEIC's
    if im.format == "AVIF" and boxes.aperture:  # libheif cuts a HEIC to its own
        colour, alpha = _in_clean_aperture(colour, alpha, boxes.aperture, notes)
    if alpha is not None and im.format == "TIFF" and im.tag_v2.get(338, (0,))[0] == 1:  # associated alpha
        colour = _straight(colour, alpha)
    if alpha is not None and im.format == "GIF" and "transparency" not in im.info:
        alpha = None  # OpenCV gives an animated GIF's first frame an alpha, opaque, that the file does not declare
    if alpha is not None and im.format == "BMP" and not alpha.any():
        alpha = None  # a mask declared and never filled in: browsers and Windows show such a BMP opaque
        notes.append("the BMP's alpha is zero everywhere: taken as unused, as browsers take it, so the image is opaque")
    if alpha is None and im.format == "PNG" and colour.shape[2] == 1 and isinstance(im.info.get("transparency"), int):
        alpha = _keyed_alpha(colour, im.info["transparency"], bits=8 if im.mode == "1" else data[24])  # IHDR's
    if samples:
        return colour, alpha, depth, checked
    return to_unit(colour), (None if alpha is None else to_unit(alpha)), depth, checked


_TILE_SIDE = 4096  # the longest tile side taken for an image smaller than it


def _check_tiles(im: Image.Image) -> None:
    """A tile no longer a side than the image (on the 16-px grid tiles are cut to) or 4096 px:
    the decoders allocate a declared tile before reading it, and a damaged TileWidth (16 × 4
    million px from a 1 kB file, found by fuzzing) took 208 MB, larger values far more."""
    width, length = im.tag_v2.get(322), im.tag_v2.get(323)  # TileWidth, TileLength
    if width is None or length is None:
        return
    if width > max(-(-im.width // 16) * 16, _TILE_SIDE) or length > max(-(-im.height // 16) * 16, _TILE_SIDE):
        raise CorruptImageError(f"TIFF declares tiles of {width}x{length} for a {im.width}x{im.height} image: "
                                "its directory is damaged")


def _opencv_decode(data: bytes, frame: int) -> np.ndarray | None:
    """The frame as OpenCV decodes it, or None where it cannot: mostly it says so by None,
    but for some damaged TIFF tags it raises (a page whose Photometric tag points past the
    end of the file, found by fuzzing), which was an internal error."""
    buffer = np.frombuffer(data, np.uint8)
    try:
        if not frame:
            return cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
        ok, mats = cv2.imdecodemulti(buffer, cv2.IMREAD_UNCHANGED, range=(frame, frame + 1))
    except cv2.error:
        return None
    return mats[0] if ok and mats else None


_DEFLATE = (8, 32946)  # Compression: Adobe's deflate, and its older code


def _deflated_tiff(im: Image.Image) -> bool:
    """A deflate page of 8- or 16-bit unsigned grey or RGB samples (of those OpenCV reads
    rightly): ``_deflated_samples`` reads it."""
    if im.format != "TIFF" or getattr(im, "tags_only", False):
        return False
    tags = im.tag_v2
    unsigned = set(tags.get(tiff_header.SAMPLE_FORMAT, (1,))) == {1}
    grey_or_rgb = tags.get(tiff_header.PHOTOMETRIC) in (0, 1, 2)
    one_depth = set(tags.get(tiff_header.BITS, (1,))) in ({8}, {16})
    return tags.get(tiff_header.COMPRESSION) in _DEFLATE and grey_or_rgb and unsigned and one_depth


def _deflated_samples(data: bytes, frame: int,
                      notes: list[str]) -> tuple[np.ndarray, np.ndarray | None, _Checked | None]:
    """A deflate page through libdeflate (tifffile), its strips on the strip lanes: a
    16.8-Mpx 16-bit page read in half the time it took through libtiff's zlib under OpenCV,
    on one thread (docs/benchmarks.md). libdeflate checks each strip's checksum and size and
    refuses a damaged one, so a page it reads needs no damage check; a page it refuses is
    decoded by OpenCV, which decodes what it can, as every deflate page was before, and the
    damage check names the strip."""
    try:
        return (*_tiff_samples(data, frame, notes), _Checked())
    except ImageError:
        raw = _opencv_decode(data, frame)
        if raw is None:  # libtiff gave up too (a strip that inflates short): the other strips, one by one
            return (*_tiff_samples(data, frame, notes, past_damage=True), None)
        return (*_split_opencv(raw), None)


def _opencv_misreads(im: Image.Image) -> bool:
    """Files OpenCV 5.0 decodes without an error but wrongly, read otherwise: JPEG 2000 (see
    ``_jpeg2000_samples``), 16-bit TIFFs with separate colour planes (PlanarConfiguration 2),
    whose samples come back scrambled, 16-bit grey TIFFs stored white-is-zero (MinIsWhite),
    which come back as negatives (8-bit ones are turned), and grey or RGB TIFFs with samples past the colour:
    OpenCV returns 8-bit colour multiplied by its alpha, takes any fourth channel (infrared,
    a mask) for alpha, and drops a grey image's alpha; and Netpbm files but a float map, whose
    samples it scales by their maxval in some cases and not in others (``netpbm``). TIFF pages
    Pillow does not read (``tiff_header``) go to tifffile too, which reads them all. (AVIF and
    HEIF, which OpenCV's wheel does not decode, go to ``_avif_samples`` and ``_heif_samples``.)"""
    if im.format in ("JPEG2000", "AVIF", "HEIF", "PSD") or im.format == "PPM" and im.mode != "F" \
            or isinstance(im, deep_jpeg.DeepJpeg):
        return True
    if im.format != "TIFF":
        return False
    if getattr(im, "tags_only", False):  # a layout or compression Pillow does not read (tiff_header)
        return True
    separate_deep_planes = im.tag_v2.get(284) == 2 and _bits(im) > 8
    past_colour = 338 in im.tag_v2 or im.tag_v2.get(277) == 2  # ExtraSamples; grey and one more
    deep_white_is_zero = im.tag_v2.get(262) == 0 and _bits(im) > 8  # 16-bit MinIsWhite came back as a negative
    return separate_deep_planes or deep_white_is_zero or past_colour and im.tag_v2.get(262) in (0, 1, 2)


def _straight(colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Colour stored multiplied by its alpha (a TIFF's associated alpha) divided back, in
    place a strip at a time: the chain and every derivative take straight alpha, so
    semi-transparent parts would darken."""
    top = np.iinfo(colour.dtype).max
    for y0, y1 in strips.bands(*colour.shape[:2]):
        opacity = alpha[y0:y1].astype(np.float32)[:, :, None]
        gain = np.divide(top, opacity, out=np.zeros_like(opacity), where=opacity > 0)
        colour[y0:y1] = np.clip(colour[y0:y1] * gain + 0.5, 0, top)
    return colour


def _keyed_alpha(grey: np.ndarray, key: int, bits: int) -> np.ndarray:
    """A grey PNG's tRNS chunk names one grey level transparent (OpenCV keeps an RGB PNG's, not
    a grey one's): alpha from it, the key (at the file's bit depth; Pillow gives a 1-bit one
    as 0 or 255) brought to the decoded samples' range."""
    top = np.iinfo(grey.dtype).max
    level = key * (top // (2**bits - 1))
    return np.where(grey[:, :, 0] == level, 0, top).astype(grey.dtype)


def _pillow_bmp(im: Image.Image) -> tuple[np.ndarray, np.ndarray | None] | None:
    """A BMP OpenCV does not decode, as Pillow decodes it; None where Pillow cannot either.
    OpenCV refuses 16 bits a pixel in bitfields (5-6-5 or 5-5-5, declared by a V4 or V5
    header, as ImageMagick writes them), and such a sound scan had been called damaged."""
    try:
        im.load()
    except Exception:  # whatever Pillow raises on pixel data it cannot read: the file is then called damaged
        return None
    if im.mode in ("1", "L"):
        return np.asarray(im.convert("L"))[:, :, None], None
    if im.mode == "RGBA":
        pixels = np.asarray(im)
        return pixels[:, :, :3], pixels[:, :, 3]
    return np.asarray(im.convert("RGB")), None


def _split_opencv(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """OpenCV's BGR(A) as RGB colour (H, W, C) and a separate alpha plane."""
    if raw.ndim == 2:
        return raw[:, :, None], None
    return raw[:, :, 2::-1], (raw[:, :, 3] if raw.shape[2] == 4 else None)


@contextmanager
def _tiff_page(data: bytes, frame: int) -> Iterator[tifffile.TiffPage]:
    """A TIFF page as tifffile reads it, for the samples Pillow and OpenCV do not decode: a
    page cut off is `truncated`, and any other failure while it is read a corrupt TIFF."""
    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            page = tif.pages[frame]
            if _cut_off(page, len(data)):
                raise TruncatedImageError.in_pixels("TIFF")
            yield page
    except ImageError:
        raise
    except Exception as exc:
        raise CorruptImageError(f"TIFF pixel data cannot be decoded: {exc}") from exc


def _samples_last(page: tifffile.TiffPage, past_damage: bool = False) -> np.ndarray:
    """The page's samples as (H, W, S), whether stored in planes or not (a view where it can be)."""
    if past_damage:
        arr = _segments_decoded(page)
    else:
        arr = page.asarray(maxworkers=strips.lanes())  # strips or tiles decoded side by side
    return np.moveaxis(arr, page.axes.index("S"), -1) if "S" in page.axes else arr[:, :, None]


def _segments_decoded(page: tifffile.TiffPage) -> np.ndarray:
    """The page's samples with each strip or tile that does not decode left blank, as libtiff
    decodes past damage (the damage check names it); refused where none decodes."""
    out, decoded = np.zeros(page.shaped, page.dtype), 0  # (planes, depth, length, width, samples)
    handle = page.parent.filehandle
    for index, (offset, count) in enumerate(zip(page.dataoffsets, page.databytecounts)):
        handle.seek(offset)
        try:
            segment, (plane, z, y, x, _), _ = page.decode(handle.read(count), index, _fullsize=page.is_tiled)
        except Exception:  # tifffile's and the codecs' errors on a damaged segment
            continue
        if segment is None:
            continue
        segment = segment[:out.shape[1] - z, :out.shape[2] - y, :out.shape[3] - x]  # a tile past the edge
        out[plane, z:z + segment.shape[0], y:y + segment.shape[1], x:x + segment.shape[2]] = segment
        decoded += 1
    if not decoded:
        raise CorruptImageError("TIFF pixel data cannot be decoded: no strip or tile of the page decodes")
    return out.reshape(page.shape)


def _tiff_samples(data: bytes, frame: int, notes: list[str],
                  past_damage: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """OpenCV 5 reads no uncompressed 8-bit tiled TIFF, none with more than four channels nor
    2- or 4-bit grey, and 16-bit separate planes wrongly, though all are sound scans; nor
    any page of a multi-page TIFF after one it cannot read (a CMYK page with alpha, 2-bit
    grey), though it reads such a page alone. tifffile reads them, for the grey, RGB,
    bilevel and palette layouts OpenCV would otherwise give, samples of fewer bits than
    their type widened to its range, turned upright by the Orientation tag as OpenCV turns
    them. ``past_damage``: strips or tiles that do not decode left blank."""
    with _tiff_page(data, frame) as page:
        photometric, extras = tifffile.PHOTOMETRIC(page.photometric), page.extrasamples
        orientation = int(page.tags.valueof("Orientation", 1))
        channels = tiff_header.colour_channels(photometric, int(page.compression))
        colormap = page.colormap if photometric == tifffile.PHOTOMETRIC.PALETTE else None
        if channels is None and colormap is None:
            raise UnsupportedImageError(
                f"TIFF with {photometric.name} pixels cannot be decoded here; convert to an RGB or grey TIFF"
            )
        arr, bits = _samples_last(page, past_damage), page.bitspersample
    if arr.dtype == np.bool_:  # bilevel: tifffile gives the bits as they are stored
        arr = arr.astype(np.uint8) * np.uint8(255)
    elif arr.dtype not in (np.uint8, np.uint16):
        raise _unsupported_samples(str(arr.dtype))
    elif colormap is not None:
        arr, channels = np.concatenate([_palette_colour(arr[:, :, 0], colormap), arr[:, :, 1:]], axis=2), 3
    elif bits < arr.dtype.itemsize * 8:
        _widen(arr, bits)
    colour, alpha, left = _split_channels(arr, channels, extras)
    if photometric == tifffile.PHOTOMETRIC.MINISWHITE:
        colour = np.iinfo(colour.dtype).max - colour
    if left:
        notes.append(f"{left} extra channel(s) beyond colour and alpha dropped")
    return _apply_orientation(colour, alpha, orientation)  # as OpenCV does for TIFF


def _palette_colour(index: np.ndarray, colormap: np.ndarray) -> np.ndarray:
    """A palette page's colours at 8 bits, as libtiff (so OpenCV, for a page it reads) gives
    them: a ColorMap's 16-bit entries cut to 8 bits, or taken as 8-bit where none passes 255,
    as old writers stored them; an index past the map (damage) takes its last entry."""
    table = (colormap >> 8 if colormap.max() > 255 else colormap).T.astype(np.uint8)
    return table[np.minimum(index, len(table) - 1)]


def _split_channels(stored: np.ndarray, colours: int,
                    extras: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray | None, int]:
    """A TIFF page's colour, its alpha (the first channel past the colour, where ExtraSamples
    names it alpha; the tag may name a channel the page does not have: found by fuzzing), and
    how many channels past those are left."""
    colour, rest = stored[:, :, :colours], stored[:, :, colours:]
    named = bool(extras) and extras[0] in (tifffile.EXTRASAMPLE.ASSOCALPHA, tifffile.EXTRASAMPLE.UNASSALPHA)
    alpha = rest[:, :, 0] if rest.shape[2] and named else None
    return colour, alpha, rest.shape[2] - (alpha is not None)


def _tiff_samples_past_damage(data: bytes, frame: int, notes: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """``_tiff_samples``, and where a strip or tile does not decode, the others, as libtiff
    decodes past damage: a page had been refused whole for one strip that inflates short."""
    try:
        return _tiff_samples(data, frame, notes)
    except CorruptImageError:
        try:
            return _tiff_samples(data, frame, notes, past_damage=True)
        except ImageError:
            pass
        raise


def _deep_jpeg_samples(data: bytes, precision: int) -> np.ndarray:
    """``deep_jpeg``'s samples, spread over their type's range (bit replication: 4095 → 65535)."""
    raw = deep_jpeg.samples(data)
    if precision not in (8, 16):
        _widen(raw, precision)
    return raw


def _avif_samples(data: bytes, im: Image.Image, boxes: heif_boxes.Primary,
                  notes: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """libavif's samples through imagecodecs, at the file's own depth (Pillow's are 8-bit
    whatever the file holds), 10- and 12-bit ones spread over 16 bits; colour stored
    multiplied by its alpha comes divided back. An image sequence's first frame is Pillow's:
    imagecodecs 2026.3.6 decodes every frame of one unless asked for a single frame, and asked
    for one it corrupted the heap, which aborted the process (and so the shard)."""
    if getattr(im, "n_frames", 1) > 1:
        return _pillow_samples(im, boxes.bits or 8, notes, "an AVIF image sequence's frame")
    try:
        raw = imagecodecs.avif_decode(data)
    except imagecodecs.AvifError as exc:
        if boxes.cut_off:
            raise TruncatedImageError.in_pixels("AVIF") from None
        said = str(exc).replace("\n", "")  # dav1d's own words end in a line break
        raise CorruptImageError(f"AVIF pixel data cannot be decoded: {said}") from None
    if 8 < (bits := boxes.bits or 8) < raw.dtype.itemsize * 8:
        _widen(raw, bits)
    return _colour_and_alpha(raw)


def _in_clean_aperture(colour: np.ndarray, alpha: np.ndarray | None, aperture: heif_boxes.CleanAperture,
                       notes: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """An AVIF's samples cropped to its clean aperture, before its rotation boxes turn them, as
    libheif crops a HEIC's (libavif and Pillow leave it to the caller): the derivative had held
    the coded margins its maker meant to be cut away."""
    height, width = colour.shape[:2]
    if not aperture.before_turning:
        notes.append("its clean-aperture (clap) box follows its rotation or mirroring, against MIAF: not applied, "
                     f"the whole {width}x{height} coded image is enhanced")
        return colour, alpha
    if (rect := aperture.rect(width, height)) is None:
        notes.append(f"its clean-aperture (clap) box is not whole pixels inside the {width}x{height} coded image "
                     "(damaged, or not meant for it): not applied, the whole coded image is enhanced")
        return colour, alpha
    left, top, kept_width, kept_height = rect
    if (kept_width, kept_height) != (width, height):
        notes.append(f"cropped to its clean aperture (clap box), as its maker meant it shown: {kept_width}x"
                     f"{kept_height} at ({left}, {top}) of the {width}x{height} coded image")
    kept = np.s_[top:top + kept_height, left:left + kept_width]
    return colour[kept], None if alpha is None else alpha[kept]


def _heif_samples(data: bytes, im: Image.Image, boxes: heif_boxes.Primary) -> tuple[np.ndarray, np.ndarray | None]:
    """The image Pillow's header is of (the primary one), by libheif through pillow-heif at the
    file's own depth (pillow-heif's Pillow reader gives 8 bits), turned by its rotation and
    mirroring boxes as the header's size is; 10- and 12-bit samples come in the high bits of
    16, and are spread over them; colour stored multiplied by its alpha is divided back. A file
    cut short is refused first: libheif decodes one whose coded picture ends early without a
    word, the rest of the picture garbled."""
    if boxes.cut_off:
        raise TruncatedImageError.in_pixels("HEIF")
    try:
        heif = pillow_heif.open_heif(io.BytesIO(data), convert_hdr_to_8bit=False)[im.tell()]
        raw = np.array(heif)  # a copy: pillow-heif's buffer is read-only, and the samples are widened in place
    except (OSError, ValueError, RuntimeError, EOFError, SyntaxError) as exc:  # libheif's, as pillow-heif raises them
        raise CorruptImageError(f"HEIF pixel data cannot be decoded: {exc}") from None
    if 8 < (bits := heif.info.get("bit_depth", 8)) < 16:
        raw >>= 16 - bits
        _widen(raw, bits)
    colour, alpha = _colour_and_alpha(raw)
    premultiplied = alpha is not None and heif.premultiplied_alpha  # a ``prem`` reference says so
    return (_straight(colour, alpha) if premultiplied else colour), alpha


_GAIN_MAPS = {"urn:com:apple:photo:2020:aux:hdrgainmap", heif_boxes.GAIN_MAP}  # an iPhone's (iOS 14.1 on), ISO's
_DEPTH_MAPS = {"urn:mpeg:mpegB:cicp:systems:auxiliary:depth", "urn:mpeg:hevc:2015:auxid:2"}  # AV1's, HEVC's


def _companions_left_out(companions: tuple[heif_boxes.Companion, ...]) -> list[str]:
    """Notes for the auxiliary images beside an AVIF's or HEIC's primary one, which its
    derivative leaves out (its alpha is kept; a thumbnail, a smaller copy of the picture, goes
    without a word): they had been dropped without a word."""
    said = [f"its depth map{f' ({c.size[0]}x{c.size[1]})' if c.size else ''} is not carried"
            for c in companions if c.kind in _DEPTH_MAPS]
    if any(c.kind in _GAIN_MAPS for c in companions):
        said.append("its HDR gain map is not carried: the derivative holds the standard-range picture, as a display "
                    "without HDR shows it")
    if others := sorted({c.kind for c in companions} - _GAIN_MAPS - _DEPTH_MAPS):
        said.append(f"its auxiliary image{'s' if len(others) > 1 else ''} ({', '.join(others)}) "
                    f"{'are' if len(others) > 1 else 'is'} not carried")
    return said


def _colour_and_alpha(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Samples in RGB order (grey as (H, W) or with its alpha as two channels, as libavif and
    libheif give them) as colour (H, W, C) and a separate alpha plane."""
    raw = raw[:, :, None] if raw.ndim == 2 else raw
    return (raw[:, :, :-1], raw[:, :, -1]) if raw.shape[2] in (2, 4) else (raw, None)


def _jpeg2000_samples(data: bytes, im: Image.Image, notes: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """OpenJPEG through imagecodecs decodes the common layouts, on as many threads as the
    strip lanes (OpenCV's OpenJPEG takes one: a 20-megapixel lossless master read in twice
    the time on two cores, docs/benchmarks.md). It is given the codestream alone, as imagecodecs
    converts a JP2's samples through its ICC profile and the master's colour space is kept.
    9- to 15-bit samples come as they are, and are widened to 16 bits here; a palette, sYCC
    and grey with alpha are read by Pillow (the codestream holds neither the palette nor the
    colour space)."""
    boxes, layout = _checked_jpeg2000(data)
    if layout.size != im.size:  # the pixel limit was checked against the header's size
        raise CorruptImageError(f"JPEG 2000 header declares {im.width}x{im.height} but its codestream declares "
                                f"{layout.size[0]}x{layout.size[1]}")
    if boxes.palette or boxes.colour == jp2_boxes.SYCC or layout.components == 2:
        return _pillow_samples(im, layout.bits, notes, "palette, sYCC or grey with alpha")
    start, end = boxes.codestream  # alone: imagecodecs converts a JP2's samples through its ICC profile
    try:
        raw = imagecodecs.jpeg2k_decode(memoryview(data)[start:end], numthreads=strips.lanes())
    except imagecodecs.Jpeg2kError as exc:
        raise CorruptImageError(f"JPEG 2000 pixel data cannot be decoded (damaged file): {exc}") from None
    if 8 < layout.bits < 16:
        _widen(raw, layout.bits)
    return _colour_and_alpha(raw)


def _checked_jpeg2000(data: bytes) -> tuple[jp2_boxes.Jp2, jp2_boxes.Layout]:
    """The boxes and the codestream's layout, or the specific error for a file whose pixels
    are not read: cut off, damaged, or of a layout that is not processed."""
    boxes = jp2_boxes.read(data)
    if boxes.cut_off:
        raise TruncatedImageError.in_pixels("JPEG2000")
    if boxes.damage:
        raise CorruptImageError(f"JPEG 2000 file is damaged: {boxes.damage}")
    if boxes.codestream is None:
        raise UnsupportedImageError("JPEG 2000 file without a contiguous codestream box (a JPX fragment table) "
                                    "is not processed; convert it to JP2")
    try:
        layout = jp2_boxes.layout(data, boxes.codestream)
    except ValueError as exc:
        raise CorruptImageError(f"JPEG 2000 file is damaged: {exc}") from None
    refusal = layout.refusal or boxes.colour_refusal
    if refusal:
        raise UnsupportedImageError(refusal)
    return boxes, layout


def _widen(samples: np.ndarray, bits: int) -> None:
    """``bits``-bit samples spread over their type's whole range, in place, by bit replication
    (the bits repeated below themselves): 0 stays 0 and the largest value becomes the type's
    largest (4095 → 65535, 15 → 255)."""
    samples <<= samples.dtype.itemsize * 8 - bits
    filled = bits
    while filled < samples.dtype.itemsize * 8:
        samples |= samples >> filled
        filled *= 2


def _full_range(samples: np.ndarray, top: int | None) -> np.ndarray:
    """Samples whose largest value is ``top`` (a Netpbm maxval) spread over their type's range:
    4095 becomes 65535, 100 becomes 255, 0 stays 0. A sample past ``top`` (damage) is clipped."""
    if top is None or top == np.iinfo(samples.dtype).max:
        return samples
    np.minimum(samples, top, out=samples)
    if top & (top + 1) == 0:  # 2**n - 1
        _widen(samples, top.bit_length())
        return samples
    factor = np.iinfo(samples.dtype).max / top
    for r0, r1 in strips.bands(*samples.shape[:2]):  # in place, a band at a time: no float copy of the whole
        samples[r0:r1] = np.rint(samples[r0:r1] * np.float32(factor))
    return samples


def _pillow_samples(im: Image.Image, bits: int, notes: list[str], layout: str) -> tuple[np.ndarray, np.ndarray | None]:
    try:
        im.load()
    except (OSError, RuntimeError, ZeroDivisionError) as exc:  # Pillow's AVIF reader raises the last two for damage
        said = "the sequence's time scale is 0" if isinstance(exc, ZeroDivisionError) else exc
        raise CorruptImageError(f"{im.format} pixel data cannot be decoded: {said}") from exc
    if bits > 8:
        notes.append(f"{bits}-bit samples read at 8 bits: this layout ({layout}) is decoded by Pillow, whose modes "
                     "for it are 8-bit")
    if im.mode == "LA":
        grey_alpha = np.asarray(im)
        return grey_alpha[:, :, :1], grey_alpha[:, :, 1]
    with_alpha = im.mode == "RGBA" or im.mode == "P" and im.palette is not None and im.palette.mode == "RGBA"
    rgb = np.asarray(im.convert("RGBA" if with_alpha else "RGB"))
    return rgb[:, :, :3], (rgb[:, :, 3] if with_alpha else None)


def _cut_off(page: tifffile.TiffPage, size: int) -> bool:
    """Whether a page's pixel data runs past the end of the file."""
    ends = [offset + count for offset, count in zip(page.dataoffsets, page.databytecounts)]
    return not ends or max(ends) > size


def _to_srgb(
    im: Image.Image, data: bytes, meta: md.ImageMetadata, notes: list[str], samples: bool
) -> tuple[np.ndarray, np.ndarray | None, int, _Checked | None]:
    """Print-ready CMYK goes through its own ICC profile to sRGB, so colours stay right
    (``deep_colour``, at 8 bits too, where it is quicker than Pillow's one thread); a
    CIELab TIFF through its own profile or else a D50 Lab one, the white Photoshop and the
    ICC write Lab against (libtiff's own conversion, which OpenCV uses, is off by about ten
    levels on average). Lab is read by tifffile at its own depth (Pillow's 8-bit conversion
    is off by up to 4 levels, LittleCMS's by 2), and so is CMYK at 16 bits or with alpha;
    a Photoshop document's CMYK by ``photoshop_document``."""
    srgb_icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    if isinstance(im, photoshop_document.PhotoshopImage):  # CMYK (its Lab is refused), at 8 or 16 bits
        ink, alpha, found = photoshop_document.samples(data, im.document, notes)
        np.subtract(np.iinfo(ink.dtype).max, ink, out=ink)  # Photoshop stores it inverted
        rgb, checked = _cmyk_to_srgb(ink, meta.icc_profile, srgb_icc, notes), _Checked(found)
        meta.icc_profile = srgb_icc
        if samples:
            return rgb, alpha, rgb.dtype.itemsize * 8, checked
        return to_unit(rgb), (None if alpha is None else to_unit(alpha)), rgb.dtype.itemsize * 8, checked
    colours = len(im.getbands())
    # Lab at all (Pillow's conversion is off by up to 4 levels, LittleCMS's by 2); CMYK at 16
    # bits or with channels past its inks (alpha, a spot colour): Pillow reads none of them
    if im.format == "TIFF" and (im.mode == "LAB" or _bits(im) > 8 or im.tag_v2.get(277, colours) > colours
                                or getattr(im, "tags_only", False)):
        with _tiff_page(data, im.tell()) as page:
            stored, orientation = _samples_last(page), int(page.tags.valueof("Orientation", 1))
            photometric, extras = int(page.photometric), page.extrasamples
            if stored.shape[2] != im.tag_v2.get(277, colours):  # Pillow and tifffile read its directory differently
                raise CorruptImageError(f"TIFF page of {stored.shape[2]} samples where its layout says "
                                        f"{im.tag_v2.get(277)}: the file is damaged")
        colour, alpha = _cmyk_or_lab_channels(stored, im.mode, extras, notes)
        if im.mode == "CMYK":
            deep = _cmyk_to_srgb(colour, meta.icc_profile, srgb_icc, notes)
        else:
            deep, own = deep_colour.lab_to_srgb(np.ascontiguousarray(colour), photometric, meta.icc_profile, srgb_icc)
            said = "through the embedded ICC profile" if own else "through a D50 Lab profile"
            notes.append(f"CIELab converted to sRGB{' at 16 bits' if deep.dtype == np.uint16 else ''} {said}")
        meta.icc_profile = srgb_icc
        deep, alpha = _apply_orientation(deep, alpha, orientation)
        if samples:
            return deep, alpha, deep.dtype.itemsize * 8, None
        return to_unit(deep), (None if alpha is None else to_unit(alpha)), deep.dtype.itemsize * 8, None
    assert im.mode == "CMYK" and _bits(im) == 8, "only TIFF has Lab, and every deep master is read above"
    try:
        im.load()
    except OSError as exc:
        raise TruncatedImageError(f"CMYK pixel data is incomplete: {exc}") from exc
    rgb = _cmyk_to_srgb(np.asarray(im), meta.icc_profile, srgb_icc, notes)
    meta.icc_profile = srgb_icc
    return (rgb if samples else to_unit(rgb)), None, 8, None


_PAST_COLOUR = {"CMYK": ("the CMYK inks", "only the four process inks are converted"),
                "LAB": ("the CIELab samples", "only L*, a* and b* are converted")}


def _cmyk_or_lab_channels(stored: np.ndarray, mode: str, extras: tuple[int, ...],
                          notes: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """A CMYK or Lab page's colour and its alpha (the first channel past it, where
    ExtraSamples names it alpha: Photoshop's transparency), straight; a channel past those (a
    spot colour, a saved selection) is left out with a note, as no ICC profile says what it
    is. Associated alpha is divided out of CMYK's inks; Lab's signed a* and b* are not
    multiplied by an alpha, so it is taken as it is, with a note."""
    colour, alpha, left = _split_channels(stored, 4 if mode == "CMYK" else 3, extras)
    if alpha is not None and extras[0] == tifffile.EXTRASAMPLE.ASSOCALPHA:
        if mode == "CMYK":
            colour = _straight(colour, alpha)
        else:
            notes.append("the CIELab samples' alpha is marked associated (multiplied in), which Lab cannot be: "
                         "taken as straight")
    past, kept = _PAST_COLOUR[mode]
    if left:
        notes.append(f"{left} channel(s) past {past}{' and alpha' if alpha is not None else ''} "
                     f"(a spot colour or a saved selection) left out: {kept}")
    return colour, alpha


def _cmyk_to_srgb(ink: np.ndarray, profile: bytes | None, srgb_icc: bytes, notes: list[str]) -> np.ndarray:
    rgb, refused = deep_colour.cmyk_to_srgb(ink, profile, srgb_icc)
    if refused:
        notes.append(f"CMYK ICC profile unusable ({refused}); converted without it")
    said = "through the embedded ICC profile" if profile and not refused else "naively, without an ICC profile"
    notes.append(f"CMYK converted to sRGB{' at 16 bits' if rgb.dtype == np.uint16 else ''} {said}")
    return rgb


def _apply_orientation(
    pixels: np.ndarray, alpha: np.ndarray | None, orientation: int
) -> tuple[np.ndarray, np.ndarray | None]:
    if orientation == 1:
        return pixels, alpha
    return upright(pixels, orientation), (None if alpha is None else upright(alpha, orientation))
