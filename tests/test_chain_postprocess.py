"""Sharpening without halos, local contrast on lightness only, and ICC colour-space conversion."""
from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from colour_files import scanner_profile
from conftest import enlarge_bicubic, photo, shrink
from PIL import Image, ImageCms

from enhance_ops.chain import icc
from enhance_ops.chain.colour_math import lightness, luma, srgb_to_lab
from enhance_ops.chain.postprocess import adaptive_sharpen, convert_colour_space, local_contrast


def _soft(name: str) -> np.ndarray:
    image = photo(name)
    image = np.repeat(image[..., None], 3, 2) if image.ndim == 2 else image
    return enlarge_bicubic(shrink(image[:256, :256], 2), 2)


def _overshoot_255(out: np.ndarray, source: np.ndarray) -> float:
    """How far the result leaves the 5x5 range of its input: halos and ringing."""
    y0, y1 = luma(source), luma(out)
    kernel = np.ones((5, 5), np.uint8)
    return float(np.maximum(y1 - cv2.dilate(y0, kernel), cv2.erode(y0, kernel) - y1).max() * 255)


def _sharpness(image: np.ndarray) -> float:
    return float(cv2.Laplacian(luma(image), cv2.CV_32F).var())


def _plain_unsharp(image: np.ndarray, amount: float) -> np.ndarray:
    y = luma(image)
    return np.clip(image + (amount * (y - cv2.GaussianBlur(y, (0, 0), 1.0)))[..., None], 0, 1)


@pytest.mark.parametrize("name", ["chelsea", "coffee", "camera", "page"])
def test_sharpening_adds_detail_without_halos(name: str) -> None:
    soft = _soft(name)
    out, _ = adaptive_sharpen(soft, amount=0.6)
    assert _sharpness(out) > 1.5 * _sharpness(soft)
    assert _overshoot_255(out, soft) <= 3.0
    assert _overshoot_255(_plain_unsharp(soft, 0.6), soft) > 10  # what the limiter prevents


def test_sharpening_backs_off_on_noise() -> None:
    soft = _soft("coffee")
    noisy = np.clip(soft + np.random.default_rng(0).normal(0, 8 / 255, soft.shape), 0, 1).astype(np.float32)
    calm, record = adaptive_sharpen(noisy, amount=0.6, noise_sigma=8 / 255)
    eager, _ = adaptive_sharpen(noisy, amount=0.6, noise_sigma=0.0)
    assert record["noise_damping"] < 0.3
    assert np.abs(calm - noisy).mean() < 0.5 * np.abs(eager - noisy).mean()


def _local_std(image: np.ndarray) -> float:
    y = luma(image)
    mean = cv2.blur(y, (16, 16))
    return float(np.sqrt(np.maximum(cv2.blur(y * y, (16, 16)) - mean * mean, 0)).mean())


@pytest.mark.parametrize("name", ["chelsea", "coffee", "rocket"])
def test_local_contrast_raises_lightness_contrast_and_keeps_hue(name: str) -> None:
    image = photo(name)
    out, record = local_contrast(image, clip_limit=1.5)
    assert record["decision"] == "CLAHE on L*"
    assert _local_std(out) > 1.1 * _local_std(image)
    before, after = srgb_to_lab(image), srgb_to_lab(out)
    coloured = np.hypot(before[..., 1], before[..., 2]) > 15
    hue_shift = np.abs(np.angle(np.exp(1j * (np.arctan2(after[..., 2], after[..., 1])
                                              - np.arctan2(before[..., 2], before[..., 1])))))
    assert float(np.median(hue_shift[coloured])) < 0.03  # radians


def _lightness(image: np.ndarray) -> np.ndarray:
    return image[..., 0] if image.shape[2] == 1 else lightness(image)


@pytest.mark.parametrize("name", ["hubble_deep_field", "astronaut", "camera", "retina"])
def test_local_contrast_keeps_a_photographs_black(name: str) -> None:
    """Equalising a mostly black tile lifted it: the deep field's darkest 1 % went from L* 1.0
    to 3.9, the others' by 0.8 to 0.9. Their black stays; local contrast still rises."""
    image = photo(name)
    image = image[..., None] if image.ndim == 2 else image
    out, _ = local_contrast(image, clip_limit=1.2)
    black_before, black_after = (float(np.percentile(_lightness(im), 1)) * 100 for im in (image, out))
    assert abs(black_after - black_before) < 0.4
    assert _local_std(out) > 1.1 * _local_std(image)


def test_local_contrast_leaves_an_even_dark_area_and_its_grain() -> None:
    """Black felt at 5/255 with grain, beside a photograph: CLAHE lifted it to 13 and deepened its grain."""
    rng = np.random.default_rng(0)
    felt = np.clip(5 / 255 + rng.normal(0, 2 / 255, (256, 256, 1)), 0, 1).astype(np.float32)
    image = np.repeat(np.concatenate([felt, photo("camera")[:256, :256, None]], 1), 3, 2)
    out, _ = local_contrast(image, clip_limit=1.2)
    inside = out[:, 16:240]  # the felt, away from the photograph's edge
    assert abs(float(inside.mean()) * 255 - 5) < 0.5
    assert abs(float(inside.std()) / float(felt[:, 16:240].std()) - 1) < 0.05
    assert _local_std(out[:, 256:]) > 1.05 * _local_std(image[:, 256:])


def _on_cream_card(name: str, grain: float, pad: int = 96) -> np.ndarray:
    """A photograph mounted on an even cream card (not neutral, so not taken for the scanner's background)."""
    print_ = photo(name)[:320, :320]
    print_ = np.repeat(print_[..., None], 3, 2) if print_.ndim == 2 else print_
    card = np.empty((print_.shape[0] + 2 * pad, print_.shape[1] + 2 * pad, 3), np.float32)
    card[:] = np.array([0.9, 0.886, 0.846], np.float32)
    card[pad:-pad, pad:-pad] = print_
    card += np.random.default_rng(1).normal(0, grain, card.shape).astype(np.float32)
    return np.clip(card, 0, 1)


def _card_change(out: np.ndarray, image: np.ndarray, pad: int = 96) -> np.ndarray:
    """The change of the card's lightness (in 8-bit levels) over 15-px means that do not reach the print."""
    change = cv2.blur((lightness(out) - lightness(image)) * 255, (15, 15))
    card = np.ones(change.shape, bool)
    card[pad - 8 : -pad + 8, pad - 8 : -pad + 8] = False
    card[:8], card[-8:], card[:, :8], card[:, -8:] = False, False, False, False
    return change[card]


@pytest.mark.parametrize("name", ["astronaut", "coffee", "camera"])
@pytest.mark.parametrize("grain", [0.0, 0.01])
def test_local_contrast_changes_an_even_card_by_one_value(name: str, grain: float) -> None:
    """CLAHE gives each tile its own curve, so an even card around a print took the curves of
    the tiles it crossed: 5 to 11 levels apart across it, lighter beside the print, and its
    grain deepened. Now the card moves as one, its grain as it was; the print still gains contrast."""
    image = _on_cream_card(name, grain)
    out, record = local_contrast(image, clip_limit=1.2)
    change = _card_change(out, image)
    assert float(np.percentile(change, 99) - np.percentile(change, 1)) < 1.0
    assert record["even_fraction"] > 0.5
    inner = (slice(104, -104), slice(104, -104))
    assert _local_std(out[inner]) > 1.05 * _local_std(image[inner])
    if grain:
        card = (slice(8, 88), slice(8, -8))
        fine = [float((lightness(im) - cv2.blur(lightness(im), (7, 7)))[card].std()) for im in (image, out)]
        assert abs(fine[1] / fine[0] - 1) < 0.05


@pytest.mark.parametrize("name", ["coffee", "rocket"])
def test_local_contrast_moves_little_with_its_input(name: str) -> None:
    """A network's precision moves its output by a fraction of a level. While even areas were
    the connected components of a thresholded map, such a nudge moved coffee's change by up
    to 19 levels (4.6 at the 99.9th percentile), where CLAHE alone moved it by 1.8 (1.3)."""
    image = np.clip(cv2.resize(photo(name), None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC), 0, 1)
    nudged = np.clip(image + np.random.default_rng(5).normal(0, 0.3 / 255, image.shape).astype(np.float32), 0, 1)
    changes = [local_contrast(im, clip_limit=1.2)[0] - im for im in (image, nudged)]
    moved = np.abs(changes[0] - changes[1]).max(axis=2) * 255
    assert float(np.percentile(moved, 99.9)) < 2.0 and float(moved.max()) < 6.5


def test_lightness_alone_is_labs_lightness() -> None:
    """Local contrast reads L* alone (a third of the Lab work); it must be Lab's own L*."""
    image = np.concatenate([photo("coffee"), np.zeros((4, 600, 3), np.float32), np.ones((4, 600, 3), np.float32)])
    image[:8] *= 0.005  # the linear segment of L* near black
    assert lightness(image).shape == image.shape[:2]
    assert np.abs(lightness(image) - srgb_to_lab(image)[..., 0] / 100).max() < 1e-6


def test_local_contrast_keeps_16bit_precision() -> None:
    ramp = np.linspace(0.3, 0.31, 256 * 256, dtype=np.float32).reshape(256, 256, 1)  # 655 16-bit levels
    out, _ = local_contrast(ramp, clip_limit=1.2)
    levels = np.unique(np.round(out * 65535)).size
    assert levels > 300  # an 8-bit pipeline would leave at most a handful


@pytest.mark.parametrize("target", ["Adobe RGB", "Display P3"])
def test_colour_space_conversion_matches_littlecms(target: str) -> None:
    rgb8 = (photo("astronaut")[:128, :128] * 255).astype(np.uint8)
    converted, profile, record = convert_colour_space(rgb8 / 255.0, None, target)
    assert record["target"] == icc.SPACES[target].name and profile is not None
    reference = ImageCms.profileToProfile(
        Image.fromarray(rgb8), ImageCms.createProfile("sRGB"), ImageCms.ImageCmsProfile(io.BytesIO(profile)),
        renderingIntent=1,
    )
    assert np.abs(np.asarray(reference, np.float32) - converted * 255).max() <= 1.0


def test_conversion_reads_the_embedded_profile_and_round_trips_at_16_bits() -> None:
    rgb = photo("coffee")[:64, :64]
    adobe, adobe_profile, _ = convert_colour_space(rgb, None, "Adobe RGB")
    back, srgb_profile, record = convert_colour_space(adobe, adobe_profile, "sRGB")
    assert record["source"] == "Adobe RGB (1998)"
    assert np.abs(back - rgb).max() < 2 / 65535 * 255 / 255 + 1e-4
    assert icc.parse_profile(srgb_profile).name == "sRGB"


def test_an_untagged_image_into_srgb_is_kept_as_it_is_and_given_the_profile() -> None:
    """Taken as sRGB, it is sRGB already: converting it took 0.19 s on an 8-Mpx output (the
    2-core development VM) to move no colour by more than float rounding."""
    rgb = photo("coffee")[:64, :64]
    out, profile, record = convert_colour_space(rgb, None, "sRGB")
    assert out is rgb and record["decision"] == "kept: already sRGB, its profile embedded"
    assert icc.parse_profile(profile).name == "sRGB"
    tagged, tagged_profile, _ = convert_colour_space(rgb, None, "Adobe RGB")
    assert convert_colour_space(tagged, tagged_profile, "sRGB")[2]["decision"] == "converted from Adobe RGB (1998) to sRGB"


def test_colours_outside_the_targets_gamut_are_counted_where_they_are_clipped() -> None:
    """Adobe RGB's pure green lies outside sRGB: converting clips it to sRGB's edge, which the
    record says, with the share of pixels; nothing of an sRGB image lies outside Adobe RGB."""
    image = np.full((40, 50, 3), 0.5, np.float32)
    image[:10, :, :] = (0.0, 1.0, 0.0)  # a quarter of the rows
    adobe = icc.build_profile(icc.SPACES["Adobe RGB"])
    out, _, record = convert_colour_space(image.copy(), adobe, "sRGB")
    assert record["out_of_gamut"] == 0.25
    assert record["decision"] == "converted from Adobe RGB (1998) to sRGB; 25.00% of the pixels lay outside its gamut, " \
                                 "clipped to its edge"
    assert np.allclose(out[:10], (0.0, 1.0, 0.0), atol=1e-4)  # sRGB's own green: red and blue clipped at 0
    wider = convert_colour_space(photo("astronaut")[:64, :64], None, "Adobe RGB")[2]
    assert wider["out_of_gamut"] == 0 and wider["decision"] == "converted from sRGB to Adobe RGB (1998)"


@pytest.mark.parametrize("target", ["Adobe RGB", "sRGB"])
def test_a_scanners_lookup_table_profile_is_converted_from_through_littlecms(target: str) -> None:
    """A scanner profiled against a target tags its scans with a profile built on lookup
    tables, which the float path does not read: asked for a delivery space, the derivative
    had stayed in the scanner's (skipped). This one describes sRGB, so the result is the
    matrix path's from sRGB, to within the grid's interpolation."""
    rgb = photo("astronaut")[:64, :64]
    out, profile, record = convert_colour_space(rgb.copy(), scanner_profile(), target)
    expected, _, _ = convert_colour_space(rgb.copy(), icc.build_profile(icc.SPACES["sRGB"]), target)
    assert np.abs(out - expected).max() < 1 / 255 and icc.parse_profile(profile).name == icc.SPACES[target].name
    assert record["decision"] == (f"converted from Test scanner RGB to {icc.SPACES[target].name} through LittleCMS: "
                                  "not a matrix-shaper profile (it is built on lookup tables)")
    assert record["out_of_gamut"] == 0


def test_colours_outside_the_target_are_counted_on_the_littlecms_path_too() -> None:
    image = np.full((20, 20, 3), 0.5, np.float32)
    image[:5] = (0.0, 1.0, 0.0)  # a scanner whose space is as wide as Adobe RGB: its green lies outside sRGB
    out, _, record = convert_colour_space(image.copy(), scanner_profile(describes="adobergb"), "sRGB")
    assert record["out_of_gamut"] == 0.25 and record["decision"].endswith(
        "; 25.00% of the pixels lay outside its gamut, clipped to its edge")
    assert np.allclose(out[:5], (0.0, 1.0, 0.0), atol=2 / 255)


def test_profiles_of_another_colour_space_are_left_alone() -> None:
    lab_profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    rgb = photo("coffee")[:16, :16]
    out, profile, record = convert_colour_space(rgb, lab_profile, "sRGB")
    assert out is rgb and profile == lab_profile and record["decision"] == "skipped: colour space Lab is not RGB"


def test_an_rgb_profile_littlecms_cannot_use_either_is_left_alone() -> None:
    damaged = bytearray(scanner_profile(3))
    damaged[-200:] = bytes(200)  # the lookup table's end zeroed, its tag table cut: no transform builds
    damaged = bytes(damaged[:-150])
    rgb = photo("coffee")[:16, :16]
    out, profile, record = convert_colour_space(rgb, damaged, "sRGB")
    assert out is rgb and profile == damaged
    assert record["decision"].startswith("skipped: not a matrix-shaper profile (it is built on lookup tables), and "
                                         "LittleCMS cannot use it either (")


def test_luma_is_the_rec709_weighted_sum_in_the_input_precision() -> None:
    image = photo("astronaut", 96)
    weights = np.array([0.2126, 0.7152, 0.0722])
    for rgb in (image, image.astype(np.float64), image[::-1, 5:]):
        y = luma(rgb)
        assert y.shape == rgb.shape[:2] and y.dtype == rgb.dtype
        np.testing.assert_allclose(y, rgb.astype(np.float64) @ weights, rtol=0, atol=2e-7)
    assert luma(image[..., :1]).shape == (96, 96) and luma(image[:0]).shape == (0, 96)
