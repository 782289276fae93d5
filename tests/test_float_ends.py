"""bf16 networks with fp32 ends: a 16-bit master's gradation reaches the network and leaves it unrounded."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import photo, psnr

from enhance_ops.chain import denoise
from enhance_ops.chain.superres import Inference, run_network
from enhance_ops.chain.pipeline import Chain, Master
from enhance_ops.models.float_ends import Fp32Conv, on_bf16_grid, takes_float32
from enhance_ops.models.manifest import get_entry
from enhance_ops.models.weights import load_model
from enhance_ops.samples import smooth_ramp

BF16 = Inference(precision="bf16")  # the chain's CPU path: bf16 weights, packed convolutions
FP32 = Inference(precision="fp32")


@pytest.mark.parametrize("name", ["realesrgan-x4plus", "realesr-animevideov3-x4", "span-x4", "span-x2"])
def test_a_bf16_network_with_fp32_ends_keeps_a_16_bit_gradient(name: str) -> None:
    """Measured on this ramp: RRDBNet 44 → 50 dB, the compact model 47 → 53, SPAN 54-56 → 67-68."""
    ramp = smooth_ramp(48)
    reference = run_network(FP32.prepare(load_model(name)), ramp, FP32)
    prepared = BF16.prepare(load_model(name))
    ours = run_network(prepared, ramp, BF16)
    all_bf16 = run_network(load_model(name).to(torch.bfloat16), ramp, BF16)  # image and output rounded too
    kept = sum(isinstance(m, Fp32Conv) for m in prepared.modules())
    named = [conv for conv in load_model(name).image_convolutions if conv]  # the compact model names no writer
    assert kept == len(named) + len(get_entry(name).fp32_inside) and takes_float32(prepared)
    assert on_bf16_grid(all_bf16) == 1.0 and on_bf16_grid(ours) < 0.2
    assert psnr(ours, reference) >= psnr(all_bf16, reference) + 3


def test_span_x4_in_bf16_keeps_a_black_border_black_and_its_consistency() -> None:
    """A photo on a black frame (film rebate, a scanner's black lid) under fidelity x4. With
    SPAN x4's conv_cat in bf16 the frame came out 0.5-0.7 of a level above black and the
    consistency SSIM fell from 0.998 to 0.925, near the gate's 0.9."""
    assert get_entry("span-x4").fp32_inside == ("conv_cat",)
    black = run_network(BF16.prepare(load_model("span-x4")), np.zeros((32, 32, 3), np.float32), BF16)
    assert black.mean() * 255 < 0.3  # fp32: 0.11; conv_cat in bf16: 0.70
    framed = np.zeros((128, 128, 3), np.float32)
    framed[32:96, 32:96] = photo("astronaut", 64, top=60, left=200)
    result = Chain("fidelity", inference=BF16).run_master(Master(framed))
    assert result.metrics["consistency_ssim"] >= 0.98 and result.pixels[:64, :64].mean() * 255 < 0.3


def test_the_bf16_denoiser_returns_unrounded_values_through_its_noise_level_wrapper() -> None:
    ffdnet = BF16.prepare(load_model("ffdnet-color"))
    ramp = smooth_ramp(64)
    noisy = np.clip(ramp + np.random.default_rng(0).normal(0, 8 / 255, ramp.shape), 0, 1).astype(np.float32)
    ours, _ = denoise.denoise(noisy, ffdnet, sigma_override=8, inference=BF16)
    reference, _ = denoise.denoise(noisy, FP32.prepare(load_model("ffdnet-color")), sigma_override=8,
                                   inference=FP32)
    assert on_bf16_grid(ours) < 0.2 and psnr(ours, reference) >= 50


def test_a_network_that_names_no_image_convolutions_runs_wholly_in_bf16() -> None:
    model = BF16.prepare(torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
                                             torch.nn.Conv2d(8, 3, 3, padding=1)).eval())
    assert not takes_float32(model)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
