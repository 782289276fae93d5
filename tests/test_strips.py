"""Strip-wise processing gives exactly what the whole-image operation gives, in place or not.

Every stage after super-resolution works on row strips so large scans fit in memory; these
tests shrink the strips to a few rows (far fewer than the stages' context margins) and
compare with one strip covering the whole image.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

import cv2
import numpy as np
import pytest
import torch
from conftest import photo

from enhance_ops.chain import color, pipeline, postprocess, strips, superres
from enhance_ops.degrade import fade
from enhance_ops.quality import measures, metrics


@pytest.fixture
def tiny_strips(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(strips, "STRIP_PIXELS", 700)  # 3-8 rows of these images per strip


@pytest.fixture(params=[1, 3], ids=["one lane", "three lanes"])
def lanes(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """Strips one at a time, and three at once (whatever this machine's cores)."""
    monkeypatch.setenv(strips.LANES_VARIABLE, str(request.param))
    return request.param


def whole_and_strips(fn: Callable[[], object], monkeypatch: pytest.MonkeyPatch) -> tuple[object, object]:
    monkeypatch.setattr(strips, "STRIP_PIXELS", 1 << 40)
    whole = fn()
    monkeypatch.setattr(strips, "STRIP_PIXELS", 700)
    return whole, fn()


def test_map_rows_in_place_equals_the_whole_image_operation(tiny_strips: None, lanes: int) -> None:
    image = photo("coffee", 96, top=100, left=150)
    blur = lambda rows, _top: cv2.GaussianBlur(rows, (0, 0), 3.0)  # noqa: E731  (reaches 12 rows)
    expected = cv2.GaussianBlur(image, (0, 0), 3.0)
    assert np.array_equal(strips.map_rows(image, blur, margin=14), expected)
    in_place = image.copy()
    assert strips.map_rows(in_place, blur, margin=14, out=in_place) is in_place
    assert np.array_equal(in_place, expected)
    too_little = image.copy()
    strips.map_rows(too_little, blur, margin=2, out=too_little)
    assert not np.array_equal(too_little, expected)  # the margin is what makes it exact


def test_strips_run_in_lanes_at_once(tiny_strips: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Numpy's element-wise work, most of a post-processing stage, used one core of a GPU
    worker's sixteen: on an H200 host, local contrast took 0.63 s of a 960 x 540 photo's 2.06 s
    at x4 while the network took 0.14 s (docs/benchmarks.md). Each strip here waits until
    three are running, which they only do in lanes."""
    monkeypatch.setenv(strips.LANES_VARIABLE, "3")
    image = np.ascontiguousarray(photo("coffee", 90, top=100, left=150)[:, :70])
    heights = [y1 - y0 for y0, y1 in strips.bands(90, 70)]
    assert heights == [6] * 15  # strips of 700 px shrunk to 2/3 for three lanes: five waves of three
    together = threading.Barrier(3, timeout=10)

    def blur(rows: np.ndarray, _top: int) -> np.ndarray:
        together.wait()
        return cv2.GaussianBlur(rows, (0, 0), 1.0)

    assert np.array_equal(strips.map_rows(image, blur, margin=4), cv2.GaussianBlur(image, (0, 0), 1.0))
    assert strips.map_bands(90, 70, lambda y0, y1: (together.wait(), y1 - y0)[1]) == heights  # in band order


def test_a_failing_strip_leaves_no_other_still_writing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(strips.LANES_VARIABLE, "2")
    finished = threading.Event()

    def slow() -> None:
        time.sleep(0.3)
        finished.set()

    def failing() -> None:
        raise RuntimeError("a bad strip")

    with pytest.raises(RuntimeError, match="a bad strip"):
        strips.in_lanes([failing, slow])
    assert finished.is_set()


def test_work_beside_a_block_runs_while_it_does_and_gives_its_result_after(monkeypatch: pytest.MonkeyPatch) -> None:
    """A TIFF's damage check expands its strips while libtiff decodes them (codecs.decode)."""
    monkeypatch.setenv(strips.LANES_VARIABLE, "2")
    together = threading.Barrier(2, timeout=10)
    with strips.beside(lambda: (together.wait(), threading.get_ident())[1]) as result:
        together.wait()  # passes only while the work beside is running too
    assert result() != threading.get_ident()

    def failing() -> None:
        raise RuntimeError("a broken stream")

    with strips.beside(failing) as result:
        pass
    with pytest.raises(RuntimeError, match="a broken stream"):
        result()


def test_with_one_lane_work_beside_runs_when_its_result_is_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(strips.LANES_VARIABLE, "1")
    ran: list[int] = []
    with strips.beside(lambda: ran.append(threading.get_ident()) or "checked") as result:
        assert ran == []
    assert result() == "checked" and ran == [threading.get_ident()]


def test_a_failing_block_leaves_nothing_beside_it_running(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(strips.LANES_VARIABLE, "2")
    started, finished = threading.Event(), threading.Event()

    def slow() -> None:
        started.set()
        time.sleep(0.3)
        finished.set()

    with pytest.raises(RuntimeError, match="a bad decode"), strips.beside(slow):
        assert started.wait(10)
        raise RuntimeError("a bad decode")
    assert finished.is_set()


@pytest.mark.parametrize("setting", ["0", "many", "-2"])
def test_a_bad_lane_setting_is_refused_before_any_image(monkeypatch: pytest.MonkeyPatch, setting: str) -> None:
    monkeypatch.setenv(strips.LANES_VARIABLE, setting)
    with pytest.raises(ValueError, match="ENHANCE_STRIP_LANES=.*a whole number of strips at once"):
        pipeline.Chain("archive-photo", ("superres.scale=2", "superres.models=[]"))


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_enlarged_and_shrunk_rows_match_opencv_on_the_whole_image(scale: int) -> None:
    source = photo("astronaut", 37, top=40, left=200)
    big = cv2.resize(source, (37 * scale, 37 * scale), interpolation=cv2.INTER_CUBIC)
    for y0, y1 in [(0, 5), (3, 17), (40, 41), (37 * scale - 9, 37 * scale)]:
        assert np.array_equal(strips.enlarge_rows(source, scale, y0, y1), big[y0:y1])
    back = cv2.resize(big, (37, 37), interpolation=cv2.INTER_AREA)
    assert np.allclose(strips.shrink_rows(big, scale, 10, 20), back[10:20], atol=1e-6)


def test_tile_weights_sum_to_one_with_a_short_last_tile() -> None:
    """A network that only enlarges (nearest) must come back exactly, whatever the tiles' lengths."""
    source = photo("chelsea", None)[50:150, 100:173]  # 100 x 73: the last tiles are 20 and 9 px long
    nearest = torch.nn.Upsample(scale_factor=2, mode="nearest")
    out = superres.upscale_rgb(source, nearest, 2, tiling=superres.Tiling(tile=24, pad=4, overlap=8))
    assert np.allclose(out, np.repeat(np.repeat(source, 2, 0), 2, 1), atol=2e-6)
    grey = superres.upscale(source[..., :1], nearest, 2, tiling=superres.Tiling(tile=24, pad=4, overlap=8))
    assert grey.shape == (200, 146, 1) and np.allclose(grey[..., 0], np.repeat(np.repeat(source[..., 0], 2, 0), 2, 1))


def test_post_sr_stages_in_strips_equal_the_whole_image(monkeypatch: pytest.MonkeyPatch, lanes: int) -> None:
    source = fade(photo("coffee", 40, top=100, left=200), 0.8)
    ripple = np.float32(0.01) * np.sin(np.arange(80, dtype=np.float32))[:, None, None]
    output = np.clip(np.repeat(np.repeat(source, 2, 0), 2, 1) + ripple, 0, 1).astype(np.float32)
    stages: dict[str, Callable[[np.ndarray, np.ndarray | None], np.ndarray]] = {
        "colour guard": lambda im, out: superres.keep_input_colour(im, source, out=out),
        "colour restore": lambda im, out: color.restore_faded_colour(im, reference=source, mode="on", out=out)[0],
        "sharpen": lambda im, out: postprocess.adaptive_sharpen(im, amount=0.8, out=out)[0],
        "local contrast": lambda im, out: postprocess.local_contrast(im, clip_limit=2.0, tile_px=16, out=out)[0],
        "colour space": lambda im, out: postprocess.convert_colour_space(im, None, "Adobe RGB", out=out)[0],
    }
    for name, stage in stages.items():
        whole, strip_wise = whole_and_strips(lambda stage=stage: stage(output, None), monkeypatch)
        assert not np.array_equal(whole, output), name  # the stage did something
        assert np.allclose(whole, strip_wise, atol=1e-6), name
        in_place = output.copy()
        assert stage(in_place, in_place) is in_place, name
        assert np.allclose(in_place, whole, atol=1e-6), name


@pytest.mark.parametrize(("top", "height"), [(0, 13), (5, 20), (37, 11), (60, 4)])
def test_resized_rows_are_those_of_the_whole_map_resized(top: int, height: int) -> None:
    """A map kept small (the print's weight, local contrast's even areas) read a strip at a time."""
    small = np.random.default_rng(2).random((8, 7), dtype=np.float32)
    whole = cv2.resize(small, (61, 64), interpolation=cv2.INTER_LINEAR)
    rows = strips.resized_rows(small, top, top + height, 64, 61)
    assert rows.shape == (height, 61) and rows.dtype == np.float32
    assert np.allclose(rows, whole[top : top + height], atol=1e-6)
    planes = strips.resized_rows(np.dstack([small, 1 - small]), top, top + height, 64, 61)
    assert np.allclose(planes[..., 1], 1 - rows, atol=1e-6)


def test_local_contrast_over_even_areas_in_strips_equals_the_whole_image(
    monkeypatch: pytest.MonkeyPatch, lanes: int,
) -> None:
    """The even areas' cell maps are read strip by strip, interpolated to each strip's rows."""
    image = np.empty((140, 130, 3), np.float32)
    image[:] = (0.9, 0.88, 0.85)  # a card, 140 x 130 (neither a whole number of cells), a print on it
    image[38:102, 33:97] = photo("astronaut", 64, top=60, left=180)
    contrast = lambda out: postprocess.local_contrast(image, clip_limit=1.2, tile_px=32, out=out)  # noqa: E731
    (whole, record), (strip_wise, _) = whole_and_strips(lambda: contrast(None), monkeypatch)
    assert record["even_fraction"] > 0.3 and not np.array_equal(whole, image)
    assert np.allclose(whole, strip_wise, atol=1e-6)
    image = image.copy()
    assert contrast(image)[0] is image and np.allclose(image, whole, atol=1e-6)


def test_measures_in_strips_equal_the_whole_image(monkeypatch: pytest.MonkeyPatch, lanes: int) -> None:
    source = photo("astronaut", 64, top=60, left=180)
    output = np.clip(cv2.resize(source, (256, 256), interpolation=cv2.INTER_CUBIC) * 1.02, 0, 1)
    output[:, 32:] += 0.04  # steps across the 32-px grid (columns)
    output[:, 64:] -= 0.04
    output[:, 96:] += 0.04
    output[:, 128:] -= 0.04
    np.clip(output, 0, 1, out=output)
    whole, strip_wise = whole_and_strips(
        lambda: {**measures.sr_integrity(source, output, tile_grid=(32, 32)), **measures.descriptive(source, output),
                 "ssim": metrics.ssim(output, output * 0.9), "psnr": metrics.psnr(output, output * 0.9)},
        monkeypatch,
    )
    assert whole.keys() == strip_wise.keys()
    for key in whole:
        assert strip_wise[key] == pytest.approx(whole[key], rel=1e-6, abs=1e-9), key
    assert whole["seam_score"] > 4  # and the measures still see what they measure
