"""Noise is measured, classified and removed in the way its kind needs."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import photo, psnr

from enhance_ops.chain import denoise as dn
from enhance_ops.chain.superres import Tiling, upscale
from enhance_ops.models.weights import load_model

PHOTOS = ["chelsea", "coffee", "astronaut", "rocket", "camera"]


def _photo(name: str, size: int = 256) -> np.ndarray:
    image = photo(name)
    image = image[..., None] if image.ndim == 2 else image
    return np.ascontiguousarray(image[:size, :size])


def _noisy(image: np.ndarray, sigma_255: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(image + rng.normal(0, sigma_255 / 255, image.shape), 0, 1).astype(np.float32)


def _salt_and_pepper(image: np.ndarray, fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    draw = rng.random(image.shape[:2])
    out = image.copy()
    out[draw < fraction / 2] = 0.0
    out[draw > 1 - fraction / 2] = 1.0
    return out, (draw < fraction / 2) | (draw > 1 - fraction / 2)


@pytest.mark.parametrize("name", PHOTOS)
@pytest.mark.parametrize("sigma", [5, 10, 15, 25])
def test_known_sigma_is_recovered_within_20_percent(name: str, sigma: int) -> None:
    estimate = dn.estimate_sigma(_noisy(_photo(name), sigma)) * 255
    assert estimate == pytest.approx(sigma, rel=0.2)


@pytest.mark.parametrize("name", PHOTOS)
def test_clean_photos_are_classified_clean_or_barely_noisy(name: str) -> None:
    estimate = dn.analyse_noise(_photo(name))
    assert estimate.impulse_fraction < 0.001 and estimate.sigma * 255 < 3


@pytest.mark.parametrize("name", PHOTOS)
def test_gaussian_and_impulse_noise_are_told_apart(name: str) -> None:
    clean = _photo(name)
    assert dn.analyse_noise(_noisy(clean, 25)).kind == "gaussian"
    assert dn.analyse_noise(_salt_and_pepper(clean, 0.05)[0]).kind == "impulse"


def test_a_bitonal_page_is_left_as_it_is_its_dither_and_strokes_are_not_salt_and_pepper() -> None:
    """A Group 4 document scan (here scikit-image's page, thresholded) read as impulse noise,
    and thousands of its pixels were "repaired" by median, strokes of letters among them."""
    from skimage import data as skdata

    page = (skdata.page() > 128).astype(np.float32)[..., None]
    assert dn.analyse_noise(page).kind == "impulse"  # what the detector makes of it
    out, record = dn.denoise(page, load_model("ffdnet-color"), strength="auto")
    assert out is page and record["decision"].startswith("skipped: black and white only, as a bitonal scan")


def test_impulses_are_repaired_and_nothing_else_is_touched() -> None:
    clean = _photo("coffee")
    dusty, _ = _salt_and_pepper(clean, 0.05)
    out, record = dn.denoise(dusty, load_model("ffdnet-color"), strength="auto")
    assert "impulse noise detected" in record["decision"]
    assert psnr(out, clean) > psnr(dusty, clean) + 15
    mask = dn.impulse_mask(dusty)
    repaired = dn.remove_impulses(dusty, mask)
    assert np.array_equal(repaired[~mask], dusty[~mask])
    assert psnr(repaired, clean) > psnr(dusty, clean) + 15


@pytest.mark.parametrize("name", ["chelsea", "astronaut", "camera"])
def test_gaussian_noise_goes_through_ffdnet_with_the_measured_level(name: str) -> None:
    clean = _photo(name, 192)
    noisy = _noisy(clean, 25)
    out, record = dn.denoise(noisy, load_model("ffdnet-color"))
    assert "FFDNet" in record["decision"] and record["strength"] == "strong"
    assert record["model_sigma_255"] == pytest.approx(25 * dn.STRENGTH_FACTOR["strong"], rel=0.2)
    assert out.shape == clean.shape
    assert psnr(out, clean) > psnr(noisy, clean) + 5


def test_strength_follows_sigma_and_can_be_overridden() -> None:
    assert [dn.strength_for(s / 255) for s in (3, 12, 30)] == ["weak", "medium", "strong"]
    noisy = _noisy(_photo("coffee", 128), 12)
    ffdnet = load_model("ffdnet-color")
    _, auto = dn.denoise(noisy, ffdnet)
    _, forced = dn.denoise(noisy, ffdnet, strength="strong", sigma_override=30)
    assert auto["strength"] == "medium"
    assert forced["strength"] == "strong" and forced["model_sigma_255"] == pytest.approx(30 * 1.15)


def test_clean_image_is_not_smeared() -> None:
    clean = _photo("rocket", 128)
    out, record = dn.denoise(clean, load_model("ffdnet-color"))
    assert record["decision"].startswith("skipped") and out is clean


def test_pixels_left_out_are_neither_measured_nor_repaired() -> None:
    """A halftone's dots on a page are the picture: taken for impulses they would have the
    page repaired by median, taken for grain they would set FFDNet's level."""
    clean = _photo("camera")
    page = _noisy(clean, 10)
    picture = np.zeros(page.shape[:2], bool)
    picture[:, 128:] = True
    lattice = np.indices((256, 128)).sum(axis=0) % 4
    page[:, 128:][lattice < 2] = 1.0  # a lattice of white and black dots there
    page[:, 128:][lattice == 2] = 0.0

    assert dn.analyse_noise(page).kind == "impulse"
    estimate = dn.analyse_noise(page, exclude=picture)
    assert estimate.kind == "gaussian" and estimate.impulse_fraction == 0.0
    assert estimate.sigma * 255 == pytest.approx(dn.analyse_noise(page[:, :128]).sigma * 255, rel=0.1)
    assert estimate.sigma * 255 == pytest.approx(10, rel=0.2)

    dusty, speckled = _salt_and_pepper(page, 0.05)
    _, record = dn.denoise(dusty, load_model("ffdnet-color"), strength="auto", exclude=picture)
    assert "impulse noise detected" in record["decision"] and "FFDNet" in record["decision"]
    repaired, outside = int(record["decision"].split("detected: ")[1].split()[0]), int((speckled & ~picture).sum())
    assert outside / 3 < repaired <= outside  # some speckles land where the photo is as light or dark
    assert int((dn.impulse_mask(dusty) & picture).sum()) > 2 * outside  # what the lattice would have added


def test_ffdnet_tiles_wholly_left_out_are_not_run() -> None:
    """A page screened over most of it: FFDNet's work there would be thrown away, so its
    tiles inside are passed through, and only those around the screen run."""
    clean = _photo("astronaut", 256)
    page = _noisy(clean, 12)
    picture = np.zeros(page.shape[:2], bool)
    picture[:, :200] = True
    out, record = dn.denoise(page, load_model("ffdnet-color"), strength="auto", exclude=picture,
                             tiling=Tiling(tile=64, pad=16, overlap=8))
    assert "FFDNet" in record["decision"]
    np.testing.assert_allclose(out[:, :120], page[:, :120], atol=1e-6)  # tiles of 64 wholly inside: as they were
    assert psnr(out[:, 208:], clean[:, 208:]) > psnr(page[:, 208:], clean[:, 208:]) + 5  # the rest denoised
    with pytest.raises(ValueError, match="keeps the image's size"):
        upscale(page, load_model("span-x2"), 2, unrun=picture)
