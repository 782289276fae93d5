"""Printed halftones scanned in grey or colour: found by the screen's peaks in their spectra,
descreened and enlarged by the faithful network rather than redrawn by Real-ESRGAN."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from conftest import psnr
from PIL import Image, ImageDraw, ImageFont
from skimage import data as skdata

from enhance_ops.chain import denoise, dither, pipeline, screen
from enhance_ops.samples import page_with_screened_photo, screened_print, through_codec

CAMERA = skdata.camera()


def _grey(image: np.ndarray) -> np.ndarray:
    image = image.mean(axis=2) if image.ndim == 3 else image
    return (image / (255 if image.max() > 1 else 1)).astype(np.float32)[..., None]


@pytest.mark.parametrize("period", [2.9, 3.2, 4, 6, 9, 14, 20, 28])
@pytest.mark.parametrize("angle", [0, 15, 45])
def test_a_screen_is_found_with_its_period(period: float, angle: int) -> None:
    """The period a spectrum shows is the screen's over sqrt(2) (its fundamental runs along
    the diagonals of its cells): 2.05 to 19.8 px here, the first two about a magazine's 150
    and 133 lines per inch scanned at 300 dpi (where the scanner's optics leave too faint a
    wave in the lightest and darkest tones: 93 % of the camera found), the last two (85
    lines per inch at 1200 dpi) found at half the size; at full size a 45-degree one's
    overtone had been taken for a finer screen's."""
    found = screen.find(screened_print(CAMERA[:384, :384], period, angle))
    assert found is not None and found.share > (0.9 if period < 4 else 0.95) and found.in_tones
    assert found.period == pytest.approx(period / math.sqrt(2), rel=0.02)
    assert found.sigma == pytest.approx(dither.SIGMA_PER_PERIOD * found.period, abs=0.01)


def test_the_jpeg_of_a_screen_is_found_too() -> None:
    found = screen.find(through_codec(screened_print(CAMERA[:320, :320], 6), "JPEG", 75))
    assert found is not None and found.share > 0.95


def test_a_colour_print_screened_at_three_angles_is_found() -> None:
    """Each ink has its own screen angle (a rosette): each channel is looked at with its own."""
    astronaut = skdata.astronaut()[:256, :256]
    channels = [screened_print(astronaut[..., c], 6, angle, seed=c)[..., 0] for c, angle in enumerate((15, 75, 45))]
    found = screen.find(np.stack(channels, axis=2))
    assert found is not None and found.colour and found.share > 0.9
    assert found.inks == "and scanned in colour"


PHOTOGRAPHS = ("camera", "astronaut", "coffee", "chelsea", "brick", "grass", "gravel", "page", "text", "rocket",
               "moon", "coins", "clock", "hubble_deep_field", "immunohistochemistry", "retina", "logo", "checkerboard")


@pytest.mark.parametrize("name", PHOTOGRAPHS)
def test_photographs_textures_and_print_hold_no_screen(name: str) -> None:
    """brick's courses are the most regular of them: its blocks' peaks stood 65 times their
    ring's median at most (a screen's: hundreds to thousands)."""
    image = _grey(np.asarray(getattr(skdata, name)(), np.float32))
    for enlarged in (1, 2, 3):
        grown = cv2.resize(image, None, fx=enlarged, fy=enlarged, interpolation=cv2.INTER_CUBIC).reshape(
            image.shape[0] * enlarged, image.shape[1] * enlarged, 1)
        assert screen.find(grown) is None, enlarged


@pytest.mark.parametrize(("pitch", "line"), [(12, 12), (8, 14), (7, 12)])
def test_a_monospaced_listing_is_no_screen(pitch: int, line: int) -> None:
    """Characters at a fixed pitch on lines at a fixed spacing are a lattice too: a
    screen's two waves each hold a third of its detail or more, a listing's far less (a
    valgrind listing's 12-px lattice had been taken for a coarse screen)."""
    rng, chars = np.random.default_rng(0), "abcdefghijklmnopqrstuvwxyz0123456789=+-*/()[]{}|<>#"
    page = Image.new("L", (1200, 900), 255)
    draw, font = ImageDraw.Draw(page), ImageFont.load_default(size=line)
    for y in range(10, 880, line):
        for x in range(10, 1180, pitch):
            draw.text((x, y), chars[rng.integers(len(chars))], fill=0, font=font)
    assert screen.find(np.asarray(page, np.float32)[..., None] / 255) is None


@pytest.mark.parametrize("quality", [20, 50])
def test_a_jpegs_block_grid_is_no_screen(quality: int) -> None:
    """Its 8-px blocks are a grid too, along the axes, and at low quality a strong one."""
    for name in ("camera", "astronaut", "coffee"):
        photograph = _grey(np.asarray(getattr(skdata, name)(), np.float32))
        assert screen.find(through_codec(photograph, "JPEG", quality)) is None


def test_a_screened_photograph_on_a_page_of_print_is_found_there_only() -> None:
    """Found pixel by pixel (each of the screen's waves in a box of 4 periods around it):
    the edge of the part found lies within a few pixels of the photograph's."""
    page, where = page_with_screened_photo()
    assert where == (slice(150, 450), slice(400, 700))
    found = screen.find(page)
    assert found is not None and 0.12 < found.share < 0.2
    assert (found.weight[150 + 32 : 450 - 32, 400 + 32 : 700 - 32] == 255).all()  # the photograph
    assert found.weight[150:450, 400:700].mean() > 0.9 * 255
    beyond = np.ones(found.weight.shape, bool)
    beyond[150 - 40 : 450 + 40, 400 - 40 : 700 + 40] = False
    assert (found.weight[beyond] == 0).all()  # the print


def test_a_magazines_fine_screen_is_descreened_too() -> None:
    """133 lines per inch at 300 dpi (2.26 px): finer than the search once went, it went to
    Real-ESRGAN, which redrew it into halos over most of the photograph (consistency about
    19 dB) and was held."""
    grey = CAMERA[128:256, 128:256]
    master = screened_print(grey, 3.2, 45)
    result = pipeline.Chain("archive-photo").run(master.copy())
    record = _stage(result, "superres")
    assert result.models == ("span-x4",) and record.details["descreened"]["period_px"] == pytest.approx(2.26, abs=0.03)
    assert result.metrics["consistency_psnr_db"] > 45 and result.metrics["artefact_score"] < 0.01
    kept = pipeline.Chain("archive-photo", ("superres.descreen=false",)).run(master.copy())
    assert kept.metrics["consistency_psnr_db"] < 30 and kept.metrics["artefact_score"] > 0.05
    printed = cv2.GaussianBlur(0.12 + 0.8 * grey.astype(np.float32) / 255, (0, 0), 0.6)
    inside = np.s_[8:-8, 8:-8]
    near = {name: psnr(cv2.resize(r.pixels[..., 0], grey.shape[::-1], interpolation=cv2.INTER_AREA)[inside],
                       printed[inside]) for name, r in (("descreened", result), ("kept", kept))}
    assert near["descreened"] > near["kept"] + 5


def test_the_print_around_a_screened_photograph_is_denoised_and_the_screen_is_not() -> None:
    """The page's grain is the scan's: measured and removed around the photograph, whose dots
    (the picture) are left for the descreening. Without it SPAN x4, sharpening and local
    contrast doubled the grain of the print."""
    page, _ = page_with_screened_photo()
    clean = page[110:490, 340:760]  # the photograph at rows 40-340, columns 60-360
    noisy = np.clip(clean + np.random.default_rng(1).normal(0, 8 / 255, clean.shape), 0, 1).astype(np.float32)
    print_only = np.ones(clean.shape[:2], bool)
    print_only[:380, 20:400] = False
    results = {s: pipeline.Chain("archive-photo", (f"denoise.strength={s}",)).run(noisy.copy()) for s in ("auto", "off")}
    grain = {}
    for strength, result in results.items():
        assert result.models == ("span-x4",) and "descreened" in _stage(result, "superres").details
        shrunk = cv2.resize(result.pixels, clean.shape[1::-1], interpolation=cv2.INTER_AREA)[..., None]
        grain[strength] = denoise.estimate_sigma(shrunk, exclude=~print_only) * 255
    record = _stage(results["auto"], "denoise")
    assert record.decision.startswith("Gaussian noise sigma") and "FFDNet" in record.decision
    assert record.decision.endswith("; not where halftone-screened over 57% of the image, whose dots are the picture")
    assert record.details["measured"]["sigma_255"] == pytest.approx(8, rel=0.1)  # the print's, not the dots'
    assert record.details["left_as_scanned_share"] == pytest.approx(0.58, abs=0.02)
    assert grain["auto"] < 0.6 * grain["off"]


@pytest.mark.parametrize("shape", [(63, 500), (500, 63), (1, 1)])
def test_an_image_smaller_than_a_block_is_left_alone(shape: tuple[int, int]) -> None:
    assert screen.find(np.random.default_rng(0).random((*shape, 1), dtype=np.float32)) is None


def _stage(result: pipeline.ChainResult, name: str) -> pipeline.StageRecord:
    return next(r for r in result.stages if r.stage == name)


def test_a_screened_photograph_is_descreened_and_enlarged_by_the_faithful_network() -> None:
    """Through Real-ESRGAN, the nightly default, a screen of 4.2 px over the camera came out
    at about 18 dB consistency with halos on a third of its pixels, held; descreened and
    through SPAN it passes, and its tones are the photograph's."""
    grey = CAMERA[128:256, 128:256]
    master = screened_print(grey, 6)
    result = pipeline.Chain("archive-photo").run(master.copy())
    record = _stage(result, "superres")
    assert result.models == ("span-x4",) and record.details["descreened"]["period_px"] == pytest.approx(4.24, abs=0.05)
    assert "which would redraw the descreened tones" in record.decision and "sigma 2.12 px" in record.decision
    assert "bitonal_smoothing_sigma" not in record.details
    assert result.notes[0] == ("halftone-screened and scanned in grey: its dots were descreened into tones before "
                               "enlarging (superres.descreen=false keeps them)")
    assert _stage(result, "denoise").decision.startswith("skipped: halftone-screened")
    assert result.metrics["consistency_psnr_db"] > 45 and result.metrics["artefact_score"] < 0.01
    shrunk = cv2.resize(result.pixels[..., 0], grey.shape[::-1], interpolation=cv2.INTER_AREA)
    printed = cv2.GaussianBlur(0.12 + 0.8 * grey.astype(np.float32) / 255, (0, 0), 0.6)

    kept = pipeline.Chain("archive-photo", ("superres.descreen=false",)).run(master.copy())
    assert kept.models == ("realesrgan-x4plus",) and kept.notes == []
    assert kept.metrics["consistency_psnr_db"] < 30 and kept.metrics["artefact_score"] > 0.05
    redrawn = cv2.resize(kept.pixels[..., 0], grey.shape[::-1], interpolation=cv2.INTER_AREA)
    inside = np.s_[8:-8, 8:-8]  # the photograph the screen printed, closer by 6 dB and more
    assert psnr(shrunk[inside], printed[inside]) > max(psnr(redrawn[inside], printed[inside]),
                                                       psnr(master[..., 0][inside], printed[inside])) + 6
