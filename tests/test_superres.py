"""Tiled super-resolution: seamless (tiled = untiled), grey stays grey, alpha upscaled apart."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import photo, psnr

from enhance_ops.chain.superres import Inference, Tiling, run_network, tiles, upscale, upscale_alpha, upscale_rgb
from enhance_ops.models.weights import load_model


@pytest.mark.parametrize("name,scale", [("span-x2", 2), ("realesr-animevideov3-x4", 4)])
def test_tiled_equals_untiled_for_light_models(name: str, scale: int) -> None:
    rgb = photo("chelsea", None)[60:156, 120:248]  # 96 x 128: several 48-px tiles
    model = load_model(name)
    whole = np.clip(run_network(model, rgb, Inference()), 0, 1)
    tiled = upscale_rgb(rgb, model, scale, tiling=Tiling(tile=48, pad=16, overlap=16))
    assert psnr(tiled, whole) >= 45


def test_tiled_equals_untiled_for_rrdbnet() -> None:
    rgb = photo("coffee", None)[120:184, 200:264]  # 64 x 64 as four 40-px tiles
    model = load_model("realesrgan-x4plus")
    whole = np.clip(run_network(model, rgb, Inference()), 0, 1)
    tiled = upscale_rgb(rgb, model, 4, tiling=Tiling(tile=40, pad=32, overlap=16))
    assert psnr(tiled, whole) >= 45


def test_tiles_cover_the_image_with_the_requested_overlap() -> None:
    spans = list(tiles(100, 130, Tiling(tile=48, pad=8, overlap=16)))
    covered = np.zeros((100, 130), int)
    for y0, y1, x0, x1 in spans:
        assert y1 - y0 == 48 and x1 - x0 == 48
        covered[y0:y1, x0:x1] += 1
    assert covered.min() >= 1


def test_a_tile_smaller_than_the_image_edge_case() -> None:
    rgb = photo("astronaut", 20, top=30, left=200)
    out = upscale_rgb(rgb, load_model("span-x2"), 2, tiling=Tiling(tile=256))
    assert out.shape == (40, 40, 3) and out.dtype == np.float32


def test_grey_input_comes_back_grey() -> None:
    grey = photo("astronaut", 24, top=30, left=200).mean(axis=2, keepdims=True)
    out = upscale(grey, load_model("span-x2"), 2)
    assert out.shape == (48, 48, 1)


def test_alpha_is_upscaled_as_a_mask() -> None:
    alpha = np.zeros((10, 10), np.float32)
    alpha[:, 5:] = 1.0
    out = upscale_alpha(alpha, 4)
    assert out.shape == (40, 40) and out.min() >= 0 and out.max() <= 1
    assert out[:, :16].max() < 0.05 and out[:, 24:].min() > 0.95


def test_invalid_tiling_is_refused() -> None:
    with pytest.raises(ValueError, match="invalid tiling"):
        Tiling(tile=32, overlap=32)
