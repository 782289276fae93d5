"""The converted networks are the published ones, and they are real pretrained weights."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import enlarge_bicubic, photo, psnr, shrink

from enhance_ops.chain.superres import Inference, run_network
from enhance_ops.models.manifest import get_entry, load_manifest
from enhance_ops.models.weights import load_model

SR_MODELS = [name for name, entry in load_manifest().items() if entry.task == "super-resolution"]


def _run_ncnn(name: str, rgb: np.ndarray) -> np.ndarray:
    import ncnn

    entry = get_entry(name)
    param = next(f for f in entry.source.files if f.endswith(".param"))
    binary = next(f for f in entry.source.files if f.endswith(".bin"))
    net = ncnn.Net()
    for flag in ("use_vulkan_compute", "use_fp16_storage", "use_fp16_packed", "use_fp16_arithmetic", "use_bf16_storage"):
        setattr(net.opt, flag, False)
    net.load_param(str(entry.source_path(param)))
    net.load_model(str(entry.source_path(binary)))
    planar = np.ascontiguousarray(rgb.transpose(2, 0, 1))  # ncnn.Mat borrows this buffer: keep it alive
    extractor = net.create_extractor()
    extractor.input("data", ncnn.Mat(planar))
    status, out = extractor.extract("output")
    assert status == 0
    return np.array(out).transpose(1, 2, 0)


def test_every_sr_model_in_the_manifest_is_covered() -> None:
    assert set(SR_MODELS) == {"realesrgan-x4plus", "realsr-df2k-x4", "realesr-animevideov3-x4", "span-x2", "span-x4"}


@pytest.mark.parametrize("name", SR_MODELS)
def test_converted_network_matches_the_original_ncnn_files(name: str) -> None:
    rgb = photo("astronaut", 32, top=100, left=180)
    ours = run_network(load_model(name), rgb, Inference(channels_last=False))
    reference = _run_ncnn(name, rgb)
    assert ours.shape == reference.shape == (32 * get_entry(name).scale, 32 * get_entry(name).scale, 3)
    assert np.abs(ours - reference).max() <= 1e-4


def _lpips(a: np.ndarray, b: np.ndarray) -> float:
    net = load_model("lpips-alex")
    to_t = lambda x: torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None]  # noqa: E731
    with torch.no_grad():
        return float(net(to_t(a), to_t(b)))


def test_realesrgan_x4_beats_bicubic_on_lpips_for_a_real_photo() -> None:
    truth = photo("chelsea", 192, top=40, left=120)
    small = shrink(truth, 4)
    sr = np.clip(run_network(load_model("realesrgan-x4plus"), small, Inference()), 0, 1)
    bicubic = enlarge_bicubic(small, 4)
    assert _lpips(sr, truth) < _lpips(bicubic, truth) - 0.05


@pytest.mark.parametrize("name,top,left", [("chelsea", 40, 120), ("coffee", 100, 200), ("astronaut", 20, 150)])
def test_span_x2_beats_bicubic_on_psnr(name: str, top: int, left: int) -> None:
    truth = photo(name, 192, top=top, left=left)
    small = shrink(truth, 2)
    sr = np.clip(run_network(load_model("span-x2"), small, Inference()), 0, 1)
    assert psnr(sr, truth) > psnr(enlarge_bicubic(small, 2), truth) + 0.5


def test_ffdnet_removes_gaussian_noise_from_a_real_photo() -> None:
    clean = photo("coffee", 128, top=100, left=200)
    noisy = clean + np.random.default_rng(0).normal(0, 25 / 255, clean.shape).astype(np.float32)
    net = load_model("ffdnet-color")
    x = torch.from_numpy(noisy.transpose(2, 0, 1).copy())[None]
    with torch.no_grad():
        out = net(x, torch.full((1, 1, 1, 1), 25 / 255))[0].numpy().transpose(1, 2, 0)
    assert psnr(noisy, clean) < 21
    assert psnr(np.clip(out, 0, 1), clean) > psnr(noisy, clean) + 7


PUBLISHED_LPIPS_ALEX = {"I03": 0.7237, "I04": 0.2572, "I06": 0.0508, "I08": 0.0521, "I19": 0.4253}


@pytest.mark.parametrize("pair", sorted(PUBLISHED_LPIPS_ALEX))
def test_lpips_weights_reproduce_the_published_calibration_values(pair: str) -> None:
    from conftest import SHARED
    from PIL import Image

    def read(kind: str) -> np.ndarray:
        path = SHARED / "calibration" / "iqa" / kind / f"{pair}.bmp"
        return np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0

    assert abs(_lpips(read("dist"), read("ref")) - PUBLISHED_LPIPS_ALEX[pair]) <= 1e-3
