"""Faded-colour restoration on the synthetic-fading benchmark of real photos (bench/fading_benchmark.py)."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import photo
from fading_benchmark import STRENGTHS, photos, run

from enhance_ops.chain.color import fading_signs, restore_faded_colour
from enhance_ops.degrade import STAIN, fade


@pytest.fixture(scope="module")
def benchmark() -> dict:
    return run()


@pytest.mark.parametrize("group", ["tuning", "held-out"])
@pytest.mark.parametrize("strength", STRENGTHS)
def test_restoration_beats_the_faded_input_and_grey_world(benchmark: dict, group: str, strength: float) -> None:
    s = benchmark["summary"][f"{group}@{strength}"]
    assert s["restored"] < s["grey_world"] - 3
    assert s["restored"] < 0.9 * s["faded"]


def test_strongly_faded_prints_lose_about_half_their_colour_error(benchmark: dict) -> None:
    # Measured 0.51 (tuning set 0.49, held-out 0.52); the target of 0.5 is not met (docs/chain.md).
    assert benchmark["summary"]["all@1.0"]["restored/faded"] <= 0.55
    assert benchmark["summary"]["held-out@1.0"]["restored/faded"] <= 0.55


def test_originals_are_not_taken_for_faded_prints() -> None:
    for name, (_, original) in photos().items():
        assert not fading_signs(original).faded, name


def test_strongly_faded_prints_are_detected() -> None:
    for name, (_, original) in photos().items():
        assert fading_signs(fade(original, 1.0)).faded, name


def test_auto_mode_leaves_unfaded_photos_untouched() -> None:
    original = photo("astronaut")
    out, record = restore_faded_colour(original)
    assert out is original and record["decision"] == "skipped: no signs of fading"


def test_greyscale_and_off_are_skipped() -> None:
    grey = photo("camera")[..., None]
    assert restore_faded_colour(grey, mode="on")[1]["decision"] == "skipped: greyscale image"
    faded = fade(photo("coffee"), 1.0)
    assert restore_faded_colour(faded, mode="off")[0] is faded


def test_restoration_records_its_parameters() -> None:
    _, record = restore_faded_colour(fade(photo("rocket"), 1.0))
    assert record["decision"] == "faded colours restored"
    assert len(record["gains"]) == 3 and record["chroma_gain"] >= 1.0
    assert record["signs"]["black_luma"] > 0.08
    assert np.allclose(record["black_point"], STAIN, atol=0.03)  # the stain it found is the one applied
