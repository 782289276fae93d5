"""Metrics reproduce the official values published for five TID2013 pairs (../shared/calibration)."""
from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from conftest import SHARED, photo
from PIL import Image

from enhance_ops.chain.superres import Inference, best_precision
from enhance_ops.models.weights import load_model
from enhance_ops.quality.metrics import _lpips_net, lpips, psnr, ssim

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


def _tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None]


def _plain_lpips(a: np.ndarray, b: np.ndarray) -> float:
    """The plain fp32 network, each image on its own: no batch, packing, layout or bf16."""
    net = load_model("lpips-alex")
    with torch.inference_mode():
        fa, fb = net._features(_tensor(a)), net._features(_tensor(b))
        return float(sum(lin((x - y) ** 2).mean() for lin, x, y in zip(net.lins, fa, fb)))


@pytest.mark.parametrize("pair", PAIRS)
def test_lpips_fast_path_gives_the_plain_networks_value(pair: str) -> None:
    """One batch, channels_last, packed weights and, on a CPU with native bf16, a bf16
    backbone: the plain fp32 network's value, to rounding in fp32 and within 2e-4 in bf16."""
    a, b = _pair(pair)
    bf16 = best_precision("cpu") == "bf16"
    assert any(p.dtype == torch.bfloat16 for p in _lpips_net("alex").parameters()) == bf16
    assert lpips(a, b) == pytest.approx(_plain_lpips(a, b), abs=2e-4 if bf16 else 1e-6)


@pytest.mark.parametrize("pair", PAIRS)
def test_lpips_with_a_bf16_backbone_stays_within_2e_4_of_fp32(pair: str) -> None:
    """Whatever this CPU's own precision: the image read and the features compared in fp32
    (1.4e-4 at most measured on these pairs); identical images still at 0."""
    net = Inference(precision="bf16", layout_per_shape=True).prepare(load_model("lpips-alex"))
    a, b = _pair(pair)
    with torch.inference_mode():
        assert float(net(_tensor(a), _tensor(b))[0]) == pytest.approx(_plain_lpips(a, b), abs=2e-4)
        assert float(net(_tensor(a), _tensor(a))[0]) == pytest.approx(0.0, abs=1e-6)


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
