"""Which image formats the pipeline reads and writes, and its pixel limit: plain data.

Kept apart from ``codecs`` so that code deciding *which* files to process (the DAG's
discovery, the CLI's planning) does not import OpenCV or Pillow.
"""
from __future__ import annotations

import os

from .jp2_boxes import CODESTREAM_START, SIGNATURE

DEFAULT_MAX_PIXELS = int(os.environ.get("ENHANCE_MAX_PIXELS", "250000000"))

# PPM: Pillow's name for every Netpbm kind; HEIF: pillow-heif's for HEIC
READ_FORMATS = {"PNG", "JPEG", "TIFF", "WEBP", "BMP", "JPEG2000", "PPM", "GIF", "AVIF", "HEIF", "PSD"}
WRITE_FORMATS = {"PNG", "JPEG", "TIFF", "WEBP"}
EIGHT_BIT_FORMATS = {"JPEG", "WEBP"}  # written with 8 bits per sample only
SUFFIX = {"PNG": ".png", "JPEG": ".jpg", "TIFF": ".tif", "WEBP": ".webp"}
MAX_SIDE = {"JPEG": 65_500, "WEBP": 16_383}  # the longest width or height the format (its encoder) holds
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".mpo", ".tif", ".tiff", ".webp", ".bmp", ".jp2", ".j2k", ".j2c", ".jpf",
                  ".jpx", ".pbm", ".pgm", ".ppm", ".pnm", ".gif", ".avif", ".heic", ".heif",
                  ".jxl", ".psd", ".psb"}  # .jxl: a JPEG recompressed (jpeg_xl); .psb: a large PSD
# Other image formats an archive holds: listed and reported as failed (unsupported), never skipped
# silently. Anything else (sidecars such as .xmp, .txt, checksums) is left alone.
OTHER_IMAGE_SUFFIXES = {
    ".tga", ".ico", ".pcx",
    ".pam", ".pfm", ".dng", ".cr2", ".cr3", ".nef", ".arw", ".orf", ".rw2", ".raf",
    ".djvu", ".djv", ".pcd", ".jxr", ".wdp", ".hdp", ".exr", ".sgi", ".dds", ".qoi", ".xpm",
}  # DjVu: scanned books; Kodak Photo CD: the 1990s' photo digitization; JPEG XR; OpenEXR


_MASTER_SUFFIXES = IMAGE_SUFFIXES | OTHER_IMAGE_SUFFIXES


def is_master_name(name: str) -> bool:
    """A file a run takes, by its name: an image it reads, or one in another image format, which
    then fails as unsupported rather than go unmentioned. Hidden files are not: macOS leaves a
    ``._scan.jpg`` of resource data beside each file it copies, which is no image."""
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in _MASTER_SUFFIXES


# How each format's files begin: what a file holds, whatever its name says.
MAGIC = {b"\xff\xd8": "JPEG", b"\x89PNG": "PNG", b"II*\x00": "TIFF", b"MM\x00*": "TIFF", b"II+\x00": "TIFF",  # BigTIFF
         b"RIFF": "WEBP", SIGNATURE: "JPEG2000", CODESTREAM_START: "JPEG2000", b"GIF8": "GIF", b"8BPS": "PSD",
         **{b"P%d" % kind: "PPM" for kind in range(1, 7)}, b"P7": "PAM"}
# ISO base media files by their major brand: still images and sequences. A file whose brand
# names only the image file format (mif1, msf1) is told by its compatible brands, which
# ``HEAD_BYTES`` do not reach: such a file is taken for HEIC (HEVC) unless they say AV1.
_HEIF_BRANDS = {b"avif": "AVIF", b"avis": "AVIF", b"heic": "HEIF", b"heix": "HEIF", b"hevc": "HEIF",
                b"hevx": "HEIF", b"heim": "HEIF", b"heis": "HEIF", b"mif1": "HEIF", b"msf1": "HEIF"}
HEAD_BYTES = max(12, *map(len, MAGIC))  # an ISO base media file's brand ends at its 12th byte


def format_of(head: bytes) -> str | None:
    """The format a file's first bytes (``HEAD_BYTES`` of them are enough) say it is in."""
    if head[4:8] == b"ftyp" and (fmt := _HEIF_BRANDS.get(head[8:12])):
        listed = head[16:int.from_bytes(head[:4], "big")]  # the compatible brands, after the minor version
        compatible = {listed[at:at + 4] for at in range(0, len(listed), 4)}
        return "AVIF" if head[8:12] in (b"mif1", b"msf1") and b"avif" in compatible else fmt
    return next((fmt for magic, fmt in MAGIC.items() if head.startswith(magic)), None)


_NATIVE_JPEG_XL = "JPEG XL (encoded as such, not a JPEG recompressed without loss)"
# Formats no reader here opens, by their first bytes, so that such a file is refused by name
# (unsupported) rather than called no image at all. ISO base media files by their brand.
_OTHER_MAGIC = {b"FUJIFILMCCD-RAW": "Fujifilm RAF (camera raw)", b"IIRO": "Olympus ORF (camera raw)",
                b"MMOR": "Olympus ORF (camera raw)", b"IIRS": "Olympus ORF (camera raw)",
                b"IIU\x00": "Panasonic RW2 (camera raw)", b"\xff\x0a": _NATIVE_JPEG_XL,
                b"\x00\x00\x00\x0cJXL \r\n\x87\n": _NATIVE_JPEG_XL,  # one holding a JPEG is read (jpeg_xl)
                b"MM\x00+": "big-endian BigTIFF",  # Pillow reads its header as classic TIFF's
                b"AT&TFORM": "DjVu", b"II\xbc": "JPEG XR", b"v/1\x01": "OpenEXR"}
_BRANDS = {b"crx ": "Canon CR3 (camera raw)"}


def other_format_of(head: bytes) -> str | None:
    """The name of a format the pipeline does not read, where the file's first bytes say it."""
    if head[4:8] == b"ftyp":
        return _BRANDS.get(head[8:12])
    return next((fmt for magic, fmt in _OTHER_MAGIC.items() if head.startswith(magic)), None)
