"""The metadata a derivative carries: the master's, fitted to what the derivative's format
holds and told what the derivative is.

Its EXIF is rewritten so that it is honest about it: upright (orientation 1), its own pixel
size, resolution scaled so the physical size is unchanged, and marked as processed by us; its
XMP says the same where it states them, and names it a new document derived from the master.
What is read of a master is ``metadata``'s.
"""
from __future__ import annotations

import copy
import dataclasses
import re
import struct
from typing import Any
from xml.sax.saxutils import escape

import piexif

from . import metadata as md
from . import photoshop_resources, tiff_exif, xmp_extension, xmp_identity
from .chain import icc


# What each output format can hold beyond EXIF, ICC and resolution.
_JPEG_SEGMENT_BYTES = 65533
# (less room for the derivative's own sizes, which derivative_xmp may write with more digits)
_JPEG_XMP_BYTES = _JPEG_SEGMENT_BYTES - len(b"http://ns.adobe.com/xap/1.0/\x00") - 64
_TEXT_HELD = {"JPEG": {"Comment"}, "TIFF": set(), "WEBP": set()}  # PNG holds any text
# IPTC records and Photoshop's resources: a PNG holds them as ImageMagick's raw profile text,
# which it and exiftool read (PNG has no chunk for either)
_IPTC_HELD = {"JPEG", "TIFF", "PNG"}


def jpeg_comments(meta: md.ImageMetadata) -> bytes:
    """COM segments: a JPEG master's as they were, byte for byte and every one; else the text
    "Comment" (a PNG's, say) in UTF-8, over as many segments as it takes."""
    stored = meta.comments or ((meta.text["Comment"].encode("utf-8"),) if "Comment" in meta.text else ())
    pieces = [c[at:at + _JPEG_SEGMENT_BYTES] for c in stored for at in range(0, len(c), _JPEG_SEGMENT_BYTES)]
    return b"".join(b"\xff\xfe" + struct.pack(">H", len(piece) + 2) + piece for piece in pieces)


def jpeg_app13(meta: md.ImageMetadata) -> bytes:
    """A JPEG APP13 segment holding the Photoshop resources that travel and the IPTC-IIM records (0x0404)."""
    body = _app13_body(meta)
    return b"\xff\xed" + struct.pack(">H", len(body) + 2) + body


def _app13_body(meta: md.ImageMetadata) -> bytes:
    return photoshop_resources.SIGNATURE + photoshop_resources.joined(meta.photoshop, meta.iptc)


# A PNG's keywords that EXIF has a tag for, in a derivative of another format: the rights, the author, the caption.
# A comment (a JPEG's, a PNG's) goes to UserComment in a TIFF or WebP; a JPEG derivative holds it as it was.
_EXIF_HOMES = {"Copyright": ("0th", piexif.ImageIFD.Copyright), "Author": ("0th", piexif.ImageIFD.Artist),
               "Description": ("0th", piexif.ImageIFD.ImageDescription),
               "Comment": ("Exif", piexif.ExifIFD.UserComment)}


def _text_into_exif(exif: dict[str, Any] | None, text: dict[str, str],
                    held: set[str]) -> tuple[dict[str, Any], set[str], list[str]]:
    """The master's EXIF with its text that EXIF has a tag for (``_EXIF_HOMES``) and the format
    holds no other way (``held``), where the EXIF has no other value for the tag; the keywords
    it now holds, and those whose tag says otherwise. Until 2026-12-05 a PNG's Copyright was
    left out of a JPEG or TIFF derivative as text it had no place for, and a JPEG's comment
    out of a TIFF."""
    exif = copy.deepcopy(exif or md.EMPTY_EXIF)
    homed, differing = set(), []
    for keyword, (ifd, tag) in _EXIF_HOMES.items():
        if keyword not in text or keyword in held:
            continue
        value, stored = _exif_text(tag, text[keyword]), exif.setdefault(ifd, {}).get(tag)
        if stored is None:
            exif[ifd][tag] = value
        elif (stored if isinstance(stored, bytes) else str(stored).encode()).strip(b"\x00 ") != value.strip():
            differing.append(keyword)
            continue
        homed.add(keyword)
    return exif, homed, differing


def _exif_text(tag: int, text: str) -> bytes:
    """``text`` as the EXIF tag stores it: UTF-8 (EXIF's ASCII tags are carried byte for byte,
    whatever they encode), or for UserComment its character code and then ASCII or UCS-2 in the
    derivative block's byte order, little-endian (``tiff_exif``), as readers take it."""
    if tag != piexif.ExifIFD.UserComment:
        return text.encode("utf-8")
    return b"ASCII\x00\x00\x00" + text.encode("ascii") if text.isascii() else b"UNICODE\x00" + text.encode("utf-16-le")


def fitted_to(
    meta: md.ImageMetadata, fmt: str, *, software: str = "", description: str = ""
) -> tuple[md.ImageMetadata, list[str]]:
    """The master's metadata as the derivative's format can hold it, and a note for each thing
    it cannot: a derivative in another format never fails over metadata, nor loses it unsaid.
    ``software`` and ``description`` are the marking ``derivative_exif`` will add."""
    notes: list[str] = []
    changes: dict[str, Any] = {}
    homed: set[str] = set()
    if fmt in _TEXT_HELD and meta.text.keys() & _EXIF_HOMES.keys() - _TEXT_HELD[fmt]:
        exif, homed, differing = _text_into_exif(meta.exif, meta.text, _TEXT_HELD[fmt])
        meta = dataclasses.replace(meta, exif=exif)
        changes["exif"] = exif
        if differing:
            notes.append(f"text not carried, the EXIF saying otherwise: {', '.join(differing)}")
    if fmt == "JPEG" and meta.exif:
        changes["exif"] = _exif_within_jpeg(meta, software, description, notes)
    if fmt == "JPEG" and meta.xmp and (size := _identified_size(meta)) > _JPEG_XMP_BYTES:
        notes.append(f"XMP of {size:,} bytes not carried: a JPEG holds {_JPEG_XMP_BYTES:,}")
        changes["xmp"] = changes["xmp_extension"] = None
    elif fmt != "JPEG" and meta.xmp and meta.xmp_extension:  # one packet of any size: the extension joins it
        joined = xmp_extension.merged(meta.xmp, meta.xmp_extension)
        if joined is None:
            notes.append(f"extended XMP of {len(meta.xmp_extension):,} bytes not carried: it does not join the main "
                         "packet as XML")
        changes["xmp"], changes["xmp_extension"] = joined or meta.xmp, None
    if meta.geo and fmt != "TIFF":
        notes.append(f"GeoTIFF georeferencing not carried: {fmt} has no place for it")
        changes["geo"] = None
    if (meta.iptc or meta.photoshop) and fmt not in _IPTC_HELD:
        held = (["IPTC records"] if meta.iptc else []) + [photoshop_resources.named(meta.photoshop)]
        notes.append(f"{' and '.join(filter(None, held))} not carried: {fmt} has no place for them")
        changes["iptc"], changes["photoshop"] = None, ()
    elif meta.iptc and fmt == "JPEG" and len(_app13_body(meta)) > _JPEG_SEGMENT_BYTES:
        # beside the segment's headers and the resources that travel, less an odd length's padding byte
        room = _JPEG_SEGMENT_BYTES - len(_app13_body(dataclasses.replace(meta, iptc=b"\x1c"))) + 1
        notes.append(f"IPTC records of {len(meta.iptc):,} bytes not carried: a JPEG holds {room:,}")
        changes["iptc"] = None
    left_out = sorted(set(meta.text) - _TEXT_HELD[fmt] - _EXIF_HOMES.keys()) if fmt in _TEXT_HELD else []
    if left_out:
        notes.append(f"text not carried, {fmt} has no place for it: {', '.join(left_out)}")
    if left_out or homed:
        changes["text"] = {keyword: text for keyword, text in meta.text.items() if keyword in _TEXT_HELD[fmt]}
    return (dataclasses.replace(meta, **changes) if changes else meta), notes


def _identified_size(meta: md.ImageMetadata) -> int:
    """The packet's size once it names the derivative's identity (``xmp_identity``), which the
    token it is given does not change, and its profile, whose name may be longer than the
    master's (``derivative_xmp``)."""
    assert meta.xmp is not None
    try:
        size = len(xmp_identity.derived(meta.xmp.decode("utf-8"), "").encode("utf-8"))
    except UnicodeDecodeError:  # a UTF-16 packet, carried as it is
        return len(meta.xmp)
    return size + len((meta.icc_profile and icc.description(meta.icc_profile) or "").encode("utf-8"))


def _exif_within_jpeg(meta: md.ImageMetadata, software: str, description: str, notes: list[str]) -> dict[str, Any]:
    """The master's EXIF less its largest tags until the derivative's block fits a JPEG segment.
    A camera's MakerNote can fill most of the segment by itself, and with the derivative's own
    marking added, Pillow refused the block: an internal error for the image."""
    exif = copy.deepcopy(meta.exif or md.EMPTY_EXIF)

    def size() -> int:  # the sizes and resolution are written in fields of fixed width
        trial = dataclasses.replace(meta, exif=exif)
        return len(derivative_exif(trial, width=1, height=1, dpi=(1.0, 1.0), software=software,
                                   description=description))

    while (block_size := size()) > _JPEG_SEGMENT_BYTES:  # the marking alone is a few hundred bytes
        length, ifd, tag = max((_value_bytes(value), ifd, tag) for ifd, tags in exif.items() if isinstance(tags, dict)
                               for tag, value in tags.items() if tag not in _MARKED)
        del exif[ifd][tag]
        notes.append(f"EXIF tag {tag} ({tiff_exif.tag_name(ifd, tag)}) of {length:,} bytes not carried: the "
                     f"derivative's EXIF came to {block_size:,} bytes, and a JPEG holds {_JPEG_SEGMENT_BYTES:,}")
    return exif


# What ``derivative_exif`` writes itself: never the tags to leave out.
_MARKED = {piexif.ImageIFD.Software, piexif.ImageIFD.Orientation, piexif.ImageIFD.XResolution,
           piexif.ImageIFD.YResolution, piexif.ImageIFD.ResolutionUnit, piexif.ExifIFD.PixelXDimension,
           piexif.ExifIFD.PixelYDimension}


def _value_bytes(value: Any) -> int:
    if isinstance(value, (bytes, str)):
        return len(value)
    if isinstance(value, tuple):
        return sum(8 if isinstance(item, tuple) else 4 for item in value)
    return 4


def derivative_xmp(meta: md.ImageMetadata, *, width: int, height: int, channels: int, bits: int,
                   dpi: tuple[float, float] | None, software: str, description: str) -> bytes | None:
    """The master's XMP, saying what the derivative's EXIF and profile say: upright, its own
    pixel size and resolution, its samples (grey or RGB, and their bits: a CMYK master's XMP
    had gone on saying CMYK), its profile's name and its EXIF ColorSpace (a conversion to sRGB
    had left both naming Adobe RGB), its subject's place and its sensor's pixels per unit.
    Adobe's tools keep these in XMP as well, and a viewer that trusts the XMP orientation
    would turn an upright derivative a second time. It names itself a
    new instance of a new document derived from the master (``xmp_identity``; ``software`` and
    ``description`` are what the derivative says it is, as in its EXIF)."""
    try:
        text = meta.xmp.decode("utf-8") if meta.xmp else None
    except UnicodeDecodeError:  # a UTF-16 packet: rare, and left as it is
        return meta.xmp
    if text is None:
        return None
    grey = channels <= 2  # with alpha or without
    values = {"tiff:Orientation": "1", "tiff:ImageWidth": str(width), "tiff:ImageLength": str(height),
              "exif:PixelXDimension": str(width), "exif:PixelYDimension": str(height),
              "tiff:SamplesPerPixel": str(channels), "tiff:PhotometricInterpretation": "1" if grey else "2",
              "photoshop:ColorMode": "1" if grey else "3"}
    pairs = [tiff_exif.rational(v) for v in dpi or meta.aspect or ()]
    if pairs and None not in pairs:
        x, y = (f"{n}/{d}" for n, d in pairs)
        values |= {"tiff:XResolution": x, "tiff:YResolution": y, "tiff:ResolutionUnit": "2" if dpi else "1"}
    sub = (meta.exif or {}).get("Exif", {})
    if (space := sub.get(piexif.ExifIFD.ColorSpace)) is not None:
        values["exif:ColorSpace"] = str(space)
    for tag, name in _FOCAL_PLANE.items():  # as ``exif_geometry`` told the EXIF them, or gone with it
        if isinstance(value := sub.get(tag), tuple):
            values[name] = f"{value[0]}/{value[1]}"
        else:
            text = _without_property(text, name)
    for tag, name in _SUBJECT.items():
        text = _with_sequence(text, name, value if isinstance(value := sub.get(tag), tuple) else None)
    text = _with_sequence(text, "tiff:BitsPerSample", (bits,) * channels)
    profile = meta.icc_profile and icc.description(meta.icc_profile)
    if profile:
        values["photoshop:ICCProfile"] = profile
    else:  # none carried, or one without a name: a master's CMYK press profile named is no longer true
        text = _without_property(text, "photoshop:ICCProfile")
    token = _identity_token(software, description, width, height)
    return xmp_identity.derived(_with_properties(text, values), token).encode("utf-8")


def _identity_token(software: str, description: str, width: int, height: int) -> str:
    """What the derivative is, from which its IDs are derived: another enhancement, other IDs."""
    return f"{software}|{description}|{width}x{height}"


def _with_properties(text: str, values: dict[str, str]) -> str:
    """``text`` (an XMP packet) with each property it states given its new value; each is an
    attribute or an element, by Adobe's prefixes."""
    for name, value in values.items():
        value = escape(value, {'"': "&quot;", "'": "&apos;"})
        text = re.sub(rf'(\b{name}\s*=\s*)(["\'])[^"\']*\2', lambda m: f"{m[1]}{m[2]}{value}{m[2]}", text)
        text = re.sub(rf"(<{name}>)[^<]*(</{name}>)", lambda m: f"{m[1]}{value}{m[2]}", text)
    return text


# EXIF values counted in the master's pixels, by their XMP names (Adobe's tools copy them there)
_FOCAL_PLANE = {piexif.ExifIFD.FocalPlaneXResolution: "exif:FocalPlaneXResolution",
                piexif.ExifIFD.FocalPlaneYResolution: "exif:FocalPlaneYResolution"}
_SUBJECT = {piexif.ExifIFD.SubjectArea: "exif:SubjectArea", piexif.ExifIFD.SubjectLocation: "exif:SubjectLocation"}


def _with_sequence(text: str, name: str, values: tuple[int, ...] | None) -> str:
    """``text`` with the ordered list ``name`` holding ``values``, or without it where None."""
    items = "".join(f"<rdf:li>{v}</rdf:li>" for v in values or ())
    return re.sub(rf"<{name}>\s*<rdf:Seq>.*?</rdf:Seq>\s*</{name}>",
                  lambda _: f"<{name}><rdf:Seq>{items}</rdf:Seq></{name}>" if values else "", text, flags=re.S)


def _without_property(text: str, name: str) -> str:
    text = re.sub(rf"""\s{name}\s*=\s*(?:"[^"<]*"|'[^'<]*')""", "", text)
    return re.sub(rf"<{name}>[^<]*</{name}>", "", text)


def marked_description(ours: str, master: str | None) -> str:
    """Our marking first, the master's own description kept after it."""
    master = (master or "").strip("\x00 ")
    return f"{ours} | master's description: {master}" if master else ours


def scaled_dpi(dpi: tuple[float, float] | None, scale: float) -> tuple[float, float] | None:
    """Same physical size at more pixels: resolution grows with the scale factor."""
    return None if dpi is None else (dpi[0] * scale, dpi[1] * scale)


def _ascii(text: str) -> bytes:
    return text.encode("ascii", errors="replace")


def derivative_exif(
    meta: md.ImageMetadata, *, width: int, height: int, dpi: tuple[float, float] | None, software: str, description: str
) -> bytes:
    """EXIF for the derivative (``Exif\\0\\0`` + TIFF bytes): the master's, updated and marked."""
    exif = copy.deepcopy(meta.exif or md.EMPTY_EXIF)
    zeroth, sub = exif.setdefault("0th", {}), exif.setdefault("Exif", {})
    for tag in md.TIFF_LAYOUT_TAGS & set(zeroth):
        del zeroth[tag]
    original = zeroth.get(piexif.ImageIFD.ImageDescription)
    master = original.decode("latin-1") if isinstance(original, bytes) else None  # its bytes, whatever they encode
    zeroth[piexif.ImageIFD.ImageDescription] = marked_description(description, master).encode("latin-1", "replace")
    zeroth[piexif.ImageIFD.Software] = _ascii(software)
    zeroth[piexif.ImageIFD.Orientation] = 1
    resolution = dpi or meta.aspect  # an aspect without a unit, as the chain left it: square where it stretched
    pairs = [tiff_exif.rational(v) for v in resolution or ()]
    if pairs and None not in pairs:
        zeroth[piexif.ImageIFD.XResolution], zeroth[piexif.ImageIFD.YResolution] = pairs
        zeroth[piexif.ImageIFD.ResolutionUnit] = 2 if dpi else 1
    sub[piexif.ExifIFD.PixelXDimension] = width
    sub[piexif.ExifIFD.PixelYDimension] = height
    if (master_id := sub.get(piexif.ExifIFD.ImageUniqueID)) is not None:
        master_id = master_id.decode("latin-1").strip("\x00 ") if isinstance(master_id, bytes) else repr(master_id)
        token = _identity_token(software, description, width, height)
        sub[piexif.ExifIFD.ImageUniqueID] = xmp_identity.unique_id(master_id, token).encode("ascii")
    sub.pop(piexif.ExifIFD.CompressedBitsPerPixel, None)  # the master's JPEG compression, not the derivative's
    return tiff_exif.block(exif, moved=meta.maker_note.moved_to if meta.maker_note else None)
