"""Damage in a master's compressed pixel data that the decoders the codecs use pass over in silence.

JPEG: libjpeg decodes on past most damage to the entropy-coded data. A changed byte
desynchronises the Huffman decoder, and every block after it comes out garbled or shifted in
colour, to the end of the image; libjpeg says so only in a warning ("Corrupt JPEG data: 114
extraneous bytes before marker 0xd9"), which OpenCV writes to stderr and Pillow drops. After
some damage it gives up, and OpenCV still returns the image, flat grey from there on.
libjpeg-turbo through simplejpeg, with warnings taken as errors, tells both. It decodes at an
eighth of the size: every coefficient is still read, which is where damage shows, but few are
transformed back into pixels (31 ms of the 254 ms a 16.8-Mpx photo takes to read on the
development VM, the check included: bench/damage_found.py).

TIFF: libtiff, under OpenCV, hands back a strip whose deflate stream is broken or whose LZW
or PackBits data decodes short, with the rest zero or garbled. Each strip or tile is expanded
again here and held to its own size: deflate carries a checksum, so any change in it is
found; LZW and PackBits carry none, so only a change that breaks the code stream or the
length is. A bitonal CCITT strip (Group 4, Group 3, Modified Huffman) is decoded row by row
(``ccitt.py``), since libtiff decodes on past a bad code word there too.
"""
from __future__ import annotations

import io
import zlib
from collections.abc import Callable, Iterator

import imagecodecs
import simplejpeg
import tifffile

from . import ccitt
from .jpeg_segments import LOSSLESS, SOS, Frame, frame, header_segments

# libjpeg's warning about a scan's header, not its data: the image decodes whole after it, and
# damage further on goes unseen.
_HARMLESS = "Invalid SOS parameters"
_LOSSLESS_SPACES = {"Gray": "GRAY", "RGB": "RGB", "CMYK": "CMYK"}  # simplejpeg's names for them


def in_jpeg(data: bytes) -> str | None:
    """libjpeg's words for damage it met decoding a JPEG's pixel data; None where there was none.

    The application segments (JFIF, EXIF, ICC, Adobe …) are left out first: libjpeg warns
    about some of them (an unknown JFIF revision or Adobe transform, a bad ICC segment), and
    with warnings taken as errors the check would end there, before the scan.

    A 12-bit JPEG, or a lossless one of 2 to 16 bits, is checked with its frame header told 8
    bits: simplejpeg's libjpeg reads 8-bit JPEGs only, but the entropy-coded data is laid out
    and decoded alike at every precision (its values are only larger, in categories libjpeg
    takes at 8 bits too), so libjpeg says what it meets in the scan; the pixels that come out
    are wrong, and are not looked at. imagecodecs' libjpeg, which decodes them, says nothing
    of damage: a changed byte had garbled a 12-bit scan in silence."""
    bare = _without_application_segments(data)
    found = frame(bare)
    if found is not None and found.precision != 8:
        bare = bare[:found.start + 4] + b"\x08" + bare[found.start + 5:]
    header = _header(bare, found)
    if header is None:
        return None  # a header libjpeg cannot read or warns about: the codecs' concern
    height, width, colour = header
    if found is not None and found.process in LOSSLESS:
        # libjpeg scales no lossless image, and converts none to another colour space: simplejpeg,
        # asked for an eighth, sized its buffer for one and libjpeg wrote the whole image into it
        # (a corrupted heap, a crashed worker); asked for grey, a lossless RGB one was "damaged".
        space = _LOSSLESS_SPACES.get(colour)
        options: dict[str, object] = {"colorspace": space, "min_width": width, "min_height": height}
        if space is None:
            return None  # no output libjpeg can give it unconverted
    else:
        options = {"colorspace": "CMYK" if colour in ("CMYK", "YCCK") else "GRAY",
                   "min_factor": 8, "min_width": 1, "min_height": 1}
    try:
        simplejpeg.decode_jpeg(bare, strict=True, **options)
    except ValueError as exc:
        return None if _HARMLESS in str(exc) else str(exc)
    return None


def _header(bare: bytes, found: Frame | None) -> tuple[int, int, str] | None:
    """Height, width and colour space as libjpeg reads them; None where it cannot.

    simplejpeg names the subsampling too, and raised a KeyError, the image then failing as an
    internal error, on one it has no name for that libjpeg-turbo reads and decodes: 4:4:1 (luma
    sampled 1 × 4, as ImageMagick's ``-sampling-factor 1x4`` writes, or jpegtran turning a 4:1:1
    JPEG). Size and colour space do not depend on the sampling factors, so such a header is read
    again with every component's told 1 × 1."""
    try:
        height, width, colour, _ = simplejpeg.decode_jpeg_header(bare)
    except ValueError:
        return None
    except KeyError:
        if found is None:
            return None  # already read once told 1 × 1, or no frame to tell
        told = bytearray(bare)
        for at in range(found.start + 11, min(found.start + 11 + 3 * found.components, len(told)), 3):
            told[at] = 0x11
        return _header(bytes(told), None)
    return height, width, colour


def _without_application_segments(data: bytes) -> bytes:
    """The JPEG without the APPn and COM segments before its first scan; the tables, the frame
    and the scans as they are. Where those segments cannot be walked, the JPEG as it is."""
    kept = [data[:2]]
    for marker, start, end in header_segments(data):
        if marker == SOS:  # the scan data and all that follows it
            kept.append(data[start:])
            return b"".join(kept)
        if not (0xE0 <= marker <= 0xEF or marker == 0xFE):
            kept.append(data[start:end])
    return data


_INFLATE_STEP = 16 << 20  # bytes of output at a time: a one-strip scan is not expanded whole


def _inflated_size(segment: memoryview, limit: int) -> int:
    stream, size = zlib.decompressobj(), 0
    while segment and not stream.eof and size < limit:
        size += len(stream.decompress(segment, _INFLATE_STEP))
        segment = stream.unconsumed_tail
    return min(size, limit)


def _lzw_size(segment: memoryview, limit: int) -> int:
    return len(imagecodecs.lzw_decode(segment, out=limit))  # stops at ``limit``


def _packbits_size(segment: memoryview, limit: int) -> int:
    try:
        return len(imagecodecs.packbits_decode(segment, out=limit))
    except imagecodecs.PackbitsError as exc:  # it raises where the output would pass ``limit``
        if "OUTPUT_TOO_SMALL" in str(exc):
            return limit
        raise


# How many bytes a segment expands to, up to a limit: a damaged one can claim far more than
# the image holds (LZW up to some thousand times its size), and one byte past the size is proof enough.
_EXPANDED_SIZE: dict[int, Callable[[memoryview, int], int]] = {5: _lzw_size, 8: _inflated_size,
                                                               32946: _inflated_size,  # deflate's older code
                                                               32773: _packbits_size}
_YCBCR, _SEPARATE, _LSB_FIRST = 6, 2, 2
_CCITT = {2: ccitt.MODIFIED_HUFFMAN, 3: ccitt.GROUP3, 4: ccitt.GROUP4}  # Compression tag values
_T4_OPTIONS, _T4_TWO_DIMENSIONAL, _T4_UNCOMPRESSED = 292, 1, 2


def in_tiff_page(data: bytes, frame: int) -> str | None:
    """What is wrong with the first damaged strip or tile of a TIFF's ``frame``-th directory; None where none is."""
    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            page = tif.pages[frame]
    except Exception:  # a damaged directory: the codecs' concern, which read it otherwise or refuse it
        return None
    if not isinstance(page.compression, int):  # a Compression entry damaged into several values: the same
        return None
    if page.compression == 7:  # JPEG: each segment a JPEG stream, its tables kept apart in JPEGTables
        tables = page.jpegtables or b""
        for n, segment in _segments(data, page):
            stream = tables[:-2] + bytes(segment[2:]) if tables else bytes(segment)  # the tables put in after SOI
            if said := in_jpeg(stream):
                return f"{_name(page, n)}: libjpeg: {said}"
        return None
    if not page.is_tiled and page.rowsperstrip < 1:  # a damaged directory: the codecs' concern
        return None
    if page.compression in _CCITT:
        return _in_ccitt(data, page)
    expand = _EXPANDED_SIZE.get(int(page.compression))
    if expand is None or page.photometric == _YCBCR:  # subsampled YCbCr has no simple segment size
        return None
    for n, segment in _segments(data, page):
        expected, last = _expected_size(page, n)
        try:
            size = expand(segment, expected + 1)
        except Exception as exc:  # the decoders raise their own errors on a broken stream
            return f"{_name(page, n)} cannot be expanded: {exc}"
        if size < expected:
            return f"{_name(page, n)} expands to {size:,} bytes, not {expected:,}"
        if size > expected and not last:  # a last strip may be coded past the image's end
            return f"{_name(page, n)} expands past its {expected:,} bytes"
    return None


def read_in_python(compression: object) -> bool:
    """Whether a TIFF page of this Compression is checked in Python (CCITT codings), not by a
    codec that lets other threads run."""
    return isinstance(compression, int) and compression in _CCITT


def ccitt_coding(page: tifffile.TiffPage) -> str | None:
    """How a bitonal CCITT page's strips are coded, in ``ccitt``'s names; None where they are
    not judged: a page that is not bitonal, a Group 3 page that allows the uncompressed mode
    (the reader does not follow it), or one whose T4Options is no number (a damaged
    directory, which the codecs read otherwise or refuse)."""
    if page.bitspersample != 1 or page.samplesperpixel != 1:
        return None
    coding = _CCITT[page.compression]
    if coding == ccitt.GROUP3:
        options = page.tags[_T4_OPTIONS].value if _T4_OPTIONS in page.tags else 0
        if not isinstance(options, int) or options & _T4_UNCOMPRESSED:
            return None
        if options & _T4_TWO_DIMENSIONAL:
            coding = ccitt.GROUP3_2D
    return coding


def _in_ccitt(data: bytes, page: tifffile.TiffPage) -> str | None:
    """Each strip or tile of a bitonal CCITT page, decoded row by row (``ccitt.py``)."""
    coding = ccitt_coding(page)
    if coding is None:
        return None
    width = page.tilewidth if page.is_tiled else page.imagewidth
    for n, segment in _segments(data, page):
        rows = page.tilelength if page.is_tiled else _strip_rows(page, n)[0]
        said = ccitt.strip_damage(bytes(segment), width, rows, lsb_first=page.fillorder == _LSB_FIRST, coding=coding)
        if said:
            return f"{_name(page, n)}: {said}"
    return None


def _segments(data: bytes, page: tifffile.TiffPage) -> Iterator[tuple[int, memoryview]]:
    view = memoryview(data)
    for n, (offset, count) in enumerate(zip(page.dataoffsets, page.databytecounts)):
        if count:  # a missing segment (sparse file) is the decoders' concern
            yield n, view[offset:offset + count]


def _expected_size(page: tifffile.TiffPage, n: int) -> tuple[int, bool]:
    """A segment's bytes once expanded, and whether it is the last strip of its plane."""
    samples = 1 if page.planarconfig == _SEPARATE else page.samplesperpixel
    if page.is_tiled:
        return page.tiledepth * page.tilelength * -(-page.tilewidth * samples * page.bitspersample // 8), False
    rows, last = _strip_rows(page, n)
    return rows * -(-page.imagewidth * samples * page.bitspersample // 8), last


def _strip_rows(page: tifffile.TiffPage, n: int) -> tuple[int, bool]:
    """The rows of a page's n-th strip, and whether it is the last strip of its plane."""
    per_plane = -(-page.imagelength // page.rowsperstrip)
    index = n % per_plane
    return min(page.rowsperstrip, page.imagelength - index * page.rowsperstrip), index == per_plane - 1


def _name(page: tifffile.TiffPage, n: int) -> str:
    return f"{'tile' if page.is_tiled else 'strip'} {n + 1} of {len(page.dataoffsets)}"
