"""A master's metadata, read to be carried to its enhanced derivative.

EXIF, the ICC profile, XMP, IPTC, resolution and the master's own text (PNG text chunks, a
JPEG comment: captions, rights, authors) travel with the pixels, as far as the derivative's
format can hold them (``derivative_metadata`` fits and tells them the derivative).
A damaged EXIF block is dropped with a note; it never stops the pixels from being enhanced.
"""
from __future__ import annotations

import copy
import io
import itertools
import numbers
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import piexif
import tifffile
from PIL import ExifTags, Image, TiffTags

from . import cicp, exif_check, geotiff, heif_boxes, jp2_boxes, maker_note, photoshop_document, photoshop_resources
from . import png_chunks, tiff_entries, tiff_exif, xmp_extension
from .chain import icc
from .errors import UnsupportedImageError

EMPTY_EXIF = {"0th": {}, "Exif": {}, "GPS": {}, "Interop": {}}  # piexif's directories, none holding a tag

# TIFF tags that describe the file's own layout: meaningless (or wrong) in a derivative's EXIF,
# whether a TIFF page's tags or a JPEG's EXIF gives them (a phone's gives its width and height).
# Some are places in the master's bytes (SubIFDs, old-style JPEG's stream, fax parameters),
# which in a derivative's EXIF would send a reader to other bytes.
TIFF_LAYOUT_TAGS = {
    254, 255, 256, 257, 258, 259, 262, 266, 273, 277, 278, 279, 280, 281, 284, 292, 293, 317,
    320, 322, 323, 324, 325, 338, 339, 340, 341, 347, 529, 530, 531, 532, 700, 33723, 34377, 34675,
    263, 264, 265, 290, 291, 321,  # bilevel thresholding and halftone cells, grey response: the master's samples
    330, 400,  # SubIFDs, GlobalParametersIFD: places of further directories
    332, 333, 334, 336,  # inks of a separated (CMYK) image
    346, 433, 559, 32995, 32996, 32997, 32998, 34732, 50674,  # indexed, Lab decode range, strips, SGI, MRC, LERC
    *range(401, 406),  # a fax profile's coding
    512, 513, 514, 515, 517, 518, 519, 520, 521,  # old-style JPEG's stream and its tables
    33421, 33422,  # a sensor's colour filter pattern
}


@dataclass
class ImageMetadata:
    exif: dict[str, Any] | None = None
    icc_profile: bytes | None = None
    xmp: bytes | None = None
    xmp_extension: bytes | None = None  # a JPEG's extended XMP, which its main packet names (``xmp_extension``)
    dpi: tuple[float, float] | None = None
    aspect: tuple[float, float] | None = None  # (x, y) densities a file gives without a unit, where it gives no dpi
    orientation: int = 1
    orientation_from_xmp: bool = False  # no EXIF orientation, but XMP's tiff:Orientation: no decoder turns by it
    # a HEIC's rotation and mirroring boxes as an EXIF orientation: libheif turns its pixels by them as it
    # decodes, and pillow-heif sets the EXIF orientation to 1
    turned_by_boxes: int = 1
    # left, top, width and height of the part an AVIF's clean aperture keeps, in its coded image
    cut_to: tuple[int, int, int, int] | None = None
    text: dict[str, str] = field(default_factory=dict)  # keyword → text; a JPEG comment is "Comment"
    comments: tuple[bytes, ...] = ()  # a JPEG's comment segments as stored, carried byte for byte to a JPEG
    iptc: bytes | None = None  # IPTC-IIM records: captions, credit, keywords of older workflows
    photoshop: tuple[photoshop_resources.Resource, ...] = ()  # Photoshop's other resources that travel
    geo: geotiff.Georeference | None = None  # a TIFF page's GeoTIFF tags, for the master's pixel grid
    maker_note: maker_note.Placement | None = None  # a MakerNote whose places count from the EXIF header
    notes: list[str] = field(default_factory=list)

    @property
    def stored_turn(self) -> int:
        """The EXIF orientation by which the stored pixels became the decoded image: values
        counted along the stored pixels' axes (resolution, a subject's place) are turned by it."""
        return self.turned_by_boxes if self.turned_by_boxes != 1 else self.orientation


# Text not carried as it stands: XMP travels on its own, ImageMagick's raw EXIF dumps are read
# as the EXIF (and would contradict the derivative's new one), and Software names us on the derivative.
_TEXT_NOT_CARRIED = {"XML:com.adobe.xmp", "Raw profile type exif", "Raw profile type APP1", "Software"}
# ImageMagick's profiles kept as PNG text that are read as the metadata they hold, where the
# PNG has no chunk of its own for it (eXIf, an XMP iTXt; none for IPTC): older ImageMagick
# wrote every PNG's EXIF so, and Pillow reads it only for ``getexif``, so the capture date had
# been lost. A PNG derivative's IPTC records are written the same way (``png_chunks``).
_READ_PROFILES = {"exif", "APP1", "xmp", "iptc"}


def read_metadata(im: Image.Image, data: bytes) -> ImageMetadata:
    if im.format == "JPEG2000":  # Pillow reads none of a JP2's metadata boxes
        boxes = jp2_boxes.read(data)
        meta = ImageMetadata(icc_profile=boxes.icc, xmp=boxes.xmp)
        meta.iptc = _iptc_records(boxes.iptc, meta.notes)
        meta.exif = _read_exif(lambda: boxes.exif, meta.notes)
        _place_maker_note(meta, boxes.exif)
        meta.geo = _geojp2(boxes.geotiff, meta.notes)
        if boxes.gml:
            meta.notes.append("GMLJP2 georeferencing (GML in an association box) not carried: it is not read")
        dpi = boxes.dpi
    else:
        tiff = im.format == "TIFF"  # a page's own tags: Pillow's info keeps an earlier page's profile and resolution
        meta = ImageMetadata(icc_profile=(im.tag_v2.get(ICC_TIFF_TAG) if tiff else im.info.get("icc_profile")) or None)
        heif = heif_boxes.read(data) if im.format in ("AVIF", "HEIF") else heif_boxes.Primary()
        if im.format == "HEIF":
            meta.turned_by_boxes = heif.turn
        elif im.format == "AVIF" and heif.aperture and heif.aperture.before_turning:
            meta.cut_to = heif.aperture.rect(*im.size)  # as the decoder cuts it (``codecs._in_clean_aperture``)
        coded, profile = _code_point_colour(im, data, heif, meta.notes)
        if coded:
            meta.icc_profile = profile
        elif meta.icc_profile is None and im.format == "PNG":
            meta.icc_profile = _png_gamma_profile(im, data, meta.notes)
        xmp = im.info.get("xmp") or im.info.get("XML:com.adobe.xmp")
        meta.xmp = xmp.encode("utf-8") if isinstance(xmp, str) else (bytes(xmp) if xmp else None)
        if im.format == "JPEG":  # an MPO too (codecs)
            extended = [s for app, s in im.applist if app == "APP1" and s.startswith(xmp_extension.SIGNATURE)]
            meta.xmp_extension, said = xmp_extension.read(extended, meta.xmp)
            meta.notes.extend(said)
        meta.text, profiles = _read_text(im, data, meta.notes)
        if meta.xmp is None and "xmp" in profiles:
            meta.xmp = profiles["xmp"]
            del meta.text[png_chunks.RAW_PROFILE + "xmp"]  # it travels as the derivative's XMP
        if "iptc" in profiles:  # the records, or Photoshop's resources holding them, as ImageMagick keeps either
            del meta.text[png_chunks.RAW_PROFILE + "iptc"]  # they travel as the derivative's IPTC
        meta.comments = _jpeg_comment_segments(im)
        if tiff:
            records, resources, meta.geo = _tiff_page_tags(data, im.tell(), meta.notes)
        else:
            resources = photoshop_resources.from_jpeg([s for app, s in im.applist if app == "APP13"]) \
                if im.format == "JPEG" else im.document.resources \
                if isinstance(im, photoshop_document.PhotoshopImage) else b""
            records = profiles.get("iptc")
            if records and records.startswith(b"8BIM"):
                resources, records = records, None
        if resources:
            records, meta.photoshop = _photoshop(resources, records, meta.notes)
        meta.iptc = _iptc_records(records, meta.notes)
        raw = None if tiff else im.info.get("exif") or profiles.get("exif") or profiles.get("APP1")
        block = bytes(raw) if raw else None
        meta.exif = _read_exif(lambda: _tiff_exif(im) if tiff else block, meta.notes)
        if tiff and meta.exif is not None:
            _text_as_stored(im.getexif(), meta.exif)
        _place_maker_note(meta, data if tiff else block, im.tell() if tiff else None)
        dpi = _tiff_dpi(im, meta.notes) if tiff else im.info.get("dpi")
    orientation = None if meta.exif is None else meta.exif["0th"].get(piexif.ImageIFD.Orientation)
    if orientation is not None:
        if isinstance(orientation, int) and 1 <= orientation <= 8:
            meta.orientation = orientation
        else:
            meta.notes.append(f"EXIF orientation {orientation!r} is not 1-8: treated as 1")
    elif (turn := _xmp_orientation(meta.xmp)) not in (None, 1) and im.format in ("AVIF", "HEIF"):
        meta.notes.append(f"the XMP says orientation {turn} (tiff:Orientation), which in an {im.format} its rotation "
                          "and mirroring boxes decide instead (as viewers show it): not applied")
    elif turn not in (None, 1):
        meta.orientation, meta.orientation_from_xmp = turn, True
        meta.notes.append(f"orientation {turn} read from the XMP (tiff:Orientation): the file has no EXIF orientation")
    meta.dpi = _read_dpi(dpi, meta.exif)
    if meta.dpi and max(meta.dpi) > MAX_DPI:
        meta.notes.append(f"resolution tags say {max(meta.dpi):.4g} dpi, finer than any instrument's (0.05 nm a "
                          "pixel): taken for a tagging error, and the derivative carries no resolution")
        meta.dpi = None
    meta.aspect = None if meta.dpi else _read_aspect(im, meta.exif)
    return meta


def exif_colour_space(exif: dict[str, Any] | None) -> str | None:
    """The colour space a camera's EXIF names where it embeds no profile, as cameras in their
    Adobe RGB mode do (DCF's option files): ColorSpace uncalibrated with InteropIndex "R03",
    or the ColorSpace 2 some writers use instead. None where it names none but sRGB."""
    if not exif:
        return None
    space = exif.get("Exif", {}).get(piexif.ExifIFD.ColorSpace)
    index = exif.get("Interop", {}).get(piexif.InteropIFD.InteroperabilityIndex)
    r03 = isinstance(index, bytes) and index.rstrip(b"\x00 ") == b"R03"
    return "Adobe RGB" if space == 2 or space == 0xFFFF and r03 else None


_DCF_INDEX = {"sRGB": b"R98", "Adobe RGB": b"R03"}  # DCF's basic and option colour spaces


def exif_saying_colour_space(exif: dict[str, Any] | None, space: str) -> dict[str, Any] | None:
    """The master's EXIF saying what the pixels were converted to (``icc.SPACES``' names):
    ColorSpace sRGB, or uncalibrated for another space, and the DCF InteropIndex where the
    master has one (R98 for sRGB, R03 for Adobe RGB; none for a space DCF does not name), so
    that a reader going by the EXIF agrees with the profile the derivative carries."""
    if not exif:
        return exif
    said = copy.deepcopy(exif)
    said.setdefault("Exif", {})[piexif.ExifIFD.ColorSpace] = 1 if space == "sRGB" else 0xFFFF
    interop = said.get("Interop") or {}
    if piexif.InteropIFD.InteroperabilityIndex in interop:
        if space in _DCF_INDEX:
            interop[piexif.InteropIFD.InteroperabilityIndex] = _DCF_INDEX[space]
        else:
            del interop[piexif.InteropIFD.InteroperabilityIndex]
    return said


def _xmp_orientation(xmp: bytes | None) -> int | None:
    """XMP's tiff:Orientation, as an attribute or an element. Adobe's tools write it, into JPEG
    2000 and PNG files too, and turn the image by it where no EXIF orientation says otherwise
    (the Metadata Working Group's rule); so must the derivative, whose XMP says upright."""
    found = xmp and (re.search(rb"\btiff:Orientation\s*=\s*[\"']\s*(\d+)\s*[\"']", xmp)
                     or re.search(rb"<tiff:Orientation>\s*(\d+)\s*</tiff:Orientation>", xmp))
    return int(found[1]) if found and 1 <= int(found[1]) <= 8 else None


def _code_point_colour(im: Image.Image, data: bytes, boxes: heif_boxes.Primary,
                       notes: list[str]) -> tuple[bool, bytes | None]:
    """Whether the colour is named by H.273 code points (``cicp``), and the ICC profile they
    name (None for sRGB): an AVIF's or a HEIC's nclx colour box where it carries no profile, a
    PNG's cICP chunk, which decides over its iCCP, sRGB, gAMA and cHRM chunks (the PNG
    specification's order of precedence). ``boxes``: an AVIF's or a HEIC's (``heif_boxes``)."""
    if im.format == "AVIF":
        if im.info.get("icc_profile") or boxes.colour is None:
            return False, None
        points, grey, source = boxes.colour, boxes.grey, "the AVIF's nclx colour box"
    elif im.format == "HEIF":
        nclx = im.info.get("nclx_profile")
        if im.info.get("icc_profile") or not nclx:
            return False, None
        points = cicp.CodePoints(nclx["color_primaries"], nclx["transfer_characteristics"],
                                 nclx["matrix_coefficients"], bool(nclx["full_range_flag"]))
        grey, source = im.mode in ("L", "I;16"), "the HEIF's nclx colour box"
    elif im.format == "PNG" and (points := png_chunks.code_points(data)):
        if points.matrix != 0:  # the specification allows none but RGB's
            notes.append(f"the PNG's cICP chunk names matrix coefficients {points.matrix}, which RGB samples do not "
                         "have: the chunk is damaged and was not read")
            return False, None
        if not points.full_range:
            raise UnsupportedImageError("the PNG's cICP chunk says its samples are narrow-range (video levels), "
                                        "which is not processed; convert it to full-range samples")
        grey, source = png_chunks.is_grey(data), "the PNG's cICP chunk"
        if im.info.get("icc_profile"):
            notes.append("the PNG's cICP chunk decides its colour over its iCCP profile, as the PNG specification "
                         "says: that profile is not carried")
    else:
        return False, None
    profile = cicp.profile(points, grey, source)
    if profile:
        notes.append(f"colour named by {source} ({icc.description(profile)}) carried as an ICC profile, so the "
                     "derivative displays as the master does")
    return True, profile


_SRGB_CHROMATICITIES = (*icc.D65, *(c for xy in icc.SRGB_PRIMARIES for c in xy))  # cHRM's order: white, r, g, b


def _png_gamma_profile(im: Image.Image, data: bytes, notes: list[str]) -> bytes | None:
    """The colour space of a PNG told only by gAMA (and cHRM) chunks, as an ICC profile, where
    it is not sRGB: browsers honour those chunks, the derivative's formats do not all have
    them, and without them it would display otherwise than its master (a linear scan, gAMA
    1.0, far darker). A grey one, with alpha or without, gets a grey profile (cHRM says
    nothing of grey), which the encoder carries as an RGB one where the derivative stores
    the grey as colour."""
    gamma = im.info.get("gamma")
    grey = png_chunks.is_grey(data)
    if "srgb" in im.info or not gamma or gamma <= 0 or not (grey or im.mode in ("RGB", "RGBA", "P")):
        return None
    chroma = im.info.get("chromaticity") or _SRGB_CHROMATICITIES
    primaries_as_srgb = grey or all(abs(a - b) < 0.01 for a, b in zip(chroma, _SRGB_CHROMATICITIES))
    if abs(gamma - 1 / 2.2) < 0.005 and primaries_as_srgb:
        return None  # sRGB, as near as the chunks can say it
    name = f"PNG gAMA {gamma:g}" + (" and cHRM" if "chromaticity" in im.info and not grey else "")
    wx, wy, rx, ry, gx, gy, bx, by = chroma
    try:
        if grey:
            profile = icc.build_grey_profile(name, icc.Curve(gamma=1 / gamma))
        else:
            curve = icc.Curve(gamma=1 / gamma)
            space = icc.from_chromaticities(name, [(rx, ry), (gx, gy), (bx, by)], (wx, wy), curve)
            profile = icc.build_profile(space)
    except (ZeroDivisionError, ValueError, np.linalg.LinAlgError) as exc:
        notes.append(f"{name} unusable ({exc}): the image is taken as sRGB")
        return None
    notes.append(f"{name} carried as an ICC profile, so the derivative displays as the master does")
    return profile


def _read_text(im: Image.Image, data: bytes, notes: list[str]) -> tuple[dict[str, str], dict[str, bytes]]:
    """The master's own text, and the profiles ImageMagick kept as PNG text (``_READ_PROFILES``)."""
    if im.format == "PNG":
        found, problems = png_chunks.texts(data)
        notes.extend(problems)
        profiles = {}
        for keyword in found.keys() & {png_chunks.RAW_PROFILE + name for name in _READ_PROFILES}:
            try:
                profiles[keyword.removeprefix(png_chunks.RAW_PROFILE)] = png_chunks.raw_profile(found[keyword])
            except ValueError as exc:
                notes.append(f"ImageMagick's {keyword!r} text not read: {exc}")
        return {keyword: text for keyword, text in found.items() if keyword not in _TEXT_NOT_CARRIED}, profiles
    comments = _jpeg_comment_segments(im) or ((im.info["comment"],) if im.format == "GIF" and im.info.get("comment")
                                              else ())
    return ({"Comment": "\n".join(map(_comment_text, comments))} if comments else {}), {}


def _jpeg_comment_segments(im: Image.Image) -> tuple[bytes, ...]:
    """Every comment segment of a JPEG: Pillow's info keeps the last."""
    return tuple(s for app, s in im.applist if app == "COM" and s) if im.format == "JPEG" else ()


def _comment_text(comment: bytes) -> str:
    """A comment as text: neither JPEG nor GIF says its encoding. UTF-8 where it is that, else
    Latin-1, as older software wrote: decoded as UTF-8 with replacement, "München" in Latin-1
    had reached the derivative as "M\ufffdnchen"."""
    try:
        return comment.decode("utf-8")
    except UnicodeDecodeError:
        return comment.decode("latin-1")


IPTC_TIFF_TAG = 33723
PHOTOSHOP_TIFF_TAG = 34377
ICC_TIFF_TAG = 34675


def _iptc_records(records: bytes | None, notes: list[str]) -> bytes | None:
    if not records:
        return None
    if not records.startswith(b"\x1c"):
        notes.append("IPTC block dropped: it holds no IPTC-IIM records")
        return None
    return bytes(records)


def _tiff_page_tags(data: bytes, frame: int,
                    notes: list[str]) -> tuple[bytes | None, bytes | None, geotiff.Georeference | None]:
    """A TIFF page's IPTC records, Photoshop resources and georeferencing, read with tifffile
    (which names Photoshop's layers without reading them): Photoshop stores the records as
    LONGs, of which Pillow keeps one, and Pillow reads no GeoTIFF tag. The header was read by
    Pillow, so a tag tifffile cannot parse is not worth a failure (tifffile's own complaints
    are noted with the page's, ``tiff_log``)."""
    records = resources = geo = None
    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            page = tif.pages[frame]
            records, resources = page.tags.valueof(IPTC_TIFF_TAG), page.tags.valueof(PHOTOSHOP_TIFF_TAG)
            geo, said = geotiff.read(page)
            notes.extend(said)
            if layers := page.tags.get(tiff_entries.IMAGE_SOURCE_DATA):  # its value is not read (tifffile)
                notes.append(f"Photoshop's layers ({layers.count:,} bytes of ImageSourceData) not carried: the "
                             "derivative is made from the flattened image")
    except Exception:
        pass
    records = records if isinstance(records, bytes) else None
    return records, (resources if isinstance(resources, bytes) else None), geo


def _geojp2(tiff: bytes | None, notes: list[str]) -> geotiff.Georeference | None:
    """A JP2's GeoJP2 georeferencing: the tags of the 1 x 1 GeoTIFF in its box, which place the
    JP2's own pixels. It had been passed over without a word."""
    if not tiff:
        return None
    try:
        with tifffile.TiffFile(io.BytesIO(tiff)) as tif:
            geo, said = geotiff.read(tif.pages[0])
    except Exception as exc:  # tifffile raises many types on a damaged structure
        notes.append(f"GeoJP2 georeferencing not read ({type(exc).__name__}: {exc})")
        return None
    notes.extend(said)
    return geo


def _photoshop(stored: bytes, records: bytes | None,
               notes: list[str]) -> tuple[bytes | None, tuple[photoshop_resources.Resource, ...]]:
    """The IPTC records (a TIFF's own tag first, else the resources') and the resources that travel."""
    resources, said = photoshop_resources.read(stored)
    kept, left_out = photoshop_resources.carried(resources)
    notes.extend(said + left_out)
    iptc = b"".join(r.data for r in resources if r.ident == photoshop_resources.IPTC)
    return records or iptc or None, kept


def _tiff_exif(im: Image.Image) -> bytes | None:
    """A TIFF page's tags as an EXIF block, less those of the file's own layout."""
    tags = im.getexif()
    for tag in list(tags):
        if tag in TIFF_LAYOUT_TAGS or tag == ExifTags.Base.Orientation and tag not in im.tag_v2:
            del tags[tag]  # Pillow puts an XMP tiff:Orientation in for a missing tag: the decoder does not turn by it
    if tags.bigtiff:
        _as_classic_tiff(tags)
    return tags.tobytes() if len(tags) else None


def _place_maker_note(meta: ImageMetadata, block: bytes | None, page: int | None = None) -> None:
    """Where the master's MakerNote lay in ``block`` (an EXIF block's TIFF structure, after
    ``Exif\\0\\0`` or not, or a TIFF master whose ``page`` it is under), for moving its values'
    places with it."""
    if not (block and meta.exif and tiff_exif.MAKER_NOTE in meta.exif["Exif"]):
        return
    block = block[6:] if block.startswith(b"Exif\x00\x00") else block
    try:
        directory = None if page is None else next(itertools.islice(tiff_entries.chain(block), page, None))
    except (ValueError, StopIteration, struct.error):
        return  # the page's directory is not found again: the note is carried as stored
    meta.maker_note, said = maker_note.read(block, directory)
    meta.notes.extend(said)


def _text_as_stored(tags: Image.Exif, exif: dict[str, Any]) -> None:
    """Pillow hands a TIFF's ASCII tags back as text decoded as Latin-1, and writes text back as
    ASCII with a '?' for every other byte on the way to the EXIF reader: "© Stadtarchiv
    München" in a master's Copyright came out as "?? Stadtarchiv M??nchen", a camera owner in
    its Exif directory as "J?rgen Wei?". Once the block is read, each such tag of the first
    directory and of the Exif, GPS and Interop ones gets the bytes the master holds back
    (Latin-1 maps every byte to one character and back)."""
    directories = {"0th": dict(tags), "Exif": tags.get_ifd(ExifTags.IFD.Exif),
                   "GPS": tags.get_ifd(ExifTags.IFD.GPSInfo), "Interop": tags.get_ifd(ExifTags.IFD.Interop)}
    for name, read in directories.items():
        for tag, value in read.items():
            if (isinstance(value, str) and not value.isascii() and tag in exif[name]
                    and piexif.TAGS[name].get(tag, {}).get("type") == piexif.TYPES.Ascii):
                exif[name][tag] = value.encode("latin-1", "replace")


def _as_classic_tiff(tags: Image.Exif) -> None:
    """piexif reads classic TIFF only, so a BigTIFF master's tags are written back classic: the
    sub-directories are read first, while the file is still parsed as BigTIFF."""
    for pointer in (ExifTags.IFD.Exif, ExifTags.IFD.GPSInfo):
        if pointer in tags:
            tags.get_ifd(pointer)  # kept, so tobytes() does not parse it again as classic TIFF
    if ExifTags.IFD.Exif in tags and ExifTags.IFD.Interop in tags.get_ifd(ExifTags.IFD.Exif):
        tags.get_ifd(ExifTags.IFD.Interop)
    tags.bigtiff = False


def _read_exif(raw_exif: Callable[[], bytes | None], notes: list[str]) -> dict[str, Any] | None:
    try:
        raw = raw_exif()
        if raw is None:
            return None
        raw, damaged = exif_check.repaired(raw)
        notes.extend(damaged)
        exif = piexif.load(raw)
        exif.pop("thumbnail", None)
        exif.pop("1st", None)
        skipped = _skipped_by_piexif(raw, exif)
        if skipped:
            notes.append(f"EXIF tags not carried, unknown to the EXIF writer: {', '.join(skipped)}")
        _keep_writable(exif, notes)
        tiff_exif.block(exif)  # proves the block can be written back before we rely on it
        return exif
    except Exception as exc:  # piexif and Pillow raise many types on damaged blocks
        notes.append(f"corrupt EXIF dropped ({type(exc).__name__}: {exc})")
        return None


def _skipped_by_piexif(raw: bytes, exif: dict[str, Any]) -> list[str]:
    """piexif passes over tags it has no name for (a private tag, Photoshop's layers) without a
    word; Pillow reads the same bytes, so what it sees and piexif does not is named."""
    seen = Image.Exif()
    seen.load(raw)
    ifds = {"0th": dict(seen), "Exif": seen.get_ifd(ExifTags.IFD.Exif), "GPS": seen.get_ifd(ExifTags.IFD.GPSInfo)}
    return [
        f"{TiffTags.lookup(tag).name} ({tag})" if ifd == "0th" else f"{ifd} {tag}"
        for ifd, tags in ifds.items() for tag in tags
        if tag not in exif.get(ifd, {}) and not (ifd == "0th" and tag in geotiff.TAGS)  # those travel on their own
    ]


def _writes(ifd: str, tag: int, value: Any) -> bool:
    try:
        piexif.dump({**EMPTY_EXIF, ifd: {tag: value}})
    except Exception:  # piexif's refusals are ValueError, KeyError or worse
        return False
    return True


def _keep_writable(exif: dict[str, Any], notes: list[str]) -> None:
    """A tag stored in a type piexif does not expect (a maker note as bytes of another type, a
    float where a fraction belongs) would stop the whole block from being written back and
    cost the capture date and GPS with it: such a tag is converted, or else dropped by name.
    Bytes given the type EXIF names for them are the same bytes, and go unsaid: Pillow writes
    a TIFF master's MakerNote as BYTEs on its way to the EXIF reader, and every such master
    had been said to hold it in the wrong type."""
    try:
        piexif.dump(exif)
        return
    except Exception:
        pass
    converted, dropped = [], []
    for ifd in EMPTY_EXIF:
        tags = exif.get(ifd) or {}
        for tag, value in list(tags.items()):
            if _writes(ifd, tag, value):
                continue
            relabelled = isinstance(value, tuple) and all(isinstance(v, int) and 0 <= v < 256 for v in value)
            if relabelled:
                tags[tag] = bytes(value)
            elif isinstance(value, float):
                tags[tag] = tiff_exif.rational(value)
            if tags[tag] is not value and _writes(ifd, tag, tags[tag]):
                converted += [] if relabelled else [f"{ifd} {tag}"]
            else:
                del tags[tag]
                dropped.append(f"{ifd} {tag}")
    if converted:
        notes.append(f"EXIF tags rewritten in the type EXIF expects: {', '.join(converted)}")
    if dropped:
        notes.append(f"EXIF tags dropped, not writable as stored: {', '.join(dropped)}")


def _rational(value: Any) -> float | None:
    if isinstance(value, tuple) and len(value) == 2 and value[1]:
        return value[0] / value[1]
    return None


def _tiff_dpi(im: Image.Image, notes: list[str]) -> tuple[float, float] | None:
    x, y = im.tag_v2.get(282), im.tag_v2.get(283)
    if not all(value is None or isinstance(value, numbers.Real) for value in (x, y)):  # a damaged tag's type
        notes.append(f"TIFF resolution not read: XResolution {x!r} and YResolution {y!r} are not numbers")
        return None
    return _in_dpi(x and float(x), y and float(y), im.tag_v2.get(296, 2))


def _in_dpi(x: float | None, y: float | None, unit: object) -> tuple[float, float] | None:
    """X/YResolution per ResolutionUnit (TIFF's and EXIF's: 2 inch, the default; 3 centimetre) in dots per inch."""
    if not x or not y or unit not in (2, 3):
        return None
    factor = 2.54 if unit == 3 else 1.0
    return (x * factor, y * factor)


def _read_dpi(dpi: tuple[float, float] | None, exif: dict[str, Any] | None) -> tuple[float, float] | None:
    if dpi and all(float(d) > 0 for d in dpi):
        return (float(dpi[0]), float(dpi[1]))
    if exif:
        zeroth = exif["0th"]
        return _in_dpi(_rational(zeroth.get(piexif.ImageIFD.XResolution)),
                       _rational(zeroth.get(piexif.ImageIFD.YResolution)),
                       zeroth.get(piexif.ImageIFD.ResolutionUnit, 2))
    return None


def _read_aspect(im: Image.Image, exif: dict[str, Any] | None) -> tuple[float, float] | None:
    """Pixel densities without a unit, which say only how square the pixels are: a JFIF
    density of unit 0, a PNG pHYs of unit 0 (Pillow's ``aspect``), TIFF's or EXIF's
    ResolutionUnit 1. None where they are equal or absent."""
    if im.format == "TIFF":
        found = (im.tag_v2.get(282), im.tag_v2.get(283)) if im.tag_v2.get(296) == 1 else None
    elif im.format == "JPEG" and im.info.get("jfif_unit") == 0:
        found = im.info.get("jfif_density")
    else:
        found = im.info.get("aspect") if im.format == "PNG" else None
    if not found and exif and exif["0th"].get(piexif.ImageIFD.ResolutionUnit) == 1:
        found = (_rational(exif["0th"].get(piexif.ImageIFD.XResolution)),
                 _rational(exif["0th"].get(piexif.ImageIFD.YResolution)))
    if not found or not all(isinstance(v, numbers.Real) and v > 0 for v in found) or found[0] == found[1]:
        return None
    return (float(found[0]), float(found[1]))


# The finest resolution whose x8 derivative a rational still holds: 0.047 nm a pixel, finer
# than any instrument's. Tags beyond it are a tagging error (a resolution of 2^32 - 1 dpi).
MAX_DPI = tiff_exif.U32 / 8
