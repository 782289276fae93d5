"""Tiled super-resolution: seamless (tiled = untiled), grey stays grey, alpha upscaled apart."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import photo, psnr

from enhance_ops.chain.superres import (
    STRETCH,
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
    tiling = Tiling(tile=48, pad=8, overlap=16, stretch=STRETCH)
    spans = list(tiles(100, 130, tiling))
    covered = np.zeros((100, 130), int)
    for y0, y1, x0, x1 in spans:
        assert y0 % tiling.pitch(100) == 0 and x0 % tiling.pitch(130) == 0  # seam_score looks there
        assert y1 - y0 == min(tiling.side(100), 100 - y0) and x1 - x0 == min(tiling.side(130), 130 - x0)
        covered[y0:y1, x0:x1] += 1
    assert covered.min() >= 1
    # 100 px: 48-px tiles at 0, 32 and 64 (the last 36 px high), not a full 48-px last tile
    # pulled back to 52, where it would overlap its neighbour by 28 px instead of 16.
    assert tiling.side(100) == 48 and sorted({y0 for y0, _, _, _ in spans}) == [0, 32, 64]
    # 130 px: four 48-px tiles, the last 34 px wide, or three stretched by an eighth to 54
    assert tiling.side(130) == 54 and sorted({x0 for _, _, x0, _ in spans}) == [0, 38, 76]


@pytest.mark.parametrize("tiling", [Tiling(overlap=16).on("cpu"), Tiling(overlap=0).on("cpu"),
                                    Tiling(overlap=16).on("cuda"), Tiling(tile=40, overlap=16, stretch=STRETCH)])
def test_a_tile_is_stretched_by_at_most_an_eighth_and_only_to_save_one(tiling: Tiling) -> None:
    """Along every length: tiles overlapping their neighbours by exactly the cross-fade, one
    fewer than ``tile``-long ones take wherever tiles up to an eighth longer allow it, and no
    longer than that needs; at ``tile`` elsewhere."""
    tile, fade = tiling.tile or 0, tiling.cross_fade
    longest = tile + int(tile * (tiling.stretch or 0.0))

    def count(side: int, length: int) -> int:
        return max(1, -(-(length - fade) // (side - fade)))

    for length in range(1, 4 * longest):
        spans = [(x0, x1) for _, _, x0, x1 in tiles(1, length, tiling)]
        side = tiling.side(length)
        assert spans[0][0] == 0 and spans[-1][1] == length and len(spans) == count(side, length)
        assert all(b - a == side for a, b in spans[:-1]) and 0 < spans[-1][1] - spans[-1][0] <= side
        assert all(a1 == b0 - fade for (_, b0), (a1, _) in zip(spans, spans[1:]))
        regular = count(tile, length)
        if regular > 1 and count(longest, length) < regular:
            assert len(spans) == regular - 1 and tile < side <= longest and count(side - 1, length) == regular
        else:
            assert side == tile
    assert [(a, b) for _, _, a, b in tiles(1, 512, Tiling(overlap=16).on("cpu"))] == [(0, 264), (248, 512)]


def test_a_tile_side_given_is_the_longest_a_tile_gets() -> None:
    """``--tile`` is what a worker sets to bound its memory: a stretched tile would take up to
    a quarter more of it (an eighth each way), so only the device's own side stretches."""
    given = Tiling(tile=256, overlap=16)
    assert [(a, b) for _, _, a, b in tiles(1, 512, given)] == [(0, 256), (240, 496), (480, 512)]
    assert all(given.side(length) == 256 for length in range(1, 2048))
    assert (Tiling(tile=256).on("cuda").stretch, Tiling().on("cuda").stretch) == (None, STRETCH)
    with pytest.raises(ValueError, match="stretch >= 0"):
        Tiling(tile=256, stretch=-0.1)


def test_a_stretch_given_holds_with_the_devices_tile_side() -> None:
    """No stretch, or another one, with the device's side: it had been replaced by ``STRETCH``."""
    unstretched, wider = Tiling(overlap=16, stretch=0.0).on("cpu"), Tiling(overlap=16, stretch=0.25).on("cpu")
    assert (unstretched.tile, unstretched.stretch, wider.stretch) == (256, 0.0, 0.25)
    assert unstretched.side(512) == 256 and Tiling(overlap=16).on("cpu").side(512) == 264
    assert wider.side(600) == 308 and Tiling(overlap=16).on("cpu").side(600) == 256  # two tiles, or three


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
    given = Chain("fidelity", ("superres.scale=2", 'superres.models=["span-x2"]'), tiling=Tiling(tile=48))
    assert given.tile_count(130, 100) == 9  # 48 px at most, as asked
    stretched = Chain("fidelity", ("superres.scale=2", 'superres.models=["span-x2"]'),
                      tiling=Tiling(tile=48, stretch=STRETCH))
    assert stretched.tile_count(130, 100) == 6  # 100 rows in two 50-px tiles, not three of 48
    record = next(r for r in stretched.run(photo("astronaut", None)[:100, :130]).stages if r.stage == "superres")
    assert record.details["tile_grid_px"] == [100, 96]  # where seam_score looks, down and across
    with pytest.raises(ValueError, match="without a tile side .* give it the device's first"):
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


class _Overshooting(torch.nn.Module):
    """Bicubic x2 with a column pattern, reaching outside [0, 1]: blending must come before clipping."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.nn.functional.interpolate(x, scale_factor=2, mode="bicubic") * 1.3 - 0.1
        return y + 0.05 * torch.sin(torch.arange(y.shape[-1], dtype=y.dtype))


def _ramps(spans: list[tuple[int, int]], scale: int, fade: int) -> list[np.ndarray]:
    """Each span's weight along one axis of the output, by the definition: 1, fading linearly
    over ``fade`` output pixels towards each neighbour, at the pixels' centres."""
    ramps = []
    for i, (a, b) in enumerate(spans):
        n, k = (b - a) * scale, np.arange((b - a) * scale) + 0.5
        rise = np.minimum(1.0, k / fade) if i > 0 and fade else np.ones(n)
        fall = np.minimum(1.0, (n - k) / fade) if i < len(spans) - 1 and fade else np.ones(n)
        ramp = np.zeros(spans[-1][1] * scale)
        ramp[a * scale : b * scale] = np.minimum(rise, fall)
        ramps.append(ramp)
    return ramps


@pytest.mark.parametrize("size,tiling", [
    ((50, 65), Tiling(tile=24, pad=4, overlap=8)),   # several tiles, each more than two fades long
    ((50, 65), Tiling(tile=24, pad=4, overlap=8, stretch=STRETCH)),  # the same, 27-px tiles across saving one
    ((35, 35), Tiling(tile=20, pad=2, overlap=16)),  # a tile shorter than two fades: three overlap at once
    ((32, 100), Tiling(tile=256, pad=12, overlap=16)),  # one tile: no neighbour to fade into
    ((45, 45), Tiling(tile=16, pad=0, overlap=0)),   # tiles that abut
])
def test_tiles_are_blended_as_weighted_means_of_the_network_outputs(size: tuple[int, int], tiling: Tiling) -> None:
    """Against per-pixel weight maps in float64: the output is each pixel's weighted mean over
    the tiles that cover it, clipped after blending, whether it is written directly (one tile
    alone) or summed and normalised (shared by neighbours)."""
    from enhance_ops.chain.superres import _spans

    rgb = np.random.default_rng(3).random((*size, 3), dtype=np.float32)
    model = _Overshooting()
    y_spans, x_spans, fade = _spans(size[0], tiling), _spans(size[1], tiling), tiling.cross_fade * 2
    total, weights = np.zeros((size[0] * 2, size[1] * 2, 3)), np.zeros((size[0] * 2, size[1] * 2, 1))
    for (y0, y1), wy in zip(y_spans, _ramps(y_spans, 2, fade)):
        for (x0, x1), wx in zip(x_spans, _ramps(x_spans, 2, fade)):
            cy0, cy1 = max(0, y0 - tiling.context), min(size[0], y1 + tiling.context)
            cx0, cx1 = max(0, x0 - tiling.context), min(size[1], x1 + tiling.context)
            result = run_network(model, rgb[cy0:cy1, cx0:cx1], Inference())
            full = np.zeros_like(total)
            full[y0 * 2 : y1 * 2, x0 * 2 : x1 * 2] = result[(y0 - cy0) * 2 : (y1 - cy0) * 2, (x0 - cx0) * 2 : (x1 - cx0) * 2]
            w = np.outer(wy, wx)[:, :, None]
            total, weights = total + full * w, weights + w
    blended = total / weights
    assert blended.min() < 0 and blended.max() > 1  # so clipping before blending would show
    np.testing.assert_allclose(upscale_rgb(rgb, model, 2, tiling=tiling), np.clip(blended, 0, 1), atol=2e-6)
    np.testing.assert_allclose(upscale_rgb(rgb, model, 2, tiling=tiling, grey=True),
                               np.clip(blended.mean(axis=2, keepdims=True), 0, 1), atol=2e-6)


@pytest.mark.parametrize("length,tiling,scale", [
    (130, Tiling(tile=48, overlap=16), 2), (130, Tiling(tile=48, overlap=16, stretch=STRETCH), 2),
    (100, Tiling(tile=20, overlap=16), 4), (90, Tiling(tile=256, overlap=16), 4),
    (97, Tiling(tile=40, overlap=0), 3), (88, Tiling(tile=40, overlap=0, stretch=STRETCH), 3),
    (61, Tiling(tile=33, overlap=16), 2),
])
def test_a_tiles_interior_is_its_alone_and_only_shared_pixels_are_normalised(
    length: int, tiling: Tiling, scale: int
) -> None:
    """The interiors written directly hold one tile at weight 1; what lies between them is
    covered by two tiles or faded, and is all that the normalising pass touches."""
    from enhance_ops.chain.superres import _gaps, _interiors, _spans

    spans = _spans(length, tiling)
    ramps = np.array(_ramps(spans, scale, tiling.cross_fade * scale))
    inner = _interiors(spans, scale, tiling.cross_fade * scale)
    alone = np.zeros(length * scale, bool)
    for i, (start, end) in enumerate(inner):
        assert (ramps[i, start:end] == 1).all() and (np.delete(ramps, i, axis=0)[:, start:end] == 0).all()
        alone[start:end] = True
    shared = np.zeros(length * scale, bool)
    for start, end in _gaps(inner, length * scale):
        shared[start:end] = True
    assert (shared == ~alone).all()
    assert (((ramps[:, shared] > 0).sum(axis=0) >= 2) | (ramps[:, shared].max(axis=0) < 1)).all()
    if len(spans) == 1:
        assert inner == [(0, length * scale)] and not shared.any()


def test_only_the_kept_part_of_a_tile_leaves_the_network() -> None:
    rgb = photo("astronaut", 24, top=30, left=200)
    model = load_model("span-x2")
    whole = run_network(model, rgb, Inference())
    kept = run_network(model, rgb, Inference(), keep=(slice(6, 40), slice(10, 30)))
    assert kept.shape == (34, 20, 3) and kept.dtype == np.float32
    np.testing.assert_array_equal(kept, whole[6:40, 10:30])
