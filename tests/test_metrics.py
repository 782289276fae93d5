"""Metrics reproduce the official values published for five TID2013 pairs (../shared/calibration)."""
from __future__ import annotations

import csv

import numpy as np
import pytest
from conftest import SHARED, photo
from PIL import Image

from enhance_ops.quality.metrics import lpips, psnr, ssim

CALIBRATION = SHARED / "calibration" / "iqa"
PAIRS = ["I03", "I04", "I06", "I08", "I19"]


def _official() -> dict[str, dict[str, float]]:
    with (CALIBRATION / "calibration_summary.csv").open() as fh:
        rows = {row["Method"]: row for row in csv.DictReader(fh)}
    return {m: {p: float(rows[m][f"{p}.bmp"]) for p in PAIRS} for m in ("psnr", "ssim", "lpips")}


OFFICIAL = _official()


def _pair(name: str) -> tuple[np.ndarray, np.ndarray]:
    read = lambda kind: np.asarray(Image.open(CALIBRATION / kind / f"{name}.bmp").convert("RGB"), np.float32) / 255  # noqa: E731
    return read("dist"), read("ref")


@pytest.mark.parametrize("pair", PAIRS)
def test_psnr_matches_the_official_value(pair: str) -> None:
    assert psnr(*_pair(pair)) == pytest.approx(OFFICIAL["psnr"][pair], abs=0.01)


@pytest.mark.parametrize("pair", PAIRS)
def test_ssim_matches_the_official_value(pair: str) -> None:
    assert ssim(*_pair(pair)) == pytest.approx(OFFICIAL["ssim"][pair], abs=0.001)


@pytest.mark.parametrize("pair", PAIRS)
def test_lpips_matches_the_official_value(pair: str) -> None:
    assert lpips(*_pair(pair)) == pytest.approx(OFFICIAL["lpips"][pair], abs=0.001)


def test_lpips_fast_path_gives_the_plain_networks_value() -> None:
    """One batch, channels_last, packed weights: the value of the plain network run on each image."""
    import torch

    from enhance_ops.models.weights import load_model

    a, b = _pair("I08")
    net = load_model("lpips-alex")
    tensor = lambda x: torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None]  # noqa: E731
    with torch.inference_mode():
        fa, fb = net._features(tensor(a)), net._features(tensor(b))
        plain = float(sum(lin((x - y) ** 2).mean() for lin, x, y in zip(net.lins, fa, fb)))
    assert lpips(a, b) == pytest.approx(plain, abs=1e-6)


def test_identical_images() -> None:
    image = photo("coffee", 64)
    assert psnr(image, image) == float("inf")
    assert ssim(image, image) == pytest.approx(1.0)
    assert lpips(image, image) == pytest.approx(0.0, abs=1e-6)


def test_16bit_differences_below_one_8bit_step_are_measured() -> None:
    base = np.linspace(0.2, 0.8, 128 * 128, dtype=np.float64).reshape(128, 128, 1)
    nudged = base + 40 / 65535  # well under one 8-bit level (257/65535)
    assert psnr(nudged, base) == pytest.approx(20 * np.log10(65535 / 40), abs=0.01)
    assert 0.99 < ssim(nudged, base, bit_depth=16) < 1.0


def test_border_crop() -> None:
    a = photo("coffee", 64)
    b = a.copy()
    b[:4] = 0.0
    assert psnr(a, b, border=4) == float("inf") and psnr(a, b) < 40
