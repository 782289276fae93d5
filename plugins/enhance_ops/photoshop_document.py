"""Photoshop documents (PSD, and PSB for sides past 30,000 px): the merged image they hold.

Production masters are often kept as Photoshop files, 16-bit and layered. Pillow reads only
8-bit PSDs, no PSB, and takes the layers for frames. What a viewer shows, and what is
enhanced here, is the merged image Photoshop saves after the layers (with "Maximize
Compatibility", which it asks for by default; without it the merged image is left blank,
and such a file is refused). Its channels are stored one after another, raw, run-length
(PackBits) or deflated, and where the document has transparency the merged colour is
stored matted on white, which is undone here. The image resources hold the profile, EXIF,
XMP, IPTC and resolution (``metadata`` reads them through the header's ``info``).
"""
from __future__ import annotations

import functools
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import imagecodecs
import numpy as np
from PIL import Image

from . import photoshop_resources
from .chain import strips
from .errors import CorruptImageError, TruncatedImageError, UnsupportedImageError

_HEADER = struct.Struct(">4sH6xHIIHH")  # signature, version, channels, height, width, depth, colour mode
_KIND = {1: "PSD", 2: "PSB"}  # by version
_MAX_SIDE = {1: 30_000, 2: 300_000}
# Colour modes read: their channels in the merged image, and the Pillow mode of the header
# (a palette and a bitmap are read as the RGB and grey they show). Duotone's merged image is
# its grey, under the inks.
_READ = {0: (1, "1"), 1: (1, "L"), 2: (1, "P"), 3: (3, "RGB"), 4: (4, "CMYK"), 8: (1, "L")}
_NOT_READ = {7: "multichannel", 9: "Lab"}
_WITH_ALPHA = {"L": "LA", "RGB": "RGBA", "CMYK": "CMYK"}
_RAW, _RUN_LENGTH, _DEFLATE, _DEFLATE_PREDICTED = _COMPRESSIONS = range(4)
_ICC, _RESOLUTION, _VERSION_INFO, _EXIF, _XMP, _TRANSPARENT_INDEX = 1039, 1005, 1057, 1058, 1060, 1047
# Keys of the tagged blocks after the layers whose length is 8 bytes in a PSB; the layers of
# a 16- or 32-bit document are kept in Lr16 or Lr32 rather than in the layer info.
_LONG_KEYS = {b"LMsk", b"Lr16", b"Lr32", b"Layr", b"Mt16", b"Mt32", b"Mtrn", b"Alph", b"FMsk", b"lnk2", b"FEid",
              b"FXid", b"PxSD"}
_LAYER_KEYS = {b"Lr16", b"Lr32", b"Layr"}


@dataclass(frozen=True)
class Document:
    version: int  # 1: PSD, 2: PSB
    channels: int  # of the merged image: its colour, then transparency where ``transparent``, then saved ones
    width: int
    height: int
    depth: int  # bits per sample: 1 (bitmap), 8 or 16
    mode: int  # Photoshop's colour mode number
    colour_data: bytes  # an indexed document's palette, a duotone's inks
    resources: bytes  # the image resource blocks, as stored
    blocks: dict[int, bytes]  # the same, by their IDs
    layers: int
    transparent: bool  # the merged image's first channel past the colour is its transparency
    image_data: int  # where the merged image's compression word is

    @property
    def colours(self) -> int:
        return _READ[self.mode][0]

    @property
    def transparent_index(self) -> int | None:
        """An indexed document's palette entry that is transparent."""
        index = self.blocks.get(_TRANSPARENT_INDEX, b"")
        return int.from_bytes(index[:2], "big") if self.mode == 2 and len(index) >= 2 else None

    @property
    def kind(self) -> str:
        return _KIND[self.version]


class PhotoshopImage(Image.Image):
    """A document's header as the decoders' other headers are (a Pillow image not loaded):
    its format, mode, size, and the metadata ``info`` holds."""

    format = "PSD"
    format_description = "Adobe Photoshop document"
    document: Document

    def load(self) -> None:  # type: ignore[override]
        raise OSError("a Photoshop document's pixels are read by photoshop_document.samples, not by Pillow")


def open_header(data: bytes) -> PhotoshopImage:
    """The header of a document whose merged image ``samples`` reads; raises an ``ImageError``
    naming what is not read (a Lab or 32-bit document, one saved without its merged image)."""
    document = read(data)
    blocks = document.blocks
    im = PhotoshopImage()
    mode = _READ[document.mode][1]
    im._mode = _WITH_ALPHA[mode] if document.transparent and mode in _WITH_ALPHA else mode
    im._size = (document.width, document.height)
    im.document = document
    im.info = {"icc_profile": blocks.get(_ICC), "xmp": blocks.get(_XMP), "exif": blocks.get(_EXIF),
               "dpi": _dpi(blocks.get(_RESOLUTION))}
    if document.transparent_index is not None:
        im.info["transparency"] = document.transparent_index
    return im


def read(data: bytes) -> Document:
    """The document's layout, up to where its merged image starts."""
    if len(data) < _HEADER.size:
        raise TruncatedImageError.in_header("PSD")
    _, version, channels, height, width, depth, mode = _HEADER.unpack_from(data)
    if version not in _KIND:
        raise CorruptImageError(f"Photoshop header declares version {version} (1 is PSD, 2 PSB): the file is damaged")
    kind = _KIND[version]
    if not 1 <= channels <= 56 or depth not in (1, 8, 16, 32) or not 1 <= max(width, height) <= _MAX_SIDE[version] \
            or not min(width, height) or mode not in _READ and mode not in _NOT_READ:
        raise CorruptImageError(f"{kind} header declares {width}x{height}, {channels} channels of {depth} bits in "
                                f"colour mode {mode}, which no Photoshop document holds: the file is damaged")
    if mode in _NOT_READ:
        keep = "save it as a TIFF, which keeps Lab" if mode == 9 else "convert it to RGB or greyscale"
        raise UnsupportedImageError(f"{kind} in {_NOT_READ[mode]} colour is not processed; {keep}")
    if depth == 32:
        raise UnsupportedImageError(f"{kind} of 32-bit (float) samples is not processed (8- and 16-bit only); "
                                    "convert it to 16 bits")
    if (depth == 1) != (mode == 0) or channels < _READ[mode][0]:
        raise CorruptImageError(f"{kind} header declares {channels} channels of {depth} bits in colour mode {mode}, "
                                "which no Photoshop document holds: the file is damaged")
    palette_or_inks, at = _section(data, _HEADER.size, 4, kind)
    resource_blocks, at = _section(data, at, 4, kind)
    colour_data, resources = bytes(palette_or_inks), bytes(resource_blocks)
    layer_section, image_data = _section(data, at, 4 if version == 1 else 8, kind)  # often most of the file
    if image_data + 2 > len(data):
        raise TruncatedImageError.in_header(kind)
    if mode == 2 and len(colour_data) < 768:
        raise CorruptImageError(f"indexed {kind} holds a palette of {len(colour_data)} bytes, not 768: "
                                "the file is damaged")
    blocks = {r.ident: r.data for r in photoshop_resources.read(resources)[0]}
    if not _merged_image_kept(blocks.get(_VERSION_INFO)):
        raise UnsupportedImageError(f"{kind} saved without \"Maximize Compatibility\" holds no merged image, only its "
                                    "layers; save it again with that option on, or as a TIFF")
    layers = _layer_count(layer_section, version)
    transparent = layers < 0 and channels > _READ[mode][0] and mode not in (0, 2)  # a bitmap's, a palette's: none
    return Document(version, channels, width, height, depth, mode, colour_data, resources, blocks, abs(layers),
                    transparent, image_data)


def samples(data: bytes, document: Document,
            notes: list[str]) -> tuple[np.ndarray, np.ndarray | None, str | None]:
    """The merged image's colour (H, W, C) and transparency (H, W), uint8 or uint16: grey,
    RGB or CMYK as stored (CMYK's samples are inverted ink, 0 the most), a bitmap as grey and
    a palette as RGB (with its transparent index as alpha); and what damage was found in the
    run-length rows, which are decoded past (``_RunLength``). Saved channels past them are
    not decoded."""
    (compression,) = struct.unpack_from(">H", data, document.image_data)
    if compression not in _COMPRESSIONS:
        raise CorruptImageError(f"{document.kind}'s merged image declares compression {compression} (0 to 3 are "
                                "defined): the file is damaged")
    wanted = document.colours + document.transparent
    row_bytes = (document.width * document.depth + 7) // 8
    run_length = None
    plane: Callable[[int], np.ndarray]
    if compression == _RUN_LENGTH:
        plane = run_length = _RunLength(data, document, wanted, row_bytes)
    elif compression == _RAW:
        plane = _raw(data, document, wanted, row_bytes)
    else:
        plane = _inflated(data, document, wanted, row_bytes, predicted=compression == _DEFLATE_PREDICTED).__getitem__
    notes.extend(_left_out(document, wanted))
    colour, alpha = _assembled(plane, document, wanted)
    return colour, alpha, run_length.said() if run_length is not None else None


def _assembled(plane: Callable[[int], np.ndarray], document: Document,
               wanted: int) -> tuple[np.ndarray, np.ndarray | None]:
    if document.depth == 1:  # a bitmap's 1 is black
        bits = np.unpackbits(plane(0), axis=1)[:, :document.width]
        return (np.uint8(255) - bits * np.uint8(255))[:, :, None], None
    if document.mode == 2:
        return _from_palette(plane(0), document)
    # Each channel decoded and put in its place on a lane, the samples' memory taken once
    stored = np.dtype(">u2") if document.depth == 16 else np.dtype(np.uint8)
    colour = np.empty((document.height, document.width, document.colours), stored.newbyteorder("="))
    alpha = np.empty(colour.shape[:2], colour.dtype) if document.transparent else None
    into = [colour[:, :, index] for index in range(document.colours)] + ([alpha] if alpha is not None else [])

    def fill(index: int) -> None:
        into[index][...] = plane(index).view(stored)

    strips.in_lanes([functools.partial(fill, index) for index in range(wanted)])
    if alpha is not None:
        _unmatte(colour, alpha)
    return colour, alpha


def _section(data: bytes, at: int, length_bytes: int, kind: str) -> tuple[memoryview, int]:
    """A section's bytes, after its length, not copied (the layers' can be gigabytes), and
    where the next begins."""
    start = at + length_bytes
    if start > len(data):
        raise TruncatedImageError.in_header(kind)
    end = start + int.from_bytes(data[at:start], "big")
    if end > len(data):
        raise TruncatedImageError.in_header(kind)
    return memoryview(data)[start:end], end


def _merged_image_kept(version_info: bytes | None) -> bool:
    """The version info's hasRealMergedData (after its version word): 0 where the document
    was saved without "Maximize Compatibility". A document without the resource keeps it."""
    return version_info is None or len(version_info) < 5 or version_info[4] != 0


def _layer_count(section: bytes | memoryview, version: int) -> int:
    """The layer count of the layer info, or of the tagged block holding a 16- or 32-bit
    document's layers: negative where the merged image's first extra channel is its
    transparency. 0 where the section is empty or cannot be walked."""
    size = 4 if version == 1 else 8
    info_length = int.from_bytes(section[:size], "big")
    if info_length >= 2 and len(section) >= size + 2:
        return struct.unpack_from(">h", section, size)[0]
    at = size + info_length
    if at + 4 > len(section):
        return 0
    at += 4 + int.from_bytes(section[at:at + 4], "big")  # the global layer mask info
    while at + 12 <= len(section) and bytes(section[at:at + 4]) in (b"8BIM", b"8B64"):
        key = bytes(section[at + 4:at + 8])
        length_bytes = 8 if version == 2 and key in _LONG_KEYS else 4
        start = at + 8 + length_bytes
        length = int.from_bytes(section[at + 8:start], "big")
        if key in _LAYER_KEYS and length >= 2 and start + 2 <= len(section):
            return struct.unpack_from(">h", section, start)[0]
        at = start + length + length % 2
    return 0


def _raw(data: bytes, document: Document, wanted: int, row_bytes: int) -> Callable[[int], np.ndarray]:
    """A call giving a wanted channel's rows, uncompressed, as a view of ``data``."""
    start, size = document.image_data + 2, document.height * row_bytes
    if start + wanted * size > len(data):
        raise TruncatedImageError.in_pixels(document.kind)
    return lambda index: np.frombuffer(data, np.uint8, size, start + index * size).reshape(document.height, row_bytes)


class _RunLength:
    """The wanted channels' rows from PackBits, a channel a call: each row's packed length is
    listed first, for every channel of the merged image. PackBits carries no checksum, but a
    damaged row mostly decodes to the wrong length: a channel that does is decoded again row
    by row, each damaged row kept as far as it decodes (blank past that), and the damage said,
    as libtiff decodes past a TIFF's; one with most of its rows damaged is refused."""

    def __init__(self, data: bytes, document: Document, wanted: int, row_bytes: int) -> None:
        count_type = ">u2" if document.version == 1 else ">u4"
        table = document.image_data + 2
        data_start = table + document.channels * document.height * np.dtype(count_type).itemsize
        if data_start > len(data):
            raise TruncatedImageError.in_pixels(document.kind)
        packed = np.frombuffer(data, count_type, wanted * document.height, table)  # not the saved channels'
        self.ends = data_start + np.cumsum(packed, dtype=np.int64)
        if self.ends[-1] > len(data):
            raise TruncatedImageError.in_pixels(document.kind)
        self.starts = np.concatenate([[data_start], self.ends[:-1]])
        self.data, self.document, self.row_bytes = memoryview(data), document, row_bytes
        self.damage: dict[int, str] = {}

    def __call__(self, index: int) -> np.ndarray:
        height = self.document.height
        first, last = index * height, (index + 1) * height - 1
        try:
            rows = imagecodecs.packbits_decode(self.data[self.starts[first]:self.ends[last]])
        except Exception:  # imagecodecs' PackbitsError on a run past the data: found again row by row
            rows = b""
        if len(rows) == height * self.row_bytes:
            return np.frombuffer(rows, np.uint8).reshape(height, self.row_bytes)
        return self._by_rows(index)

    def _by_rows(self, index: int) -> np.ndarray:
        height, row_bytes = self.document.height, self.row_bytes
        plane, damaged = np.zeros((height, row_bytes), np.uint8), []
        for row in range(height):
            at = index * height + row
            try:
                decoded = imagecodecs.packbits_decode(self.data[self.starts[at]:self.ends[at]])
            except Exception:
                decoded = b""
            if len(decoded) != row_bytes:
                damaged.append((row, len(decoded)))
            kept = decoded[:row_bytes]
            plane[row, :len(kept)] = np.frombuffer(kept, np.uint8)
        if not damaged:  # the rows decode rightly one by one: a run that crossed from one row into the next
            return plane
        row, got = damaged[0]
        said = (f"channel {index + 1}: {len(damaged):,} of {height:,} rows decode to the wrong length, the first "
                f"row {row + 1} to {got:,} bytes, not {row_bytes:,}")
        if 2 * len(damaged) > height:
            raise CorruptImageError(f"{self.document.kind}'s run-length data is damaged ({said}): the file is damaged")
        self.damage[index] = said
        return plane

    def said(self) -> str | None:
        """The damage found, for the ledger (None where none was)."""
        return "; ".join(self.damage[index] for index in sorted(self.damage)) or None


def _inflated(data: bytes, document: Document, wanted: int, row_bytes: int, predicted: bool) -> np.ndarray:
    """The wanted channels from one deflate stream of all of them, inflated no further than
    they reach; ``predicted``: each row stored as differences from the sample before."""
    size = wanted * document.height * row_bytes
    stream = zlib.decompressobj()
    try:
        raw = stream.decompress(memoryview(data)[document.image_data + 2:], size)
    except zlib.error as exc:
        raise CorruptImageError(f"{document.kind}'s deflated merged image cannot be inflated ({exc}): "
                                "the file is damaged") from exc
    if len(raw) < size:
        raise (CorruptImageError(f"{document.kind}'s deflated merged image ends after {len(raw):,} of {size:,} bytes: "
                                 "the file is damaged") if stream.eof else TruncatedImageError.in_pixels(document.kind))
    planes = np.frombuffer(raw, np.uint8).reshape(wanted, document.height, row_bytes).copy()
    if predicted and document.depth == 16:
        rows = planes.view(">u2")
        rows[...] = np.cumsum(rows.astype(np.uint16), axis=2, dtype=np.uint16)
    elif predicted:
        np.cumsum(planes, axis=2, dtype=np.uint8, out=planes)
    return planes


def _unmatte(colour: np.ndarray, alpha: np.ndarray) -> None:
    """Photoshop stores a transparent document's merged colour over white (``c·a + 1 - a``,
    white being the most of every sample, also of CMYK's inverted ink): the colour itself
    is taken back, in place a strip at a time; fully transparent pixels keep what they show."""
    top = np.float32(np.iinfo(colour.dtype).max)

    def band(y0: int, y1: int) -> None:
        a = alpha[y0:y1, :, None].astype(np.float32)
        shown = colour[y0:y1].astype(np.float32)
        straight = np.where(a > 0, (shown - (top - a)) * top / np.maximum(a, 1), shown)
        colour[y0:y1] = np.clip(np.rint(straight), 0, top)

    strips.map_bands(*colour.shape[:2], band)


def _from_palette(indices: np.ndarray, document: Document) -> tuple[np.ndarray, np.ndarray | None]:
    palette = np.frombuffer(document.colour_data[:768], np.uint8).reshape(3, 256).T
    if document.transparent_index is None:
        return palette[indices], None
    return palette[indices], np.where(indices == document.transparent_index, 0, 255).astype(np.uint8)


def _left_out(document: Document, wanted: int) -> list[str]:
    said = [f"duotone {document.kind}: its grey image is enhanced, without the inks Photoshop prints it with"] \
        if document.mode == 8 else []
    if document.layers:
        layers = f"{document.layers} layers" if document.layers > 1 else "layer"
        said.append(f"the {document.kind}'s {layers} not carried: the merged image saved with them (the document as "
                    "Photoshop shows it flattened) is enhanced")
    if document.channels > wanted and document.mode != 2:
        said.append(f"{document.channels - wanted} saved channel(s) of the {document.kind} (selections, masks or "
                    "spot colours) not carried")
    return said


def _dpi(resolution: bytes | None) -> tuple[float, float] | None:
    """ResolutionInfo's horizontal and vertical resolution (16.16 fixed point), which it keeps
    in pixels per inch whichever unit it shows them in, to a thousandth (ImageMagick writes
    600 ppi as 600.00002). Under 1 ppi is no resolution: ImageMagick's word for none."""
    if resolution is None or len(resolution) < 16:
        return None
    across, down = (round(int.from_bytes(resolution[at:at + 4], "big") / 65536, 3) for at in (0, 8))
    return (across, down) if min(across, down) >= 1 else None
