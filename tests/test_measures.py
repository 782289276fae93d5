"""Consistency and no-reference measures respond to what they claim to measure."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import photo, shrink

from enhance_ops.chain.superres import STRETCH, Inference, Tiling, run_network, upscale_rgb
from enhance_ops.models.manifest import get_entry
from enhance_ops.models.weights import load_model
from enhance_ops.quality import measures as ms


@pytest.fixture(scope="module")
def span_case() -> tuple[np.ndarray, np.ndarray]:
    source = shrink(photo("chelsea", 192, top=40, left=120), 2)
    return source, np.clip(run_network(load_model("span-x2"), source, Inference()), 0, 1)


def test_faithful_sr_is_consistent(span_case: tuple[np.ndarray, np.ndarray]) -> None:
    source, output = span_case
    m = ms.consistency(source, output)
    assert m["consistency_psnr_db"] > 35 and m["consistency_ssim"] > 0.97 and m["consistency_lpips"] < 0.2


@pytest.mark.parametrize("shape", [(40, 3000), (3000, 40), (16, 400)])
def test_a_long_thin_scan_is_measured_too(shape: tuple[int, int]) -> None:
    """A strip of film or a banner: reducing it to 512 px on its long side left AlexNet a few
    pixels on the short one, and the LPIPS measure raised (an internal error for the image)."""
    height, width = shape
    source = np.ascontiguousarray(np.resize(photo("astronaut", None), (height, width, 3)))
    output = np.clip(ms.enlarge_to(source, (2 * width, 2 * height)), 0, 1)
    lpips = ms.consistency(source, output)["consistency_lpips"]
    assert 0 <= lpips < 0.05  # a bicubic enlargement against itself


def test_colour_shifted_sr_is_not(span_case: tuple[np.ndarray, np.ndarray]) -> None:
    source, output = span_case
    tinted = np.clip(output * np.array([1.15, 1.0, 0.85], np.float32), 0, 1)
    assert ms.consistency(source, tinted)["consistency_psnr_db"] < ms.consistency(source, output)["consistency_psnr_db"] - 8


def test_naive_tiling_seams_are_detected_and_blended_tiles_are_not() -> None:
    source = photo("coffee", None)[100:196, 150:246]
    model = load_model("realesr-animevideov3-x4")
    blended_tiling, naive_tiling = Tiling(24, 16, 8, STRETCH), Tiling(24, 0, 0)
    blended = upscale_rgb(source, model, 4, tiling=blended_tiling)
    naive = upscale_rgb(source, model, 4, tiling=naive_tiling)
    blended_grid, naive_grid = (blended_tiling.pitch(96) * 4,) * 2, (naive_tiling.pitch(96) * 4,) * 2
    assert blended_grid == (72, 72)  # 26-px tiles (24 stretched, saving one), 8 px cross-faded
    assert ms.seam_score(blended, blended_grid) < 2
    assert ms.seam_score(naive, naive_grid) > 6
    assert ms.sr_integrity(source, naive, tile_grid=naive_grid)["artefact_score"] > 0.05
    assert ms.sr_integrity(source, blended, tile_grid=blended_grid)["artefact_score"] < 0.05


def test_seams_too_faint_to_see_do_not_count() -> None:
    """A flat, dark image: its shifted grids agree so closely that any step stands out in
    z-score terms; a step of a third of an 8-bit level is no artefact, two levels are."""
    rng = np.random.default_rng(0)
    flat = np.full((256, 256, 3), 0.02, np.float32) + rng.normal(0, 0.2 / 255, (256, 256, 3)).astype(np.float32)

    def stepped(step: float) -> np.ndarray:
        image = flat.copy()
        for column in range(64, 256, 64):
            image[:, column:] += step if column % 128 else -step
        return np.clip(image, 0, 1)

    assert ms.seam_score(stepped(0.3 / 255), (64, 64)) < ms.SEAM_SCORE_SEEN
    assert ms.seam_score(stepped(2 / 255), (64, 64)) > ms.SEAM_SCORE_SEEN


def test_seams_are_looked_for_on_each_axis_own_pitch() -> None:
    """A tile stretched along one axis only makes a grid whose pitch down and across differ:
    seams every 80 columns are found on an 80-px pitch across, not where rows' 64 would put them."""
    rng = np.random.default_rng(1)
    image = np.full((320, 400, 3), 0.4, np.float32) + rng.normal(0, 1 / 255, (320, 400, 3)).astype(np.float32)
    for column in range(80, 400, 80):
        image[:, column:] += 3 / 255 if column % 160 else -3 / 255
    assert ms.seam_score(image, (64, 80)) > ms.SEAM_SCORE_SEEN
    assert ms.seam_score(image, (80, 64)) < ms.SEAM_SCORE_SEEN


def test_light_model_tiles_without_cross_fade_leave_no_seams() -> None:
    """The manifest gives the light models 12 px of context and no cross-fade: hard tile
    borders that the seam measure must not see, where context-free tiles do show."""
    source = photo("coffee", None)[100:196, 150:246]
    model = load_model("realesr-animevideov3-x4")
    tiling = Tiling(24).for_model(get_entry("realesr-animevideov3-x4"))
    assert tiling.overlap == 0
    assert ms.seam_score(upscale_rgb(source, model, 4, tiling=tiling), (24 * 4, 24 * 4)) < 2


def test_a_ruled_line_on_a_tile_boundary_is_no_seam() -> None:
    """A ledger's rule whose edge fell on a tile boundary scored 9-20 (seams count from 4) and
    held a sound page for review: a content edge lies on one grid line, a seam on each (naive
    tiling is still found: ``test_naive_tiling_seams_are_detected_and_blended_tiles_are_not``)."""
    from PIL import Image, ImageDraw, ImageFont

    page = Image.new("L", (512, 512), 255)
    draw = ImageDraw.Draw(page)
    for y in range(20, 500, 34):
        draw.text((10, y), "Parish register folio 1841 entries", font=ImageFont.load_default(size=22), fill=0)
    ruled = np.asarray(page, np.float32)[..., None].copy() / 255
    ruled[256:259, 8:504] = 0  # its top edge on the tile boundary at row 256
    ruled[8:504, 384:387] = 0  # and a column rule's left edge on the one at column 384
    output = upscale_rgb(ruled, load_model("span-x4"), 4, tiling=Tiling(128).for_model(get_entry("span-x4")))
    assert ms.seam_score(output, (128 * 4, 128 * 4)) < 2


def test_ringing_counts_as_halo(span_case: tuple[np.ndarray, np.ndarray]) -> None:
    source, output = span_case
    y = output.mean(axis=2, keepdims=True)
    ringing = np.clip(output + 2.0 * (output - np.roll(y, 1, axis=1)), 0, 1)  # strong overshoot at edges
    assert ms.halo_fraction(output, source) < 0.01
    assert ms.halo_fraction(ringing, source) > 5 * ms.halo_fraction(output, source)


def test_noise_sharpness_clipping_colourfulness() -> None:
    clean = photo("astronaut", 128, top=20, left=150)
    noisy = np.clip(clean + np.random.default_rng(0).normal(0, 10 / 255, clean.shape), 0, 1).astype(np.float32)
    d = ms.descriptive(noisy, np.repeat(np.repeat(clean, 2, 0), 2, 1))
    assert d["noise_sigma_in"] * 255 == pytest.approx(10, rel=0.2) and d["noise_sigma_out"] < d["noise_sigma_in"] / 2
    assert d["sharpness_gain"] < 1.0  # the noise was "detail"; the clean output has less
    assert ms.colourfulness(np.repeat(clean.mean(axis=2, keepdims=True), 3, 2)) < 1
    assert ms.colourfulness(clean) > 20
    clipped = clean.copy()
    clipped[:32] = 1.0
    blown = ms.descriptive(clean, clipped)
    assert blown["clipped_fraction"] == pytest.approx(0.25, abs=0.01) == blown["clipping_added"]


def test_clipping_the_master_had_already_is_not_counted_as_added() -> None:
    """A blank page or a film scan's black border is clipped in the master: the derivative
    keeping it so added nothing; blowing out a quarter more of it did."""
    framed = photo("astronaut", 128, top=20, left=150)
    framed[:, :40] = 0.0  # a black border, 31% of the scan
    kept = ms.descriptive(framed, framed)
    assert kept["clipped_fraction"] == pytest.approx(40 / 128, abs=0.01) and kept["clipping_added"] == 0.0
    blown = framed.copy()
    blown[:32, 40:] = 1.0
    assert ms.descriptive(framed, blown)["clipping_added"] == pytest.approx(0.25 * 88 / 128, abs=0.01)
    white_page = np.ones((64, 64, 1), np.float32)
    assert ms.descriptive(white_page, white_page * 0.999)["clipping_added"] == 0.0  # less clipped than it was


def test_colourfulness_is_hasler_suesstrunk() -> None:
    """The strip-wise OpenCV sums give the formula's value computed whole in double."""
    image = photo("astronaut", 300, top=0, left=100)
    x = image.astype(np.float64) * 255
    rg, yb = x[..., 0] - x[..., 1], (x[..., 0] + x[..., 1]) / 2 - x[..., 2]
    expected = np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean())
    assert ms.colourfulness(image) == pytest.approx(expected, rel=1e-6)


def test_step_profiles_are_mean_absolute_luma_steps() -> None:
    image = photo("astronaut", 200, top=10, left=60)
    y = (image.astype(np.float64) @ np.array([0.2126, 0.7152, 0.0722]))
    columns, rows = ms.step_profiles(image)
    np.testing.assert_allclose(columns, np.abs(np.diff(y, axis=1)).mean(axis=0), rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(rows, np.abs(np.diff(y, axis=0)).mean(axis=1), rtol=1e-5, atol=1e-9)


def test_composite_orders_good_above_bad() -> None:
    good = {"consistency_psnr_db": 42.0, "consistency_ssim": 0.99, "consistency_lpips": 0.1, "artefact_score": 0.0}
    bad = {"consistency_psnr_db": 26.0, "consistency_ssim": 0.8, "consistency_lpips": 0.5, "artefact_score": 0.2}
    assert 0 <= ms.composite(bad) < ms.composite(good) <= 1


def test_every_measure_is_declared() -> None:
    source = photo("coffee", 48, top=100, left=200)
    out = np.repeat(np.repeat(source, 2, 0), 2, 1)
    produced = {**ms.sr_integrity(source, out, tile_grid=(32, 32)), **ms.descriptive(source, out)}
    assert set(produced) | {"composite_score"} == set(ms.MEASURES)


@pytest.mark.parametrize("period", [6, 10, 14])
def test_a_repeating_pattern_with_an_edge_on_the_one_grid_line_is_no_seam(period: int) -> None:
    """A descreened halftone of two tiles across scored 4.7 (seams count from 4), its tiled
    and untiled outputs 74 dB apart: the steps 4 and 8 px beside the one grid line were at
    other phases of its dots than the line. Beside it by the pattern's own period, the same
    pattern shows no seam, and a seam on it still shows."""
    rng = np.random.default_rng(period)
    columns = np.arange(1024)
    bars = ((columns - 512) % period < period // 2).astype(np.float32)  # an edge at column 512, on the grid line
    image = np.repeat(0.3 + 0.3 * bars[None, :, None], 256, axis=0) + rng.normal(0, 1 / 255, (256, 1024, 1))
    image = image.astype(np.float32)
    assert ms.seam_score(image, (256, 512)) < 2
    seam = image.copy()
    seam[:, 512:] += 4 / 255
    assert ms.seam_score(seam, (256, 512)) > ms.SEAM_SCORE_SEEN
