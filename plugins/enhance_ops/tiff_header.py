"""TIFF pages of a sample layout or compression Pillow does not read, opened for their tags alone.

Pillow opens no TIFF of 10-, 12- or 14-bit colour, of 12-bit grey stored big-endian, of
16-bit grey with alpha, of 16-bit grey stored big-endian white-is-zero, of 8-bit ICCLab, or
of most CMYK or Lab with a channel past the colour (alpha, a spot colour), nor one
compressed with JPEG 2000, JPEG XL or LERC, though each is a sound scan whose samples
tifffile decodes (``codecs._tiff_samples``, ``codecs._to_srgb``). Its refusal is of the
layout or the compression alone: the page's tags, which carry its metadata (EXIF, ICC
profile, XMP, IPTC, resolution, orientation), read as any other TIFF's. So such a page is
opened with a stand-in layout of the same channels that Pillow knows, uncompressed, and its
own tags are put back at once: the image describes the file but holds no pixels (``load``
fails), which tifffile reads.
"""
from __future__ import annotations

import logging
from typing import BinaryIO

import tifffile
from PIL import TiffImagePlugin

BITS, COMPRESSION, PHOTOMETRIC, FILL_ORDER, SAMPLES, PLANAR, EXTRA_SAMPLES, SAMPLE_FORMAT = \
    258, 259, 262, 266, 277, 284, 338, 339
INK_SET = 332  # 1 (or absent): the four process inks, CMYK; 2: other inks, named in InkNames
# a stand-in's planes are contiguous (no PlanarConfiguration): Pillow lays out no tiles it could not read
_LAYOUT = (BITS, COMPRESSION, PHOTOMETRIC, FILL_ORDER, SAMPLES, PLANAR, EXTRA_SAMPLES, SAMPLE_FORMAT)
_COLOUR_CHANNELS = {  # photometric → colour channels: the layouts whose samples are read by tifffile (codecs)
    tifffile.PHOTOMETRIC.MINISBLACK: 1, tifffile.PHOTOMETRIC.MINISWHITE: 1, tifffile.PHOTOMETRIC.RGB: 3,
}
_ALPHA = (1, 2)  # ExtraSamples: associated, unassociated
_LAB = (tifffile.PHOTOMETRIC.CIELAB, tifffile.PHOTOMETRIC.ICCLAB)


def colour_channels(photometric: int, compression: int) -> int | None:
    """The colour channels tifffile reads a page into, for the layouts it is asked to read:
    grey and RGB as stored, and JPEG-compressed YCbCr, which libjpeg turns into RGB (the way
    a colour TIFF's JPEG strips are usually written); None for any other."""
    if photometric == tifffile.PHOTOMETRIC.YCBCR and compression == tifffile.COMPRESSION.JPEG:
        return 3
    return _COLOUR_CHANNELS.get(photometric)


class _ReadHere(logging.Filter):
    """Pillow logs an error for a page of more than six samples, which ``stand_in`` opens and
    tifffile reads, or which the codecs refuse by name: in a worker's log it read as a failure
    of an image that was enhanced."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("More samples per pixel than can be decoded")


logging.getLogger(TiffImagePlugin.__name__).addFilter(_ReadHere())


def stand_in(tags: TiffImagePlugin.ImageFileDirectory_v2) -> dict[int, object] | None:
    """Layout tags Pillow knows for a page of unsigned samples of up to 16 bits in grey or RGB,
    with alpha where it has it, compressed as tifffile decodes, for Lab Pillow does not open
    (16-bit, 8-bit ICCLab, or with channels past L*, a* and b*: the codecs convert it to sRGB
    at its own depth), and for 8- or 16-bit CMYK with channels past the inks (the codecs read
    them); None for another page (float, 32-bit, other inks, YCbCr but JPEG-compressed,
    palette, a compression neither knows)."""
    if tags.get(COMPRESSION, 1) not in tifffile.TIFF.DECOMPRESSORS:
        return None
    if tags.get(PHOTOMETRIC) == tifffile.PHOTOMETRIC.SEPARATED:
        return _cmyk_stand_in(tags)
    if tags.get(PHOTOMETRIC) in _LAB:
        bits, samples = tuple(tags.get(BITS, ())), tags.get(SAMPLES, 1)
        pillows = tags.get(PHOTOMETRIC) == tifffile.PHOTOMETRIC.CIELAB and bits[:1] == (8,) and samples == 3
        if not _one_depth(bits) or samples < 3 or pillows:
            return None  # Pillow reads 8-bit CIELab of three samples itself (not ICCLab)
        return {BITS: (8, 8, 8), COMPRESSION: 1, PHOTOMETRIC: tifffile.PHOTOMETRIC.CIELAB, SAMPLES: 3,
                EXTRA_SAMPLES: None}
    colour = colour_channels(tags.get(PHOTOMETRIC, -1), tags.get(COMPRESSION, 1))
    bits, samples, extras = tags.get(BITS, (1,)), tags.get(SAMPLES, 1), tags.get(EXTRA_SAMPLES, ())
    unsigned = set(tags.get(SAMPLE_FORMAT, (1,))) == {1}
    if colour is None or not unsigned or not all(1 <= b <= 16 for b in bits) or samples < colour:
        return None
    alpha = samples > colour and len(extras) > 0 and extras[0] in _ALPHA
    # grey and alpha: 8-bit LA, as Pillow has no 16-bit one; the others their 16-bit modes
    layout_bits = (8, 8) if colour == 1 and alpha else (16,) * (colour + alpha)
    return {BITS: layout_bits, COMPRESSION: 1, PHOTOMETRIC: 2 if colour == 3 else 1, SAMPLES: colour + alpha,
            EXTRA_SAMPLES: (2,) if alpha else None}


def _cmyk_stand_in(tags: TiffImagePlugin.ImageFileDirectory_v2) -> dict[int, object] | None:
    """8-bit CMYK for a page of the four process inks and more channels, all of 8 or all of
    16 unsigned bits; None for other inks or another depth."""
    bits, samples = tuple(tags.get(BITS, ())), tags.get(SAMPLES, 1)
    cmyk = tags.get(INK_SET, 1) == 1 and samples > 4 and set(tags.get(SAMPLE_FORMAT, (1,))) == {1}
    if not cmyk or not _one_depth(bits):
        return None
    return {BITS: (8, 8, 8, 8), COMPRESSION: 1, PHOTOMETRIC: tifffile.PHOTOMETRIC.SEPARATED, SAMPLES: 4,
            EXTRA_SAMPLES: None}


def _one_depth(bits: tuple[int, ...]) -> bool:
    """Every sample of 8 bits, or every one of 16: the depths the codecs convert CMYK and Lab at."""
    return len(set(bits)) == 1 and bits[0] in (8, 16)


class TagsOnlyTiff(TiffImagePlugin.TiffImageFile):
    """A TIFF whose pages Pillow reads as it reads any, but for a page of a layout or a
    compression it does not read, which it opens through ``stand_in`` (``tags_only`` then True)."""

    tags_only = False

    def _setup(self) -> None:
        self.tags_only = False
        try:
            super()._setup()
            return
        except (SyntaxError, KeyError, IndexError):  # an unknown mode or layout, a compression (KeyError), or
            # planes past those of the mode Pillow takes (IndexError: CMYK and a fifth plane)
            layout = stand_in(self.tag_v2)
            if layout is None:
                raise
        own = {tag: self.tag_v2[tag] for tag in _LAYOUT if tag in self.tag_v2}
        try:
            self._set_layout({tag: value for tag, value in layout.items() if value is not None})
            super()._setup()
        finally:
            self._set_layout(own)
        self.tile = []  # Pillow would decode the samples as the stand-in's
        self.tags_only = True

    def _set_layout(self, layout: dict[int, object]) -> None:
        for tag in _LAYOUT:
            if tag in self.tag_v2:
                del self.tag_v2[tag]
        for tag, value in layout.items():
            self.tag_v2[tag] = value


def open_page(file: BinaryIO, frame: int = 0) -> TagsOnlyTiff:
    """Page ``frame`` of a TIFF; raises as Pillow does where even its tags cannot be read."""
    im = TagsOnlyTiff(file)
    if frame:
        im.seek(frame)
    return im
