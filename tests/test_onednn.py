"""Prepacked oneDNN convolutions: nn.Conv2d's numbers (to rounding), for any input size."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import photo
from torch import nn

from enhance_ops.chain.superres import Inference, run_network
from enhance_ops.models import onednn
from enhance_ops.models.float_ends import Fp32Conv
from enhance_ops.models.weights import load_model

pytestmark = pytest.mark.skipif(not onednn.available(), reason="this torch build has no oneDNN")


@pytest.mark.parametrize("per_shape", [False, True], ids=["one-layout", "per-shape"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("conv", [
    nn.Conv2d(64, 32, 3, 1, 1),
    nn.Conv2d(3, 64, 11, 4, 2),  # LPIPS' AlexNet stem: stride and a large kernel
    nn.Conv2d(64, 192, 5, 1, 2),  # its next convolution, whose bf16 layout oneDNN picks by the input's size
    nn.Conv2d(48, 48, 3, 1, 2, dilation=2, groups=4),
    nn.Conv2d(192, 64, 1, 1, 0, bias=False),
])
def test_packed_convolution_matches_conv2d_at_every_input_size(
    conv: nn.Conv2d, dtype: torch.dtype, per_shape: bool
) -> None:
    torch.manual_seed(0)
    conv = conv.to(dtype).eval()
    packed = onednn.PackedConv2d(conv, per_shape=per_shape)
    for height, width in [(64, 64), (11, 7), (37, 53), (130, 200), (64, 64)]:  # one layout: for 64 x 64
        x = torch.randn(1, conv.in_channels, height, width, dtype=dtype).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            torch.testing.assert_close(packed(x), conv(x), msg=f"{height} x {width}")


def test_a_per_shape_convolution_reorders_its_weights_when_the_input_shape_changes_only() -> None:
    conv = nn.Conv2d(64, 192, 5, 1, 2).to(torch.bfloat16).eval()
    packed = onednn.PackedConv2d(conv, per_shape=True)
    layouts = []
    for side in (63, 63, 31, 63):
        x = torch.randn(2, 64, side, side, dtype=torch.bfloat16).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            packed(x)
        layouts.append(packed._last[1])
    assert layouts[1] is layouts[0] and layouts[2] is not layouts[1] and layouts[3] is not layouts[2]


def test_padding_other_than_zeros_is_refused() -> None:
    with pytest.raises(ValueError, match="only zero, integer padding"):
        onednn.PackedConv2d(nn.Conv2d(3, 8, 3, padding=1, padding_mode="reflect"))


@pytest.mark.parametrize("name", ["span-x2", "realesr-animevideov3-x4", "realesrgan-x4plus"])
def test_prepared_fp32_network_gives_the_unpacked_output(name: str) -> None:
    rgb = photo("coffee", 32, top=120, left=200)
    plain = run_network(load_model(name), rgb, Inference(prepack=False))
    prepared = Inference()
    model = prepared.prepare(load_model(name))
    assert sum(isinstance(m, onednn.PackedConv2d) for m in model.modules()) >= 8
    assert not any(type(m) is nn.Conv2d for m in model.modules())
    np.testing.assert_allclose(run_network(model, rgb, prepared), plain, atol=1e-5)


def test_prepared_bf16_network_holds_bf16_weights_but_at_its_ends_and_returns_float32() -> None:
    inference = Inference(precision="bf16")
    model = inference.prepare(load_model("span-x2"))
    ends = [module for module in model.modules() if isinstance(module, Fp32Conv)]
    at_ends = {id(m) for end in ends for m in end.modules()}
    packed = {m.packed.dtype: id(m) in at_ends for m in model.modules() if isinstance(m, onednn.PackedConv2d)}
    assert len(ends) == 2 and packed == {torch.float32: True, torch.bfloat16: False}
    out = run_network(model, photo("coffee", 16, top=120, left=200), inference)
    assert out.dtype == np.float32 and out.shape == (32, 32, 3)


@pytest.mark.parametrize(("name", "fused"), [("realesrgan-x4plus", 279), ("span-x2", 12), ("ffdnet-color", 11),
                                             ("lpips-alex", 5)])
def test_each_activation_after_a_convolution_is_done_inside_it(name: str, fused: int) -> None:
    """RRDBNet's LeakyReLUs, SPAN's SiLUs, FFDNet's ReLUs (its forward branches on the
    input's size, so its layer stack is fused on its own) and AlexNet's ReLUs in LPIPS."""
    model = Inference(precision="bf16").prepare(load_model(name))
    assert sum(isinstance(m, onednn.PackedConv2d) and m.activation != "none" for m in model.modules()) == fused
    assert not any(isinstance(m, (nn.LeakyReLU, nn.ReLU, nn.SiLU)) for m in model.modules())


class _Branching(nn.Module):
    """A convolution whose output is used past its activation too (a residual): that one
    stays unfused; the second convolution's activation is fused."""

    def __init__(self, activation: nn.Module) -> None:
        super().__init__()
        self.conv1, self.conv2, self.act = nn.Conv2d(8, 8, 3, 1, 1), nn.Conv2d(8, 8, 3, 1, 1), activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1(x)
        return self.act(self.conv2(self.act(y))) + y


@pytest.mark.parametrize("activation", [nn.LeakyReLU(0.2), nn.ReLU(), nn.SiLU()], ids=["leaky", "relu", "silu"])
def test_a_fused_activation_gives_the_unfused_result_and_only_where_it_may(activation: nn.Module) -> None:
    torch.manual_seed(0)
    model = _Branching(activation).eval()
    x = torch.randn(1, 8, 19, 23).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        expected = model(x)
        fused = onednn.fuse_activations(onednn.pack_convolutions(model))
        torch.testing.assert_close(fused(x), expected)
    assert [m.activation for m in (fused.conv1, fused.conv2)] == ["none", _kernel_name(activation)]


def _kernel_name(activation: nn.Module) -> str:
    return {nn.LeakyReLU: "leaky_relu", nn.ReLU: "relu", nn.SiLU: "swish"}[type(activation)]
