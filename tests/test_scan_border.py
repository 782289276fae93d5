"""A print scanned whole on the scanner's background is measured without that background."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import photo
from fading_benchmark import delta_e, photos, through_the_chain
from skimage import data as skdata

from enhance_ops.chain import pipeline, preprocess, scan_border
from enhance_ops.chain.color import fading_signs
from enhance_ops.chain.colour_math import linear_to_srgb, srgb_to_linear
from enhance_ops.degrade import STAIN, fade


def on_the_scanner(print_: np.ndarray, background: float, margin: int, seed: int = 0) -> np.ndarray:
    """``print_`` with ``margin`` px of a plain background around it, and the scanner's noise."""
    scan = np.pad(print_, ((margin, margin), (margin, margin), (0, 0)), constant_values=background)
    return np.clip(scan + np.random.default_rng(seed).normal(0, 2 / 255, scan.shape), 0, 1).astype(np.float32)


@pytest.mark.parametrize("background", [0.02, 0.5, 0.97])
@pytest.mark.parametrize("margin", [4, 40])
def test_the_background_around_a_print_is_found(background: float, margin: int) -> None:
    print_ = fade(photo("rocket"), 1.0)
    found = scan_border.find(on_the_scanner(print_, background, margin))
    assert found is not None
    mask = found.mask
    inside = np.zeros(mask.shape, bool)
    inside[margin:-margin, margin:-margin] = True
    assert not (mask & ~inside).any()  # none of the background
    assert (mask & inside).sum() > 0.97 * inside.sum()  # all of the print but its edge's blend


def test_a_print_turned_on_the_scanner_is_found() -> None:
    print_ = fade(photo("rocket"), 1.0)
    turn = cv2.getRotationMatrix2D((print_.shape[1] / 2, print_.shape[0] / 2), 3, 1.0)
    turn[:, 2] += [130, 140]
    scan = cv2.warpAffine(print_, turn, (900, 700), borderValue=(0.03, 0.03, 0.03))
    placed = cv2.warpAffine(np.ones(print_.shape[:2], np.float32), turn, (900, 700)) > 0.5
    found = scan_border.find(scan)
    assert found is not None
    mask = found.mask
    assert not (mask & ~placed).any() and mask.sum() > 0.95 * placed.sum()


def test_pictures_with_no_scanners_background_are_measured_whole() -> None:
    """Photographs, and shapes on a plain ground that are not rectangles: a fundus photograph
    on black, a horse's silhouette on white, a disc on a backdrop running off the bottom."""
    pictures = [original for _, original in photos().values()]
    pictures += [photo(name) for name in ("astronaut", "chelsea", "coffee", "hubble_deep_field", "retina")]
    pictures += [np.repeat(photo(name)[..., None], 3, axis=2) for name in ("camera", "moon", "page", "text")]
    pictures.append(np.repeat((~skdata.horse()).astype(np.float32)[..., None], 3, axis=2))
    backdrop = np.full((400, 400, 3), 0.9, np.float32)
    rows, columns = np.ogrid[:400, :400]
    backdrop[(rows - 330) ** 2 + (columns - 200) ** 2 < 150**2] = 0.3
    pictures.append(backdrop)
    for picture in pictures:
        assert scan_border.find(picture) is None


@pytest.mark.parametrize("background", [0.02, 0.97])
def test_a_faded_print_on_the_scanners_background_is_restored_as_without_it(background: float) -> None:
    """On black, the background was the darkest 0.2 % that fading is judged by: the print
    never looked faded, exposure stretched it with one set of levels, and it came out at
    ΔE00 16.0 from its original on average (faded: 12.4; the fading benchmark's nine photos
    faded at 1.0 with 24 px of background). On white, the background was the white point."""
    original = photo("rocket")
    faded = fade(original, 1.0)
    scan = on_the_scanner(faded, background, 24)
    assert not fading_signs(scan).stained if background < 0.5 else fading_signs(scan).range_luma > 0.8
    out, decisions = through_the_chain(scan)
    alone, _ = through_the_chain(on_the_scanner(faded, background, 0))
    assert decisions["dynamic_range"].startswith("analysed on the print: the scanner's background around it and the print's edge, a blend of the two (18%")
    assert decisions["colour_restore"] == "faded colours restored"
    assert delta_e(out[24:-24, 24:-24], original) < delta_e(alone, original) + 0.5
    assert np.abs(out[:20] - scan[:20]).max() < 0.02  # the background as scanned, but for sharpening's touch


def test_the_background_keeps_its_pixels_where_exposure_stretches_the_print() -> None:
    """A washed-out print under a white lid (a quarter of the scan): stretched to the print's
    own white point, the lid went to white, and the gate held the scan for highlights blown
    (clipping_added 0.25). The print's own black comes back in part (a tenth of the original
    is pure black; 1 % of the result, which local contrast no longer lifts)."""
    original = photo("astronaut")[::2, ::2].copy()
    scan = on_the_scanner((0.2 + 0.6 * original).astype(np.float32), 0.96, 40)
    result = pipeline.Chain("archive-photo", ("superres.scale=2", "superres.models=[]")).run(scan)
    decisions = {r.stage: r.decision for r in result.stages}
    assert decisions["exposure"].startswith("levels stretched from [0.19")
    assert result.metrics["clipping_added"] < 0.02
    out, _ = through_the_chain(scan)  # without local contrast, which moves a flat white a little
    assert abs(float(out[:30].mean()) - 0.96) < 0.002 and np.abs(out[60:-60, 60:-60] - scan[60:-60, 60:-60]).mean() > 0.05


def test_the_print_is_found_again_where_lens_correction_moved_its_edges() -> None:
    """Undistorting moves the print's corners by up to 19 px here: the background found
    before would have let its black into what the restoration takes as the print's blacks."""
    scan = on_the_scanner(fade(photo("rocket"), 1.0), 0.02, 24)
    chain = pipeline.Chain("archive-photo", ("superres.scale=2", "superres.models=[]", "lens.k1=0.05"))
    stages = {r.stage: r for r in chain.run(scan).stages}
    assert stages["lens"].decision == "radial distortion corrected"
    assert stages["colour_restore"].decision == "faded colours restored"
    assert np.allclose(stages["colour_restore"].details["black_point"], STAIN, atol=0.03)


def test_a_prints_cast_is_judged_on_the_print_not_on_the_grey_background() -> None:
    """The background is neutral whatever cast the print has, and its noise's edges voted for
    no cast: 5.4 deg judged against the print's own 8.4."""
    tinted = linear_to_srgb(srgb_to_linear(photo("astronaut")[::2, ::2]) * np.array([1.0, 0.9, 0.7], np.float32))
    scan = on_the_scanner(tinted, 0.8, 40)
    scan = np.clip(scan + np.random.default_rng(1).normal(0, 2 / 255, scan.shape), 0, 1).astype(np.float32)
    found = scan_border.find(scan)
    assert found is not None
    neutral = np.ones(3, np.float32)
    alone = preprocess.angular_error_deg(preprocess.estimate_illuminant(tinted), neutral)
    on_the_print = preprocess.angular_error_deg(preprocess.estimate_illuminant(scan, where=found.mask), neutral)
    whole = preprocess.angular_error_deg(preprocess.estimate_illuminant(scan), neutral)
    assert abs(on_the_print - alone) < 0.5 < 2.0 < alone - whole


@pytest.mark.parametrize("strength", [0.3, 0.6, 1.0])
def test_a_faded_prints_own_paper_border_is_the_prints(strength: float) -> None:
    """Yellowed with the picture, it is the print's white: taken for a background, it kept its
    yellow while the picture was restored (ΔE00 19.1 from the unfaded border, against 8.8
    measured with it, on the fading benchmark's photos at 1.0), and the picture came out
    further from its original too (6.20 against 5.35)."""
    bordered = np.pad(photo("rocket"), ((20, 20), (20, 20), (0, 0)), constant_values=0.95)
    assert scan_border.find(on_the_scanner(fade(bordered, strength), 0.0, 0)) is None
    assert scan_border.find(on_the_scanner(bordered, 0.0, 0)) is not None  # unfaded, neutral: as a lid


@pytest.mark.parametrize("corner", ["top left", "bottom right"])
def test_a_print_laid_against_the_flatbeds_corner_is_found(corner: str) -> None:
    """Its two sides run off the scan, the background runs along the other two."""
    print_ = fade(photo("rocket"), 1.0)
    pad = ((0, 40), (0, 40), (0, 0)) if corner == "top left" else ((40, 0), (40, 0), (0, 0))
    scan = on_the_scanner(np.pad(print_, pad, constant_values=0.97), 0.0, 0)
    found = scan_border.find(scan)
    assert found is not None
    placed = np.zeros(scan.shape[:2], bool)
    placed[pad[0][0]:scan.shape[0] - pad[0][1], pad[1][0]:scan.shape[1] - pad[1][1]] = True
    assert not (found.mask & ~placed).any() and found.mask.sum() > 0.97 * placed.sum()


def test_a_grey_sky_over_a_straight_horizon_is_the_picture() -> None:
    """The sky runs along one side and part of two: no print lies against a corner there."""
    ground = photo("rocket")[200:]
    scene = np.concatenate([np.full((180, ground.shape[1], 3), 0.7, np.float32), ground])
    assert scan_border.find(on_the_scanner(scene, 0.0, 0)) is None


def test_a_print_on_black_felt_is_not_held_for_the_networks_crushed_black() -> None:
    """Real-ESRGAN darkened the felt's 5/255 to about 1.7, which SSIM, relative in the dark,
    read as structure lost: consistency SSIM 0.889 against the gate's 0.9, for a print that
    alone scores 0.95. The colour guard keeps the dark's level (superres.keep_input_colour),
    and local contrast, which lifted the felt to 13/255, leaves it as the other tone stages do."""
    faded = fade(photo("coffee")[::2, ::2].copy(), 1.0)
    scan = np.round(on_the_scanner(faded, 0.02, 24) * 255).astype(np.float32) / 255
    result = pipeline.Chain("archive-photo").run(scan)
    assert result.models == ("realesrgan-x4plus",)
    assert result.metrics["consistency_ssim"] > 0.94
    assert abs(float(result.pixels[:80].mean()) - float(scan[:20].mean())) < 1 / 255
