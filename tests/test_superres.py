"""Tiled super-resolution: seamless (tiled = untiled), grey stays grey, alpha upscaled apart."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import photo, psnr

from enhance_ops.chain.superres import (
    Inference,
    Tiling,
    image_tensor,
    run_network,
    tiles,
    upscale,
    upscale_alpha,
    upscale_rgb,
)
from enhance_ops.models.manifest import get_entry
from enhance_ops.models.weights import load_model


@pytest.mark.parametrize("name,scale", [("span-x2", 2), ("realesr-animevideov3-x4", 4)])
def test_tiled_equals_untiled_for_light_models(name: str, scale: int) -> None:
    """With the context the manifest gives them (12 px, against RRDBNet's 32) and no cross-fade."""
    rgb = photo("chelsea", None)[60:156, 120:248]  # 96 x 128: several 48-px tiles
    model = load_model(name)
    whole = np.clip(run_network(model, rgb, Inference()), 0, 1)
    tiling = Tiling(tile=48).for_model(get_entry(name))
    assert (tiling.pad, tiling.overlap) == (12, 0)
    assert psnr(upscale_rgb(rgb, model, scale, tiling=tiling), whole) >= 45


def test_tiled_equals_untiled_for_rrdbnet() -> None:
    rgb = photo("coffee", None)[120:184, 200:264]  # 64 x 64 as four 40-px tiles
    model = load_model("realesrgan-x4plus")
    whole = np.clip(run_network(model, rgb, Inference()), 0, 1)
    tiled = upscale_rgb(rgb, model, 4, tiling=Tiling(tile=40, pad=32, overlap=16))
    assert psnr(tiled, whole) >= 45


def test_tiles_cover_the_image_on_a_regular_grid_with_the_requested_overlap() -> None:
    spans = list(tiles(100, 130, Tiling(tile=48, pad=8, overlap=16)))
    covered = np.zeros((100, 130), int)
    for y0, y1, x0, x1 in spans:
        assert y0 % 32 == 0 and x0 % 32 == 0  # the pitch is tile - overlap: seam_score looks there
        assert y1 - y0 == min(48, 100 - y0) and x1 - x0 == min(48, 130 - x0)
        covered[y0:y1, x0:x1] += 1
    assert covered.min() >= 1
    # 130 px: tiles at 0, 32, 64, 96 (the last 34 px wide), not a full 48-px last tile pulled
    # back to 82, where it would overlap its neighbour by 30 px instead of 16.
    assert sorted({x0 for _, _, x0, _ in spans}) == [0, 32, 64, 96]
    assert sorted({y0 for y0, _, _, _ in spans}) == [0, 32, 64]


def test_each_model_gets_its_own_tile_context_and_overlap_unless_set() -> None:
    from enhance_ops.chain.pipeline import Chain

    chain = Chain("fidelity", ("superres.scale=8", "superres.models=[\"realesrgan-x4plus\", \"span-x2\"]"))
    assert [(t.pad, t.overlap) for _, _, t in chain.sr_models(chain.model_names)] == [(32, 16), (12, 0)]
    fixed = Chain("fidelity", tiling=Tiling(pad=20, overlap=8))
    assert [(t.pad, t.overlap) for _, _, t in fixed.sr_models(fixed.model_names)] == [(20, 8)]
    assert Chain("fidelity", tiling=Tiling(pad=20)).sr_models(("span-x4",))[0][2].overlap == 0


def test_the_tile_side_is_the_devices_unless_set() -> None:
    """256 px suits oneDNN; on an H200, the chain's own upscale took 0.56 s a 960 x 540 photo
    in 256-px tiles and 0.34 s in 1024-px ones (RRDBNet x4), so a GPU worker tiles larger."""
    from enhance_ops.chain.pipeline import Chain

    assert (Tiling().on("cpu").tile, Tiling().on("cuda").tile, Tiling().on("cuda:1").tile) == (256, 1024, 1024)
    assert Tiling(tile=64).on("cuda").tile == 64
    chain = Chain("fidelity", ("superres.scale=2", "superres.models=[]"))
    assert chain.tiling.tile == 256 and chain.tile_count(600, 300) == 6  # SPAN x2 in 3 x 2 tiles of 256 px
    record = next(r for r in chain.run(photo("astronaut", 48)).stages if r.stage == "superres")
    assert record.details["tile_px"] == [256]
    with pytest.raises(ValueError, match="no pitch: give it the device's first"):
        list(tiles(100, 100, Tiling()))


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
    out = upscale_alpha(alpha, 40, 40)
    assert out.shape == (40, 40) and out.min() >= 0 and out.max() <= 1
    assert out[:, :16].max() < 0.05 and out[:, 24:].min() > 0.95


def test_invalid_tiling_is_refused() -> None:
    with pytest.raises(ValueError, match="invalid tiling"):
        Tiling(tile=32, overlap=32)


def test_images_become_channels_last_tensors_with_at_most_one_copy() -> None:
    image = photo("chelsea", 64)
    whole = image_tensor(image, torch.float32)
    assert whole.data_ptr() == image.ctypes.data  # a float32 image is wrapped, not copied
    assert torch.cat((whole, whole)).is_contiguous(memory_format=torch.channels_last)  # a real batch stride
    for view, dtype in [(image[5:40, 7:50], torch.bfloat16), (image[::-1], torch.float32), (image[:, ::2], torch.float32)]:
        tensor = image_tensor(view, dtype)
        assert tensor.is_contiguous(memory_format=torch.channels_last) and tensor.dtype == dtype
        assert torch.equal(tensor[0].permute(1, 2, 0), torch.from_numpy(view.copy()).to(dtype))
    planar = image_tensor(image[5:40, 7:50], torch.float32, channels_last=False)
    assert planar.is_contiguous() and torch.equal(planar[0].permute(1, 2, 0), torch.from_numpy(image[5:40, 7:50].copy()))
