"""A small batch of real photographs made to look like archive scans, for demos and tests.

The photographs are the ones scikit-image ships in its wheel (no download needed). Each is
shrunk with an antialiasing filter and given a little sensor noise, then written in one of
the formats and layouts archives hold: JPEG with scanner EXIF, a sideways JPEG with an
orientation tag, a faded colour print (``degrade.fade``), 16-bit TIFF with an ICC profile,
an 8-bit greyscale TIFF of two pages, a greyscale PNG of a document and a WebP with
transparency. ``typed_page`` renders a page of type as a scanner gives it, and
``microfilm_negative`` that page as a scan of negative microfilm, for the tests and
benchmarks of pages of text; ``smooth_ramp`` is a 16-bit sky or studio backdrop, for those of
16-bit gradation; ``floyd_steinberg`` and ``halftone_screen`` make a photo black and white
as a scanner's halftone mode and a printed screen do, ``eight_colour_dither`` makes one of
eight pure colours, and ``page_with_dithered_photo`` sets such a photo in a page of print,
for those of descreening; ``screened_print`` prints a photo through a halftone screen and
scans it in grey, and ``page_with_screened_photo`` sets one in a grey page.
"""
from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import piexif
import tifffile
from PIL import Image, ImageCms, ImageDraw, ImageFont
from skimage import data as skdata

from .degrade import fade

SCANNER_EXIF = {
    piexif.ImageIFD.Make: b"Epson",
    piexif.ImageIFD.Model: b"Perfection V850 Pro",
    piexif.ImageIFD.DateTime: b"2026:11:20 21:14:03",
    piexif.ImageIFD.Artist: b"Digitisation unit",
    piexif.ImageIFD.Copyright: b"Public domain sample",
}


def _shrink(image: np.ndarray, long_side: int) -> np.ndarray:
    h, w = image.shape[:2]
    factor = long_side / max(h, w)
    return cv2.resize(image, (round(w * factor), round(h * factor)), interpolation=cv2.INTER_AREA)


def _scan_noise(image: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noisy = image.astype(np.float32) + rng.normal(0.0, sigma, image.shape)
    return np.clip(noisy, 0, 255)


def _jpeg(image: np.ndarray, exif: dict[int, object], orientation: int = 1) -> bytes:
    zeroth = {**exif, piexif.ImageIFD.Orientation: orientation}
    buf = io.BytesIO()
    Image.fromarray(image.astype(np.uint8)).save(
        buf, "JPEG", quality=90, dpi=(300, 300), exif=piexif.dump({"0th": zeroth, "Exif": {}})
    )
    return buf.getvalue()


def _cat_jpeg(long_side: int) -> bytes:
    return _jpeg(_scan_noise(_shrink(skdata.chelsea(), long_side), 3.0, 1), SCANNER_EXIF)


def _rocket_sideways_jpeg(long_side: int) -> bytes:
    # Stored turned a quarter to the left, with orientation 6 saying "turn right to view".
    upright = _scan_noise(_shrink(skdata.rocket(), long_side), 2.0, 2)
    return _jpeg(np.rot90(upright, 1), SCANNER_EXIF, orientation=6)


def _faded_print_jpeg(long_side: int) -> bytes:
    # faded as far as the fading model goes: at 0.8 the scan's grain hid its stain (its darkest
    # pixels read luma 0.068, under the 0.07 where a stain begins to count), and the demo never
    # showed a restoration
    photo = _shrink(skdata.astronaut(), long_side).astype(np.float32) / 255.0
    return _jpeg(_scan_noise(fade(photo, 1.0) * 255.0, 2.5, 5), SCANNER_EXIF)


def _coffee_tiff16(long_side: int) -> bytes:
    small = _shrink(skdata.coffee().astype(np.float32) * 257.0, long_side)
    samples = np.clip(_scan_noise(small / 257.0, 2.0, 3) * 257.0, 0, 65535).astype(np.uint16)
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    buf = io.BytesIO()
    tifffile.imwrite(
        buf, samples, photometric="rgb", compression="zlib", resolution=(600, 600), resolutionunit="INCH",
        extratags=[(34675, "B", len(icc), icc, True), (271, "s", 0, "Epson", True)], metadata=None,
    )
    return buf.getvalue()


def _grey_two_page_tiff(long_side: int) -> bytes:
    """A photograph with a page of text after it in one TIFF, as a scanned letter with its
    enclosure is filed: each page its own size and resolution."""
    photo = _scan_noise(_shrink(skdata.camera(), long_side), 2.0, 4).astype(np.uint8)
    text = _scan_noise(_shrink(skdata.text(), long_side), 2.0, 6).astype(np.uint8)
    buf = io.BytesIO()
    with tifffile.TiffWriter(buf) as tif:
        for page, dpi in ((photo, 400), (text, 300)):
            tif.write(page, photometric="minisblack", compression="zlib", resolution=(dpi, dpi),
                      resolutionunit="INCH", metadata=None)
    return buf.getvalue()


def _page_grey_png(long_side: int) -> bytes:
    grey = _shrink(skdata.page(), long_side).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(grey, mode="L").save(buf, "PNG", dpi=(300, 300))
    return buf.getvalue()


def _astronaut_webp_alpha(long_side: int) -> bytes:
    rgb = _shrink(skdata.astronaut(), long_side).astype(np.uint8)
    h, w = rgb.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    alpha = np.clip(1.6 - np.hypot((yy - h / 2) / (h / 2), (xx - w / 2) / (w / 2)), 0, 1) * 255
    buf = io.BytesIO()
    Image.fromarray(np.dstack([rgb, alpha.astype(np.uint8)]), mode="RGBA").save(buf, "WEBP", lossless=True)
    return buf.getvalue()


WORDS = ("the of and to in archive letter council minutes record was received on behalf of the committee "
         "meeting resolved that report year county office street district church parish account").split()


def smooth_ramp(side: int) -> np.ndarray:
    """A smooth 16-bit grey field, float32 RGB: where a network's rounding to 8 bits shows as steps."""
    y, x = np.mgrid[0:side, 0:side] / side
    grey = 0.3 + 0.6 * x * (0.7 + 0.3 * np.sin(2 * y))
    return (np.round(np.repeat(grey[..., None], 3, axis=2) * 65535) / 65535).astype(np.float32)


def typed_page(font_px: int = 24, *, yellowed: bool = False, uneven: float = 0.0, seed: int = 0) -> np.ndarray:
    """A typed page (1200 × 1600 px, float grey or RGB in [0, 1]) as a scanner gives it: grey
    ink, blur, mottled paper, light falling off towards a corner (``uneven``), noise."""
    rng = np.random.default_rng(seed)
    width, height = 1200, 1600
    page = Image.new("L", (width, height), 255)
    draw, font = ImageDraw.Draw(page), ImageFont.load_default(size=font_px)
    for y in range(160, height - 160 - font_px, int(font_px * 1.5)):
        line: list[str] = []
        while draw.textlength(" ".join([*line, "council"]), font=font) < width - 340:
            line.append(str(rng.choice(WORDS)))
        draw.text((120, y), " ".join(line), fill=int(rng.integers(10, 70)), font=font)
    ink = cv2.GaussianBlur(np.asarray(page, np.float32) / 255, (0, 0), 0.6)
    yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
    mottle = cv2.GaussianBlur(rng.normal(0, 0.025, (height, width)).astype(np.float32), (0, 0), 3)
    paper = 0.92 - uneven * 0.3 * (yy + 0.5 * xx) + mottle
    grey = np.clip(ink * paper + rng.normal(0, 3 / 255, (height, width)), 0, 1).astype(np.float32)
    if yellowed:
        return grey[..., None] * np.array([1.0, 0.93, 0.78], np.float32)
    return grey[..., None]


def microfilm_negative(page: np.ndarray, seed: int = 0) -> np.ndarray:
    """A page (float grey or RGB in [0, 1]) as a film scanner reads it off negative microfilm:
    its paper dense and dark, its ink clear, the film's grain over it and the reader's light
    falling off towards the edges; grey, as most microfilm is scanned."""
    rng = np.random.default_rng(seed)
    grey = page.mean(axis=2) if page.ndim == 3 else page
    height, width = grey.shape
    yy, xx = np.mgrid[0:height, 0:width]
    light = 1.0 - 0.25 * np.hypot((yy - height / 2) / height, (xx - width / 2) / width)
    grain = cv2.GaussianBlur(rng.normal(0, 0.03, (height, width)).astype(np.float32), (0, 0), 0.8)
    clear = 0.12 + 0.68 * (1.0 - grey)  # base and fog under the paper; the ink lets the light through
    return np.clip(clear * light + grain, 0, 1).astype(np.float32)[..., None]


def floyd_steinberg(grey: np.ndarray) -> np.ndarray:
    """A grey photo (uint8) as a scanner's halftone mode gives it: Pillow's error diffusion,
    as 0/1 float32 with one channel."""
    return np.asarray(Image.fromarray(grey).convert("1"), np.float32)[..., None]  # Floyd-Steinberg: Pillow's default


def eight_colour_dither(rgb: np.ndarray) -> np.ndarray:
    """A colour photo (uint8) error-diffused by Pillow to the eight colours whose channels are
    0 or 255 (a printer's or a screen's primaries), as 0/1 float32 RGB."""
    primaries = Image.new("P", (1, 1))
    primaries.putpalette([255 * ((i >> c) & 1) for i in range(8) for c in (2, 1, 0)])
    dithered = Image.fromarray(rgb).quantize(palette=primaries, dither=Image.Dither.FLOYDSTEINBERG)
    return np.asarray(dithered.convert("RGB"), np.float32) / 255


def halftone_screen(grey: np.ndarray, period: int) -> np.ndarray:
    """A grey photo (uint8) through a printer's halftone screen, scanned at one bit: black where
    it is darker than a spot function of ``period`` px at 45 degrees, as 0/1 float32."""
    y, x = np.mgrid[: grey.shape[0], : grey.shape[1]] * (2 * np.pi / period / np.sqrt(2))
    spot = (np.cos(x + y) * np.cos(x - y) + 1) / 2
    return (grey / 255 > spot).astype(np.float32)[..., None]


def screened_print(grey: np.ndarray, period: float, angle: float = 15.0, *, paper: float = 0.92, ink: float = 0.12,
                   seed: int = 0) -> np.ndarray:
    """A grey photo (uint8) printed through a halftone screen of ``period`` px (between dots
    along the screen's axes) turned ``angle`` degrees, then scanned in grey: the print made
    at four times the scan's resolution, each dot's area what the photo's tone asks (the spot
    function made uniform over a cell), averaged over the scanner's pixels, blurred by its
    optics (sigma 0.6 px), with its noise. Float32 in [0, 1], one channel. Its fundamental's
    period, the one a spectrum shows, is ``period`` / sqrt(2)."""
    over, (height, width) = 4, grey.shape
    tone = cv2.resize(grey, (width * over, height * over), interpolation=cv2.INTER_CUBIC).astype(np.float32) / 255
    y, x = np.mgrid[: height * over, : width * over].astype(np.float32) / over
    turn, step = np.deg2rad(angle), np.float32(2 * np.pi / period)
    spot = np.cos((x * np.cos(turn) + y * np.sin(turn)) * step) * np.cos((y * np.cos(turn) - x * np.sin(turn)) * step)
    cell = np.sort((np.cos(np.linspace(0, 2 * np.pi, 256))[:, None] * np.cos(np.linspace(0, 2 * np.pi, 256))).ravel())
    spot = np.interp(spot, cell, np.linspace(0, 1, cell.size)).astype(np.float32)  # each dot's area the tone's
    reflected = np.where(tone < spot, np.float32(ink), np.float32(paper))
    scan = cv2.GaussianBlur(cv2.resize(reflected, (width, height), interpolation=cv2.INTER_AREA), (0, 0), 0.6)
    scan += np.random.default_rng(seed).normal(0, 0.01, scan.shape).astype(np.float32)
    return np.clip(scan, 0, 1)[..., None]


def through_codec(image: np.ndarray, fmt: str, quality: int) -> np.ndarray:
    """A grey image (float, one channel, in [0, 1]) as a lossy codec of Pillow's ("JPEG",
    "WEBP") gives it back at ``quality``: a master's copy that was stored that way."""
    buffer = io.BytesIO()
    Image.fromarray((image[..., 0] * 255).round().astype(np.uint8)).save(buffer, fmt, quality=quality)
    return (np.asarray(Image.open(buffer).convert("L"), np.float32) / 255)[..., None]


def page_with_screened_photo() -> tuple[np.ndarray, tuple[slice, slice]]:
    """A grey page of print (scikit-image's, enlarged three times) with a photograph set in
    it through a halftone screen of 6 px (``screened_print``), and where the photograph lies."""
    page = cv2.resize(skdata.page(), None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC).astype(np.float32) / 255
    page = page[..., None]
    page[PAGE_PHOTO_AT] = screened_print(page_photo(), 6)
    return page, PAGE_PHOTO_AT


PAGE_PHOTO_AT = (slice(150, 450), slice(400, 700))  # where a page's photograph is set


def page_photo() -> np.ndarray:
    """The photograph set in a page (scikit-image's camera at 300 x 300, uint8)."""
    return cv2.resize(skdata.camera(), (300, 300), interpolation=cv2.INTER_AREA)


def page_with_dithered_photo() -> tuple[np.ndarray, tuple[slice, slice]]:
    """A bitonal page of print (scikit-image's, enlarged three times, then thresholded) with
    a photograph set in it by error diffusion, and where the photograph lies."""
    page = cv2.resize(skdata.page(), None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC) > 128
    image = page.astype(np.float32)[..., None]
    image[PAGE_PHOTO_AT] = floyd_steinberg(page_photo())
    return image, PAGE_PHOTO_AT


SAMPLES: dict[str, Callable[[int], bytes]] = {
    "cat_scan.jpg": _cat_jpeg,
    "rocket_sideways.jpg": _rocket_sideways_jpeg,
    "faded_print.jpg": _faded_print_jpeg,
    "coffee_16bit.tif": _coffee_tiff16,
    "grey_two_pages.tif": _grey_two_page_tiff,
    "page_document.png": _page_grey_png,
    "astronaut_alpha.webp": _astronaut_webp_alpha,
}


def write_samples(folder: Path, long_side: int = 128) -> list[Path]:
    """Write the batch into ``folder`` (created if needed); existing files are left as they are."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, make in SAMPLES.items():
        path = folder / name
        if not path.exists():
            path.write_bytes(make(long_side))
        paths.append(path)
    return paths


def photo_crops(count: int, side: int, fmt: str = "PNG", *, numbered: bool = False) -> list[bytes]:
    """``count`` side × side crops of four real photographs, spread over them, encoded as ``fmt``.

    ``numbered`` writes the crop's number into its first two pixels, so that flat crops (sky)
    never repeat: for batches that must hold no duplicates.
    """
    photos = [getattr(skdata, n)() for n in ("chelsea", "astronaut", "coffee", "rocket")]
    crops = []
    for n in range(count):
        photo, k = photos[n % len(photos)], n // len(photos)
        y, x = k * 13 % (photo.shape[0] - side), k * 29 % (photo.shape[1] - side)
        crop = photo[y : y + side, x : x + side].copy()
        if numbered:
            crop[0, 0, 0], crop[0, 1, 0] = n % 256, n // 256 % 256
        buf = io.BytesIO()
        Image.fromarray(crop).save(buf, fmt, **({"quality": 92} if fmt == "JPEG" else {}))
        crops.append(buf.getvalue())
    return crops
