"""Dithered and screened black-and-white scans: found by their dots, descreened before enlarging."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import photo, psnr
from photoshop_files import imagemagick_grey
from skimage import data as skdata

from enhance_ops.chain import dither, pipeline, strips
from enhance_ops.samples import (
    eight_colour_dither,
    floyd_steinberg,
    halftone_screen,
    page_with_dithered_photo,
    through_codec,
)


def _ordered(grey: np.ndarray) -> np.ndarray:
    """ImageMagick's 8x8 ordered dither of a grey photo."""
    return imagemagick_grey(grey, "-ordered-dither", "o8x8")


CAMERA = skdata.camera()
PRINT = {"page": skdata.page() > 128, "text": skdata.text() > 128, "horse": skdata.horse()}  # black and white only


@pytest.mark.parametrize("make", [floyd_steinberg, _ordered], ids=["error-diffusion", "ordered"])
def test_a_dithered_photograph_is_found_whole(make) -> None:  # type: ignore[no-untyped-def]
    found = dither.find(make(CAMERA))
    assert found is not None and found.share > 0.98 and not found.screen and found.sigma == dither.DITHER_SIGMA


@pytest.mark.parametrize("period", [4, 5])
def test_a_halftone_screen_is_found_as_one(period: int) -> None:
    """Its mid-tones are clusters of a few pixels, none isolated: found by how many small
    patches a neighbourhood holds, and smoothed more than a dither."""
    found = dither.find(halftone_screen(CAMERA, period))
    assert found is not None and found.share > 0.95 and found.screen and found.sigma == dither.SCREEN_SIGMA


@pytest.mark.parametrize("name", PRINT)
def test_print_and_a_silhouette_have_no_dither(name: str) -> None:
    page = PRINT[name].astype(np.float32)[..., None]
    assert dither.find(page) is None
    enlarged = cv2.resize(page, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)[..., None] > 0.5
    assert dither.find(enlarged.astype(np.float32)) is None


@pytest.mark.parametrize("spacing", [3, 4, 6, 8])
def test_hatching_of_lines_one_pixel_wide_is_not_dither(spacing: int) -> None:
    """Where two diagonal lines cross, the pixel is alone in its row and column as a dot is."""
    y, x = np.mgrid[:256, :256]
    hatched = ((x + y) % spacing == 0) | ((x - y) % spacing == 0)
    assert dither.find(hatched.astype(np.float32)[..., None]) is None


def test_a_photograph_dithered_to_eight_pure_colours_is_found_channel_by_channel() -> None:
    dots = eight_colour_dither(skdata.astronaut())
    assert len(np.unique(dots.reshape(-1, 3), axis=0)) == 8
    found = dither.find(dots)
    assert found is not None and found.share > 0.85 and found.colour and not found.screen
    result = pipeline.Chain("fast-cpu", ("superres.scale=2", "superres.models=[]")).run(dots[128:384, 128:384])
    assert _superres(result).details["descreened"]["colour"] and result.metrics["consistency_psnr_db"] > 45
    assert result.notes[0].startswith("dithered in a few pure colours")
    kept = pipeline.Chain("fast-cpu", ("superres.scale=2", "superres.models=[]", "superres.descreen=false"))
    assert kept.run(dots[128:384, 128:384]).metrics["consistency_psnr_db"] < 30  # held: 28 dB


def test_a_grey_photograph_or_a_colour_one_has_no_dither() -> None:
    assert dither.find(photo("camera")[..., None]) is None
    assert dither.find(photo("astronaut")) is None


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
def test_the_lossy_copy_of_a_dither_is_found_as_the_dither_itself(fmt: str) -> None:
    dots = floyd_steinberg(CAMERA)
    found, lossy = dither.find(dots), dither.find(through_codec(dots, fmt, 75))
    assert found is not None and lossy is not None and abs(found.share - lossy.share) < 0.01


def test_on_a_page_of_print_only_the_photograph_set_in_it_is_dithered() -> None:
    image, where = page_with_dithered_photo()
    found = dither.find(image)
    assert found is not None and 0.13 < found.share < 0.17  # the photograph is 13.6 % of the page
    inside = found.weight[where]
    assert inside.mean() > 0.99 * 255
    far = np.ones(found.weight.shape, bool)
    far[where[0].start - 2 * dither.WINDOW : where[0].stop + 2 * dither.WINDOW,
        where[1].start - 2 * dither.WINDOW : where[1].stop + 2 * dither.WINDOW] = False
    assert found.weight[far].max() == 0


def test_descreening_smooths_the_dithered_part_and_keeps_the_rest_as_given() -> None:
    image, where = page_with_dithered_photo()
    found = dither.find(image)
    assert found is not None
    elsewhere = image + 0.25  # stands for the print's own treatment
    out = found.descreened(image, elsewhere)
    tones = cv2.GaussianBlur(image, (0, 0), found.sigma)[..., None]
    untouched, smoothed = found.weight == 0, found.weight == 255
    assert np.array_equal(out[untouched], elsewhere[untouched])
    assert np.allclose(out[smoothed], tones[smoothed], atol=1e-6)

    treated = elsewhere.copy()  # as the denoised page is, the dots kept into it
    assert found.mixed(image, treated, out=treated) is treated
    assert np.array_equal(treated[untouched], elsewhere[untouched]) and np.array_equal(treated[smoothed], image[smoothed])
    feathered = ~untouched & ~smoothed
    share = (treated[feathered] - elsewhere[feathered]) / (image[feathered] - elsewhere[feathered])
    assert np.allclose(share, found.weight[feathered][:, None] / 255, atol=1e-5)


def _superres(result: pipeline.ChainResult) -> pipeline.StageRecord:
    return next(r for r in result.stages if r.stage == "superres")


def _denoise(result: pipeline.ChainResult) -> pipeline.StageRecord:
    return next(r for r in result.stages if r.stage == "denoise")


@pytest.mark.parametrize("kind", ["error-diffusion", "error-diffusion JPEG", "screen"])
def test_a_dithered_photograph_is_enlarged_as_the_photograph_it_stands_for(kind: str) -> None:
    """Its dots enlarged as they were, the gate held it (25 dB consistency through SPAN;
    a screen's halos 0.13); the JPEG of one was denoised as salt and pepper into 7-9 dB."""
    grey = CAMERA[128:384, 128:384]
    dots = halftone_screen(grey, 4) if kind == "screen" else floyd_steinberg(grey)
    master = through_codec(dots, "JPEG", 75) if kind.endswith("JPEG") else dots
    chain = pipeline.Chain("fast-cpu", ("superres.scale=2", "superres.models=[]"))
    result = chain.run(master)
    record, made = _superres(result), "halftone-screened" if kind == "screen" else "dithered"
    assert record.details["descreened"]["share"] > 0.98 and "descreened" in record.decision
    assert result.notes == [f"{made} black and white: its dots were descreened into tones before enlarging "
                            "(superres.descreen=false keeps them)"]
    assert _denoise(result).decision.startswith(f"skipped: {made}")
    assert result.metrics["consistency_psnr_db"] > 45 and result.metrics["artefact_score"] < 0.01
    shrunk = cv2.resize(result.pixels[..., 0], grey.shape[::-1], interpolation=cv2.INTER_AREA)
    assert psnr(shrunk, grey.astype(np.float32) / 255) > 20  # tones near the photograph's own (its dots: 8 dB)
    kept = pipeline.Chain("fast-cpu", ("superres.scale=2", "superres.models=[]", "superres.descreen=false")).run(master)
    assert "descreened" not in _superres(kept).details
    assert kept.notes == []
    assert kept.metrics["artefact_score"] > 0.05 or kept.metrics["consistency_psnr_db"] < 30


def test_a_page_with_a_dithered_photograph_is_descreened_there_and_its_print_smoothed_as_print() -> None:
    image, _ = page_with_dithered_photo()
    result = pipeline.Chain("fast-cpu", ("superres.scale=2", "superres.models=[]")).run(image)
    record = _superres(result)
    assert "dithered over 15% of the image" in record.decision
    assert result.notes[0].startswith("dithered black and white over 15% of the image: its dots were descreened")
    assert record.details["bitonal_smoothing_sigma"] == 0.6 and "the rest black and white only" in record.decision
    assert result.metrics["consistency_psnr_db"] > 40


@pytest.mark.parametrize("shape", [(1, 1), (2, 2), (1, 4000), (30, 300)])
def test_an_image_narrower_than_a_neighbourhood_is_left_alone(shape: tuple[int, int]) -> None:
    """OpenCV took an image of four pixels or fewer for a scalar and raised; a reflected
    border had counted a 1 x 1 image's one patch 961 times, a screen."""
    rng = np.random.default_rng(0)
    for image in (np.zeros(shape), rng.integers(0, 2, shape)):
        assert dither.find(image.astype(np.float32)[..., None]) is None
    chain = pipeline.Chain("fast-cpu", ("superres.scale=2", "superres.models=[]"))
    result = chain.run(np.zeros((*shape, 1), np.float32))
    assert "descreened" not in _superres(result).details


@pytest.mark.parametrize("period", [4, 6])
def test_dots_counted_by_strips_are_those_of_the_whole_image(period: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each strip has the rows of context its measures need (a patch's 41, a neighbourhood's
    15): strips of 64 rows find what one strip of the whole page finds, dots and patches."""
    page, _ = page_with_dithered_photo()
    screened = halftone_screen(cv2.resize(CAMERA, (page.shape[1], 300), interpolation=cv2.INTER_AREA), period)
    light = np.concatenate([page, screened])[:, :, 0] >= 0.5
    whole = dither._neighbourhoods(light)
    monkeypatch.setattr(strips, "STRIP_PIXELS", 64 * light.shape[1])
    assert strips.strip_rows(light.shape[1]) <= 64 < light.shape[0] / 10
    banded = dither._neighbourhoods(light)
    assert all(np.array_equal(w, b) for w, b in zip(whole, banded))
    assert whole[0].any() and whole[1].any()
