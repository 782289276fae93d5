"""EXIF values counted in the master's pixels (the subject's place, the sensor's pixels per
millimetre, a phone's width and height) say the derivative's pixels."""
from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET

import numpy as np
import piexif
import heif_files
import pytest
from PIL import Image

from enhance_ops import exif_geometry
from enhance_ops import derivative_metadata as dmd
from enhance_ops.enhance import EnhanceOptions, Enhancer
from enhance_ops.metadata import ImageMetadata

SUBJECT = (56, 20, 12, 8)  # centre x, y and width, height of a bright patch in the stored pixels
STORED = (80, 48)  # width, height as stored


# What Adobe's tools copy of those EXIF values into XMP, in both of XMP's forms
XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
       b'<rdf:Description rdf:about="" xmlns:exif="http://ns.adobe.com/exif/1.0/" exif:FocalPlaneXResolution="4000/1"'
       b' exif:FocalPlaneYResolution="3000/1"><exif:SubjectArea>\n <rdf:Seq>\n  <rdf:li>56</rdf:li>\n'
       b'  <rdf:li>20</rdf:li>\n  <rdf:li>12</rdf:li>\n  <rdf:li>8</rdf:li>\n </rdf:Seq>\n</exif:SubjectArea>'
       b'<exif:SubjectLocation><rdf:Seq><rdf:li>56</rdf:li><rdf:li>20</rdf:li></rdf:Seq></exif:SubjectLocation>'
       b'</rdf:Description></rdf:RDF></x:xmpmeta>')


def _master(orientation: int, fmt: str = "JPEG") -> bytes:
    """A phone's photo as stored, its subject a bright patch on grey, with the EXIF and the XMP
    saying where. A HEIC or an AVIF is turned by rotation and mirroring boxes, which Pillow's
    and pillow-heif's writers make of the EXIF orientation (as an iPhone's HEIC has both)."""
    stored = np.full((STORED[1], STORED[0], 3), 60, np.uint8)
    x, y, w, h = SUBJECT
    stored[y - h // 2:y + h // 2, x - w // 2:x + w // 2] = 250
    exif = piexif.dump({
        "0th": {piexif.ImageIFD.Make: b"Phone", piexif.ImageIFD.Orientation: orientation,
                piexif.ImageIFD.ImageWidth: STORED[0], piexif.ImageIFD.ImageLength: STORED[1]},
        "Exif": {piexif.ExifIFD.SubjectArea: SUBJECT, piexif.ExifIFD.SubjectLocation: SUBJECT[:2],
                 piexif.ExifIFD.FocalPlaneXResolution: (4000, 1), piexif.ExifIFD.FocalPlaneYResolution: (3000, 1),
                 piexif.ExifIFD.FocalPlaneResolutionUnit: 3, piexif.ExifIFD.PixelXDimension: STORED[0],
                 piexif.ExifIFD.PixelYDimension: STORED[1]},
    })
    buf = io.BytesIO()
    Image.fromarray(stored).save(buf, fmt, quality=95, exif=exif, xmp=XMP)
    return buf.getvalue()


@pytest.mark.parametrize(("fmt", "orientation"), [
    *(("JPEG", turn) for turn in (1, 3, 6, 8, 5)), *(("HEIF", turn) for turn in (6, 7)), ("AVIF", 6)])
def test_the_derivatives_subject_area_is_where_its_subject_is(fmt: str, orientation: int) -> None:
    enhancer = Enhancer(EnhanceOptions(preset="fidelity", overrides=("superres.scale=2", "superres.models=[]")))
    result = enhancer.enhance(_master(orientation, fmt))
    out = Image.open(io.BytesIO(result.data))
    pixels, exif = np.asarray(out.convert("L")), out.getexif()
    sub = exif.get_ifd(0x8769)
    x, y, w, h = sub[piexif.ExifIFD.SubjectArea]
    turned = orientation in (5, 6, 7, 8)
    assert pixels.shape == ((160, 96) if turned else (96, 160))
    assert (w, h) == ((16, 24) if turned else (24, 16))
    assert pixels[y - h // 2 + 2:y + h // 2 - 2, x - w // 2 + 2:x + w // 2 - 2].min() > 200  # the patch, inside
    assert pixels[y - h // 2 - 3, x] < 100 and pixels[y + h // 2 + 2, x] < 100  # and grey above and below it
    assert pixels[y, x - w // 2 - 3] < 100 and pixels[y, x + w // 2 + 2] < 100  # and on either side
    assert sub[piexif.ExifIFD.SubjectLocation] == (x, y)
    # the sensor's size (pixels over pixels per unit) stays what it was, along the derivative's width and height
    sensor = (STORED[1] / 3000, STORED[0] / 4000) if turned else (STORED[0] / 4000, STORED[1] / 3000)
    assert out.width / sub[piexif.ExifIFD.FocalPlaneXResolution] == pytest.approx(sensor[0])
    assert out.height / sub[piexif.ExifIFD.FocalPlaneYResolution] == pytest.approx(sensor[1])
    assert sub[piexif.ExifIFD.PixelXDimension] == out.width and exif[piexif.ImageIFD.Make] == "Phone"
    assert piexif.ImageIFD.ImageWidth not in exif and piexif.ImageIFD.ImageLength not in exif  # the master's size
    xmp = out.info["xmp"].decode()  # says what the EXIF says
    assert re.findall(r"<exif:SubjectArea><rdf:Seq>(.*?)</rdf:Seq>", xmp) == [
        "".join(f"<rdf:li>{v}</rdf:li>" for v in (x, y, w, h))]
    assert re.findall(r"<exif:SubjectLocation><rdf:Seq>(.*?)</rdf:Seq>", xmp) == [
        f"<rdf:li>{x}</rdf:li><rdf:li>{y}</rdf:li>"]
    for name, tag in (("X", piexif.ExifIFD.FocalPlaneXResolution), ("Y", piexif.ExifIFD.FocalPlaneYResolution)):
        value = sub[tag]
        assert re.findall(rf'exif:FocalPlane{name}Resolution="(\d+)/(\d+)"', xmp) == [
            (str(value.numerator), str(value.denominator))]
    assert result.record["notes"] == []


def test_an_avifs_subject_area_is_moved_by_its_clean_aperture_cut() -> None:
    """libavif leaves an AVIF's clean aperture to the caller, which cuts the coded image to it
    before turning: the subject, placed in the coded image, is moved by the cut too."""
    master = heif_files.with_property(_master(1, "AVIF"), heif_files.clean_aperture(40, 32, (10, 1)))
    result = Enhancer(EnhanceOptions(preset="fidelity", overrides=("superres.scale=2", "superres.models=[]"))
                      ).enhance(master)
    out = Image.open(io.BytesIO(result.data))
    pixels, sub = np.asarray(out.convert("L")), out.getexif().get_ifd(0x8769)
    assert out.size == (80, 64)  # the 40 x 32 kept at (30, 8) of the 80 x 48 coded image, enlarged
    x, y, w, h = sub[piexif.ExifIFD.SubjectArea]
    assert (x, y, w, h) == (2 * (SUBJECT[0] - 30) + 1, 2 * (SUBJECT[1] - 8) + 1, 24, 16)
    assert pixels[y - h // 2 + 2:y + h // 2 - 2, x - w // 2 + 2:x + w // 2 - 2].min() > 200  # the patch
    assert pixels[y - h // 2 - 3, x] < 100 and pixels[y, x - w // 2 - 3] < 100  # and grey beside it
    assert any("cropped to its clean aperture" in note for note in result.record["notes"])
    cut = {"0th": {}, "Exif": {piexif.ExifIFD.SubjectLocation: (20, 20)}}  # left of what the cut keeps
    assert exif_geometry.resampled(cut, (40, 32), (80, 64), 1, (30, 8, 40, 32))[1] == [
        "EXIF SubjectLocation not carried: (20, 20) is not a place in the master's stored pixels that its clean "
        "aperture keeps"]


def test_a_subject_outside_the_stored_pixels_is_dropped_with_a_note() -> None:
    exif = {"0th": {}, "Exif": {piexif.ExifIFD.SubjectArea: (900, 10), piexif.ExifIFD.SubjectLocation: (5, 5)}}
    moved, notes = exif_geometry.resampled(exif, (80, 48), (160, 96), 1)
    assert piexif.ExifIFD.SubjectArea not in moved["Exif"] and moved["Exif"][piexif.ExifIFD.SubjectLocation] == (11, 11)
    assert notes == ["EXIF SubjectArea not carried: (900, 10) is not a place in the master's stored pixels"]
    assert exif["Exif"][piexif.ExifIFD.SubjectArea] == (900, 10)  # the master's own metadata is left as it was


def test_a_subject_past_what_a_short_holds_in_the_derivative_is_dropped_with_a_note() -> None:
    exif = {"0th": {}, "Exif": {piexif.ExifIFD.SubjectLocation: (12000, 100)}}
    moved, notes = exif_geometry.resampled(exif, (12001, 8000), (96008, 64000), 1)
    assert moved["Exif"] == {} and notes == [
        "EXIF SubjectLocation not carried: in the derivative's pixels it is (96004, 804), past what the tag holds "
        "(65535)"]


def test_a_damaged_focal_plane_resolution_is_dropped_not_scaled() -> None:
    exif = {"Exif": {piexif.ExifIFD.FocalPlaneXResolution: (4000, 0), piexif.ExifIFD.FocalPlaneYResolution: (3000, 1)}}
    moved, notes = exif_geometry.resampled(exif, (80, 48), (320, 192), 1)
    assert moved["Exif"] == {piexif.ExifIFD.FocalPlaneYResolution: (12000, 1)} and notes == []


def test_exif_with_nothing_counted_in_pixels_is_passed_as_it_is() -> None:
    exif = {"0th": {piexif.ImageIFD.Make: b"Phone"}, "Exif": {piexif.ExifIFD.FNumber: (8, 1)}}
    assert exif_geometry.resampled(exif, (80, 48), (320, 192), 6) == (exif, [])
    assert exif_geometry.resampled(None, (80, 48), (320, 192), 1) == (None, [])


def test_xmp_drops_what_the_derivatives_exif_does_not_hold() -> None:
    """An XMP value counted in the master's pixels that the EXIF does not give the derivative's
    (dropped, or never there) would say the master's: it goes."""
    meta = ImageMetadata(exif={"0th": {}, "Exif": {piexif.ExifIFD.SubjectLocation: (113, 41)}}, xmp=XMP)
    xmp = dmd.derivative_xmp(meta, width=160, height=96, channels=3, bits=8, dpi=None, software="test",
                             description="test").decode()
    assert "SubjectArea" not in xmp and "FocalPlane" not in xmp
    assert "<exif:SubjectLocation><rdf:Seq><rdf:li>113</rdf:li><rdf:li>41</rdf:li></rdf:Seq>" in xmp
    assert ET.fromstring(xmp[xmp.index("<x:xmpmeta"):xmp.rindex("</x:xmpmeta>") + 12]) is not None  # still XML
