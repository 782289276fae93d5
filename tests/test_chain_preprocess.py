"""Pre-processing stages against ground truth they can be measured on."""
from __future__ import annotations

import math

import cv2
import lensfunpy
import numpy as np
import pytest
from conftest import photo, psnr

from enhance_ops.chain import preprocess as pre
from enhance_ops.chain.colour_math import linear_to_srgb, srgb_to_linear

PHOTOS = ["chelsea", "coffee", "astronaut", "rocket"]


def test_dynamic_range_analysis_measures_what_it_says() -> None:
    ramp = np.linspace(0.2, 0.7, 1000, dtype=np.float32).reshape(10, 100, 1)
    ramp[0, :10] = 0.0  # 1 % clipped shadows
    dr = pre.analyse_dynamic_range(ramp, bit_depth=8)
    assert dr.shadows_clipped == pytest.approx(0.01)
    assert dr.highlights_clipped == 0.0
    assert dr.p50 == pytest.approx(0.45, abs=0.01)
    assert dr.p99_5 == pytest.approx(0.7, abs=0.01)
    # 0.2-0.7 at 8 bits uses about 128 levels (+1 for the clipped black): 7 effective bits
    assert dr.effective_bits == pytest.approx(math.log2(129), abs=0.05)
    full16 = np.linspace(0, 1, 65536, dtype=np.float32).reshape(256, 256, 1)
    assert pre.analyse_dynamic_range(full16, bit_depth=16).effective_bits == pytest.approx(16, abs=0.01)


@pytest.mark.parametrize("name", PHOTOS)
def test_underexposure_is_corrected(name: str) -> None:
    truth = photo(name)
    dark = (0.55 * truth**1.4).astype(np.float32)
    fixed, record = pre.compensate_exposure(dark, pre.analyse_dynamic_range(dark))
    assert "levels stretched" in record["decision"]
    assert psnr(fixed, truth) > psnr(dark, truth) + 3


@pytest.mark.parametrize("name", PHOTOS)
def test_well_exposed_photos_are_left_alone(name: str) -> None:
    truth = photo(name)
    out, record = pre.compensate_exposure(truth, pre.analyse_dynamic_range(truth))
    assert record["decision"].startswith("skipped") and out is truth


def _with_cast(image: np.ndarray, gains: tuple[float, float, float]) -> np.ndarray:
    return linear_to_srgb(srgb_to_linear(image) * np.array(gains, np.float32))


def _grey_world(image: np.ndarray) -> np.ndarray:
    linear = srgb_to_linear(image)
    means = linear.reshape(-1, 3).mean(axis=0)
    return linear_to_srgb(linear * means.mean() / means)


@pytest.mark.parametrize("name", ["astronaut", "rocket"])
@pytest.mark.parametrize("gains", [(1.3, 1.0, 0.7), (0.8, 1.0, 1.25)])
def test_synthetic_cast_is_removed(name: str, gains: tuple[float, float, float]) -> None:
    truth = photo(name)
    cast = _with_cast(truth, gains)
    fixed, record = pre.correct_colour_cast(cast)
    assert record["cast_deg"] > 5
    assert psnr(fixed, truth) > psnr(cast, truth) + 1.5
    assert psnr(fixed, truth) > psnr(_grey_world(cast), truth)


@pytest.mark.parametrize("name", ["chelsea", "coffee", "astronaut", "rocket"])
def test_dominant_colours_are_not_taken_for_a_cast(name: str) -> None:
    truth = photo(name)  # an orange cat, a red cup on brown wood: no cast to remove
    fixed, _ = pre.correct_colour_cast(truth)
    assert psnr(fixed, truth) > 30
    assert psnr(fixed, truth) > psnr(_grey_world(truth), truth) + 5


def test_warm_cast_on_a_scene_without_unclipped_neutrals_is_declined() -> None:
    cast = _with_cast(photo("coffee"), (1.3, 1.0, 0.7))  # the white cup clips in red: nothing neutral left
    out, record = pre.correct_colour_cast(cast)
    assert out is cast and "no near-neutral" in record["decision"]


def test_no_neutral_regions_means_no_correction() -> None:
    retina = photo("retina")  # red-orange throughout: nothing to judge the light by
    out, record = pre.correct_colour_cast(retina)
    assert out is retina and "no near-neutral" in record["decision"]


def _barrel(image: np.ndarray, k1: float) -> np.ndarray:
    """Distort with r_d = r_u (1 + k1 r_u^2): sample the undistorted image at the inverted radius."""
    h, w = image.shape[:2]
    cx, cy, norm = (w - 1) / 2, (h - 1) / 2, math.hypot((w - 1) / 2, (h - 1) / 2)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    dx, dy = (xx - cx) / norm, (yy - cy) / norm
    rd = np.sqrt(dx * dx + dy * dy)
    ru = rd.copy()
    for _ in range(20):  # Newton on ru (1 + k1 ru^2) = rd
        ru -= (ru * (1 + k1 * ru * ru) - rd) / (1 + 3 * k1 * ru * ru)
    ratio = np.where(rd > 0, ru / np.maximum(rd, 1e-9), 1)
    out = cv2.remap(image, dx * ratio * norm + cx, dy * ratio * norm + cy, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    return out.reshape(image.shape)


def _line_bow(image: np.ndarray, row_hint: int) -> float:
    """Spread (px) of a dark horizontal line's row position across the columns."""
    y = image[..., 0]
    band = y[row_hint - 25 : row_hint + 25, 10:-10]
    rows = np.argmin(band, axis=0)
    return float(rows.max() - rows.min())


def test_known_radial_distortion_is_straightened() -> None:
    grid = np.ones((240, 320, 1), np.float32)
    grid[30:32, :] = 0.0  # a straight line near the top edge, where barrel distortion bows it most
    bowed = _barrel(grid, k1=-0.15)
    assert _line_bow(bowed, 31) >= 6
    fixed, record = pre.correct_lens_distortion(bowed, coefficients={"k1": -0.15})
    assert record["source"] == "preset coefficients"
    assert _line_bow(fixed, 31) <= 1


def test_radial_correction_restores_a_real_photo() -> None:
    truth = photo("astronaut")[::2, ::2]
    bowed = _barrel(truth, k1=0.12)
    fixed, _ = pre.correct_lens_distortion(bowed, coefficients={"k1": 0.12})
    inner = (slice(40, -40), slice(40, -40))
    assert psnr(fixed[inner], truth[inner]) > psnr(bowed[inner], truth[inner]) + 8


def test_lens_from_the_lensfun_database_is_corrected() -> None:
    truth = photo("chelsea")
    h, w = truth.shape[:2]
    db = lensfunpy.Database()
    camera = db.find_cameras("Canon", "Canon EOS 5D Mark II")[0]
    lens = db.find_lenses(camera, "Canon", "Canon EF 24-105mm f/4L IS USM")[0]
    modifier = lensfunpy.Modifier(lens, camera.crop_factor, w, h)
    modifier.initialize(24.0, 4.0, 10.0, scale=1.0, reverse=True)  # the lens's own distortion, applied
    coords = modifier.apply_geometry_distortion()
    distorted = cv2.remap(truth, coords[..., 0], coords[..., 1], cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    info = pre.LensInfo("Canon", "Canon EOS 5D Mark II", "Canon", "Canon EF 24-105mm f/4L IS USM", 24.0, 4.0)
    fixed, record = pre.correct_lens_distortion(distorted, info)
    assert record["source"] == "lensfun" and "24-105" in record["lens"]
    inner = (slice(30, -30), slice(30, -30))
    assert psnr(fixed[inner], truth[inner]) > psnr(distorted[inner], truth[inner]) + 6


def test_unknown_lens_without_coefficients_is_skipped_and_recorded() -> None:
    image = photo("coffee", 64)
    info = pre.LensInfo("Nobody", "No Camera 1", "", "Mystery 50mm", 50.0, 2.0)
    out, record = pre.correct_lens_distortion(image, info, {"k1": 0.0, "k2": 0.0})
    assert out is image and record["source"] is None and "skipped" in record["decision"]
