"""The chain runner: presets, overrides, records, progressive blending, caching, dynamic scaling."""
from __future__ import annotations

import dataclasses
import io
import re
import weakref

import cv2
import numpy as np
import pytest
import tifffile
import torch
from conftest import photo, psnr, save, shrink
from PIL import Image
from skimage import data as skdata

from enhance_ops.chain import icc, pipeline, superres
from enhance_ops.chain.colour_math import luma
from enhance_ops.chain.presets import PRESETS, STAGES, resolve_preset
from enhance_ops.cli import main
from enhance_ops.degrade import fade
from enhance_ops.enhance import EnhanceOptions, Enhancer
from enhance_ops.models.weights import load_model
from enhance_ops.samples import write_samples


def test_every_preset_names_every_stage() -> None:
    for name, preset in PRESETS.items():
        assert set(STAGES) <= set(preset), name


def test_overrides_are_parsed_and_checked() -> None:
    settings = resolve_preset("archive-photo", ["denoise.strength=strong", "superres.scale=2", "sharpen.amount=0.8"])
    assert settings["denoise"]["strength"] == "strong" and settings["superres"]["scale"] == 2
    assert settings["sharpen"]["amount"] == 0.8
    assert PRESETS["archive-photo"]["denoise"]["strength"] == "auto"  # the preset itself is untouched
    with pytest.raises(ValueError, match="unknown setting 'denoise.strenght'.*denoise.strength"):
        resolve_preset("archive-photo", ["denoise.strenght=strong"])
    with pytest.raises(ValueError, match="unknown preset"):
        resolve_preset("holiday-snaps")


@pytest.mark.parametrize(("override", "said"), [
    ("denoise.strength=bogus", 'denoise.strength="bogus": choose one of "auto", "off", "weak", "medium", "strong"'),
    ("colour_restore.mode=maybe", 'choose one of "auto", "on", "off"'),
    ("colour_space.target=ProPhoto", 'choose one of null, "sRGB", "Adobe RGB", "Display P3"'),
    ("superres.scale=3", "superres.scale=3: choose one of 2, 4, 8"),
    ("exposure.enabled=yes", 'exposure.enabled="yes": true or false'),
    ("sharpen.amount=-1", "sharpen.amount=-1: a number of 0 or more"),
    ("sharpen.amount=NaN", "sharpen.amount=NaN: a number"),
    ("local_contrast.blend=1.5", "the share of the stage's change kept, from 0 to 1"),
    ("superres.models=span-x2", 'superres.models="span-x2": a list of names'),
    ('superres.models=["span-x2"]', "models span-x2 upscale x2, but x4 was asked for"),
    ('superres.models=["span-x3"]', "unknown model 'span-x3'"),
    ('superres.models=["ffdnet-color"]', "ffdnet-color is a denoise model, not a super-resolution model"),
    ('superres.bitonal_models=["span-x2"]', "superres.bitonal_models: models span-x2 upscale x2, but x4"),
])
def test_an_override_the_chain_cannot_use_is_refused_before_any_image(override: str, said: str) -> None:
    """``denoise.strength=bogus`` was taken, and every image then failed as an internal error
    (KeyError 'bogus'), in the CLI and in every shard of a run given it as a Param. A model
    that cannot make the scale passed a run's first task too, and failed every shard."""
    with pytest.raises(ValueError, match=re.escape(said)):
        resolve_preset("archive-photo", [override])


def test_overrides_the_chain_can_use_are_taken() -> None:
    settings = resolve_preset("archive-photo", ["denoise.sigma=null", "denoise.sigma=6", "lens.k1=-0.05",
                                                'colour_space.target="Adobe RGB"', "exposure.enabled=false"])
    assert (settings["denoise"]["sigma"], settings["lens"]["k1"]) == (6, -0.05)
    assert (settings["colour_space"]["target"], settings["exposure"]["enabled"]) == ("Adobe RGB", False)


def test_a_cuda_device_where_there_is_none_is_refused_by_name() -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")  # the refusal is for workers without it
    with pytest.raises(ValueError, match="device cuda: no CUDA device is available here"):
        superres.Inference("cuda")
    with pytest.raises(ValueError, match="device 'gpu': cpu, cuda or cuda:N"):
        superres.Inference("gpu")


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_runs_and_records_every_stage(preset: str) -> None:
    chain = pipeline.Chain(preset, ("superres.scale=2", "superres.models=[]"))
    image = shrink(photo("chelsea", 96, top=60, left=150), 2)
    result = chain.run(image)
    assert result.pixels.shape == (96, 96, 3) and result.scale == 2
    stages = [r.stage for r in result.stages]
    assert stages[0] == "dynamic_range" and stages[-2:] == ["colour_space", "measures"] and "superres" in stages
    for record in result.stages:
        assert record.decision and record.seconds >= 0


def test_records_say_what_was_decided() -> None:
    chain = pipeline.Chain("archive-photo", ("superres.scale=2", "superres.models=[]"))
    clean = photo("coffee", 64, top=100, left=200)
    dusty = clean.copy()
    dusty[np.random.default_rng(0).random(clean.shape[:2]) < 0.03] = 1.0
    records = {r.stage: r for r in chain.run(dusty).stages}
    assert "impulse noise detected" in records["denoise"].decision
    assert records["superres"].details["models"] == ["span-x2"]


@pytest.mark.parametrize("preset", ["archive-photo", "document-scan"])
def test_a_blank_page_adds_no_clipping_though_it_is_all_white(preset: str) -> None:
    """The back of a document, scanned with its paper white: until the gate measured the
    clipping the enhancement added, every such page went to review."""
    page = np.ones((48, 64, 1), np.float32)
    page[20:24, 8:56] = 0.2  # a pencilled line
    metrics = pipeline.Chain(preset, ("superres.scale=2", "superres.models=[]")).run(page).metrics
    # 0.1: the gate's limit. What clipping there is (0.02 for document-scan) is the line's: its
    # core sharpened to black, the paper beside it to white; the white paper itself adds none.
    assert metrics["clipped_fraction"] > 0.1 and metrics["clipping_added"] <= 0.05


def test_progressive_blend_keeps_part_of_a_stage() -> None:
    image = shrink(photo("astronaut", 128, top=20, left=150), 2)
    full = pipeline.Chain("fidelity", ("superres.scale=2", "superres.models=[]", "sharpen.amount=0.8"))
    half = pipeline.Chain("fidelity", ("superres.scale=2", "superres.models=[]", "sharpen.amount=0.8", "sharpen.blend=0.5"))
    none = pipeline.Chain("fidelity", ("superres.scale=2", "superres.models=[]"))
    a, b, c = (chain.run(image).pixels for chain in (full, half, none))
    assert np.allclose(b, (a + c) / 2, atol=1e-5)


def test_sr_blend_mixes_with_the_bicubic_enlargement() -> None:
    image = shrink(photo("astronaut", 64, top=20, left=150), 2)
    zero = pipeline.Chain("fidelity", ("superres.scale=2", "superres.models=[]", "superres.blend=0.0",
                                       "superres.colour_guard=false"))
    bicubic = cv2.resize(image, (64, 64), interpolation=cv2.INTER_CUBIC)
    assert np.allclose(zero.run(image).pixels, np.clip(bicubic, 0, 1), atol=1e-5)


@pytest.mark.parametrize("blend", [1.0, 0.5])
def test_the_chain_never_writes_into_its_input(blend: float) -> None:
    """Stages after SR overwrite the output in place; none may reach the caller's pixels."""
    image = fade(shrink(photo("coffee", 96, top=100, left=200), 2), 0.8)
    before = image.copy()
    blends = [f"{stage}.blend={blend}" for stage in ("exposure", "denoise", "superres", "colour_restore", "sharpen",
                                                      "local_contrast")]
    chain = pipeline.Chain("archive-photo", ("superres.scale=2", "superres.models=[]", "colour_space.target=Adobe RGB",
                                             "colour_restore.mode=on", *blends))
    result = chain.run(image)
    assert np.array_equal(image, before)
    assert {r.stage: r.decision for r in result.stages}["colour_restore"] == "faded colours restored"


def test_a_handed_over_master_is_let_go_before_the_output_stages(monkeypatch: pytest.MonkeyPatch) -> None:
    """Large scans fit because nothing input-sized outlives super-resolution (docs/benchmarks.md)."""
    chain = pipeline.Chain("archive-photo", ("superres.scale=2", "superres.models=[]", "colour_restore.mode=on",
                                             "denoise.strength=weak", "denoise.sigma=6"))
    pixels = fade(shrink(photo("coffee", 96, top=100, left=200), 2), 0.8)
    master_ref = weakref.ref(pixels)
    master = pipeline.Master(pixels)
    del pixels
    seen = []
    sharpen = pipeline.postprocess.adaptive_sharpen
    monkeypatch.setattr(pipeline.postprocess, "adaptive_sharpen", lambda *a, **k: seen.append(master_ref()) or sharpen(*a, **k))
    result = chain.run_master(master)
    assert seen == [None] and master.pixels is None
    assert {r.stage: r.decision for r in result.stages}["colour_restore"] == "faded colours restored"
    with pytest.raises(AssertionError, match="already run"):
        chain.run_master(master)


def test_a_wide_gamut_master_clipped_into_srgb_is_told_in_the_notes() -> None:
    """The ledger's notes (which the report shows) say how much of a master lay outside the
    target space, and that keeping the master's own space avoids it; a master that fits says nothing."""
    saturated = np.full((48, 48, 3), 0.5, np.float32)
    saturated[:24, :, :] = (0.0, 0.9, 0.1)  # a deep green Adobe RGB holds and sRGB does not
    adobe = io.BytesIO()
    Image.fromarray((saturated * 255).round().astype(np.uint8)).save(
        adobe, "PNG", icc_profile=icc.build_profile(icc.SPACES["Adobe RGB"]))
    enhancer = Enhancer(EnhanceOptions(preset="fidelity", overrides=(
        "superres.scale=2", "superres.models=[]", 'colour_space.target="sRGB"')))
    notes = enhancer.enhance(adobe.getvalue()).record["notes"]
    assert [n for n in notes if "gamut" in n] == [
        "50.00% of the pixels lay outside sRGB's gamut and were clipped to its edge: the master's Adobe RGB (1998) "
        "holds more saturated colours (colour_space.target null keeps the master's own space)"]
    plain = io.BytesIO()
    Image.fromarray((saturated * 255).round().astype(np.uint8)).save(plain, "PNG")
    assert not [n for n in enhancer.enhance(plain.getvalue()).record["notes"] if "gamut" in n]


def test_neutral_rgb_scans_stay_neutral() -> None:
    grey = photo("camera")[:64, :64]
    rgb = np.repeat(grey[..., None], 3, axis=2)
    result = pipeline.Chain("archive-photo", ("superres.scale=2", "superres.models=[]")).run(rgb)
    assert result.stages[0].stage == "input" and "neutral" in result.stages[0].decision
    assert result.pixels.shape == (128, 128, 3)
    assert np.array_equal(result.pixels[..., 0], result.pixels[..., 2])


def test_one_tinted_pixel_off_the_sampling_grid_makes_a_scan_colour() -> None:
    grey = photo("camera")[:100, :100]
    rgb = np.repeat(grey[..., None], 3, axis=2)
    assert pipeline.is_neutral(rgb) and pipeline.is_neutral(rgb[::-1, 3:])  # any view
    rgb[37, 51, 2] += 2 / 255  # not on the 16-px grid of the quick first look
    assert not pipeline.is_neutral(rgb)
    rgb[37, 51, 2] -= 1 / 255  # within the tolerance (1.5/255)
    assert pipeline.is_neutral(rgb)


def test_dynamic_scaling_caps_the_output_size() -> None:
    chain = pipeline.Chain("fidelity", ("superres.scale=2", "superres.models=[]", "superres.max_output_long_side=100"))
    result = chain.run(photo("coffee", 80, top=100, left=200))
    assert max(result.pixels.shape[:2]) <= 100
    record = next(r for r in result.stages if r.stage == "superres")
    assert record.details["reduced_input_to"] == [50, 50] and "reduced" in record.decision


BITONAL = {"page": skdata.page() > 128, "text": skdata.text() > 128, "horse": skdata.horse()}  # black and white only


@pytest.mark.parametrize("scale", [2, 4])
@pytest.mark.parametrize("name", BITONAL)
def test_a_bitonal_page_is_smoothed_before_span_which_turns_hard_steps_into_noise(name: str, scale: int) -> None:
    """SPAN made noise of a black-and-white page: consistency 7.5-16 dB at x2, 13-28 dB at
    x4, the same from the original network under ncnn; smoothed (sigma 0.6) first, 37-47 dB."""
    page = BITONAL[name].astype(np.float32)[..., None]
    chain = pipeline.Chain("fidelity", (f"superres.scale={scale}", f'superres.models=["span-x{scale}"]'))
    result = chain.run(page)
    record = next(r for r in result.stages if r.stage == "superres")
    assert record.details["bitonal_smoothing_sigma"] == 0.6 and "black and white only, so first smoothed" in record.decision
    assert result.metrics["consistency_psnr_db"] > 35 and result.metrics["consistency_ssim"] > 0.95


def test_a_photo_or_a_network_that_reads_a_bitonal_page_as_it_is_gets_no_smoothing() -> None:
    grey = photo("camera", 96)[..., None].astype(np.float32)
    span = next(r for r in pipeline.Chain("fidelity", ("superres.scale=2", "superres.models=[]")).run(grey).stages
                if r.stage == "superres")
    page = (skdata.page() > 128).astype(np.float32)[:96, :96, None]
    rrdb = next(r for r in pipeline.Chain("fidelity", ("superres.scale=4", 'superres.bitonal_models=["realesrgan-x4plus"]'))
                .run(page).stages if r.stage == "superres")
    assert "bitonal_smoothing_sigma" not in span.details and "bitonal_smoothing_sigma" not in rrdb.details
    assert rrdb.details["models"] == ["realesrgan-x4plus"]


@pytest.mark.parametrize("preset", ["archive-photo", "fast-cpu"])
def test_a_bitonal_page_goes_to_the_fidelity_network_where_the_preset_runs_a_photo_one(preset: str) -> None:
    """Real-ESRGAN redrew a printed page's letters (consistency 24.7 dB, which the gate holds),
    the compact model too (24.6 dB): each bitonal page of a nightly batch went to review."""
    chain = pipeline.Chain(preset)
    page = chain.run(BITONAL["page"].astype(np.float32)[..., None])
    grey = chain.run(photo("camera", 96)[..., None].astype(np.float32))
    assert page.models == ("span-x4",) and grey.models == chain.model_names != page.models
    record = next(r for r in page.stages if r.stage == "superres")
    assert f"in place of {chain.model_names[0]}" in record.decision and record.details["bitonal_smoothing_sigma"] == 0.6
    assert page.metrics["consistency_psnr_db"] > 35
    assert chain.weights(page.models).keys() == {"span-x4", "ffdnet-color"}


def test_colour_guard_keeps_the_input_colours() -> None:
    source = shrink(photo("coffee", 192, top=100, left=200), 4)
    out = superres.upscale_rgb(source, load_model("realesrgan-x4plus"), 4)
    guarded = superres.keep_input_colour(out, source)

    def chroma_error(image: np.ndarray) -> float:
        back = cv2.resize(image, source.shape[1::-1], interpolation=cv2.INTER_AREA)
        chroma = lambda x: x - x.mean(axis=2, keepdims=True)  # noqa: E731
        return float(np.abs(chroma(back) - chroma(source)).mean())

    assert chroma_error(guarded) < 0.8 * chroma_error(out)


@pytest.mark.parametrize("channels", [1, 3])
def test_colour_guard_keeps_the_level_of_dark_even_areas_and_leaves_mid_tones(channels: int) -> None:
    """Real-ESRGAN crushes an even 5/255 with a scanner's noise towards black; the guard
    gives it back its level, and leaves the lightness of a mid-tone as the network made it."""
    noise = np.random.default_rng(0).normal(0, 2 / 255, (64, 128, channels))
    source = np.concatenate([np.full((64, 64, channels), 5 / 255), np.full((64, 64, channels), 100 / 255)], axis=1)
    source = (np.round(np.clip(source + noise, 0, 1) * 255) / 255).astype(np.float32)
    out = superres.upscale(source, load_model("realesrgan-x4plus"), 4)
    guarded = superres.keep_input_colour(out.copy(), source)
    dark, mid = (slice(32, 224), slice(32, 224)), (slice(32, 224), slice(288, 480))
    assert out[dark].mean() * 255 < 2.5 and abs(guarded[dark].mean() * 255 - 5) < 0.5
    assert guarded[dark].std() > 0.5 * out[dark].std()  # its grain, as the network drew it, is kept
    assert np.abs(luma(guarded[mid]) - luma(out[mid])).max() < 1e-5  # colour: its chroma is the input's


def test_identical_content_is_processed_once_per_run(monkeypatch: pytest.MonkeyPatch) -> None:
    enhancer = Enhancer(EnhanceOptions(preset="fidelity", overrides=("superres.scale=2", "superres.models=[]")))
    calls = []
    original = enhancer.chain.run_master
    monkeypatch.setattr(enhancer.chain, "run_master", lambda *a, **k: calls.append(1) or original(*a, **k))
    data = save((photo("coffee", 32, top=100, left=200) * 255).astype(np.uint8), "PNG")
    first, second = enhancer.enhance(data), enhancer.enhance(data)
    assert len(calls) == 1 and second.data == first.data
    assert "cache" not in first.record and "identical content" in second.record["cache"]


def test_a_derivative_in_another_format_says_what_metadata_it_could_not_carry() -> None:
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Copyright", "(c) City Archive")
    info.add_text("Title", "Harbour, 1931")
    data = save((photo("coffee", 32, top=100, left=200) * 255).astype(np.uint8), "PNG", pnginfo=info)
    enhancer = Enhancer(EnhanceOptions(preset="fidelity", overrides=("superres.scale=2", "superres.models=[]"),
                                       output_format="WEBP"))
    result = enhancer.enhance(data)
    assert result.format == "WEBP" and Image.open(io.BytesIO(result.data)).size == (64, 64)
    assert "text not carried, WEBP has no place for it: Title" in result.record["notes"]  # the Copyright in EXIF


def test_a_webp_derivative_is_kept_within_the_16383_px_webp_holds() -> None:
    from PIL import Image

    strip = (photo("coffee")[200:216] * 255).astype(np.uint8)  # 600 x 16, a panorama's slice
    panorama = np.concatenate([strip] * 7, axis=1)  # 4200 px wide: 16,800 at x4
    enhancer = Enhancer(EnhanceOptions(preset="fidelity", overrides=("superres.scale=4", "superres.models=[]")))
    result = enhancer.enhance(save(panorama, "WEBP", lossless=True))
    width, height = Image.open(io.BytesIO(result.data)).size
    assert result.format == "WEBP" and 16_000 < width <= 16_383 and 60 <= height < 64  # reduced alike
    [superres_stage] = [r for r in result.record["stages"] if r["stage"] == "superres"]
    assert superres_stage["details"]["output_long_side_cap"] == 16_383


def test_a_derivative_the_format_cannot_hold_is_refused_before_the_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    from enhance_ops.errors import EncodeError

    enhancer = Enhancer(EnhanceOptions(preset="fidelity", overrides=("superres.scale=2", "superres.models=[]"),
                                       output_format="JPEG"))
    calls = _counted(enhancer, monkeypatch)
    deep = cv2.imencode(".png", (photo("coffee", 32) * 65535).astype(np.uint16))[1].tobytes()
    with pytest.raises(EncodeError, match="JPEG holds 8 bits per sample"):
        enhancer.enhance(deep)
    assert calls == []


def _counted(enhancer: Enhancer, monkeypatch: pytest.MonkeyPatch, fail_first: bool = False) -> list[int]:
    calls: list[int] = []
    original = enhancer.chain.run_master

    def run_master(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        if fail_first and len(calls) == 1:
            raise MemoryError("the first run of the chain fails")
        return original(*args, **kwargs)

    monkeypatch.setattr(enhancer.chain, "run_master", run_master)
    return calls


def test_a_copy_started_while_its_twin_is_on_its_way_waits_for_its_result(monkeypatch: pytest.MonkeyPatch) -> None:
    """A shard starts the next images before the previous ones are finished (airflow/tasks.py)."""
    enhancer = Enhancer(EnhanceOptions(preset="fidelity", overrides=("superres.scale=2", "superres.models=[]")))
    calls = _counted(enhancer, monkeypatch)
    data = save((photo("coffee", 32, top=100, left=200) * 255).astype(np.uint8), "PNG")
    first, copy = enhancer.start(data), enhancer.start(data)  # the copy arrives before the first has run
    assert copy.image is None  # not decoded while the twin's result may make it unneeded
    result = enhancer.finish(enhancer.run(first))
    again = enhancer.finish(enhancer.run(copy))
    assert len(calls) == 1 and again.data == result.data and "identical content" in again.record["cache"]


def test_a_copy_whose_twin_failed_is_enhanced_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    enhancer = Enhancer(EnhanceOptions(preset="fidelity", overrides=("superres.scale=2", "superres.models=[]")))
    calls = _counted(enhancer, monkeypatch, fail_first=True)
    data = save((photo("coffee", 32, top=100, left=200) * 255).astype(np.uint8), "PNG")
    first, copy = enhancer.start(data), enhancer.start(data)
    with pytest.raises(MemoryError):
        enhancer.run(first)
    result = enhancer.finish(enhancer.run(copy))
    assert len(calls) == 2 and "cache" not in result.record and result.record["output_size"] == (64, 64)
    assert "identical content" in enhancer.enhance(data).record["cache"]  # and it is remembered for the next copy


@pytest.mark.parametrize("model", ["realesrgan-x4plus", "span-x4"])
def test_bf16_path_agrees_with_fp32_within_the_documented_tolerance(model: str) -> None:
    rgb = photo("chelsea", 48, top=80, left=150)
    fp32 = np.clip(superres.run_network(load_model(model), rgb, superres.Inference(precision="fp32")), 0, 1)
    unprepared = np.clip(superres.run_network(load_model(model), rgb, superres.Inference(precision="bf16")), 0, 1)
    inference = superres.Inference(precision="bf16")  # the chain's CPU path: bf16 weights, packed convolutions
    bf16 = np.clip(superres.run_network(inference.prepare(load_model(model)), rgb, inference), 0, 1)
    assert psnr(unprepared, fp32) >= 40  # autocast
    assert psnr(bf16, fp32) >= 40  # docs/benchmarks.md: measured 51-58 dB


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_cli_runs_every_preset_on_real_photos(preset: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "in"
    write_samples(src, long_side=32)
    out = tmp_path / preset
    assert main(["enhance", str(src), str(out), "--preset", preset, "--scale", "2", "--quiet"]) == 0
    assert len(list(out.glob("*.json"))) == len(list(src.iterdir()))



def _letter() -> tuple[bytes, list[np.ndarray], bytes]:
    """A three-page letter in one TIFF, with a thumbnail: each page its own size, depth and
    metadata (the first a profile, a resolution and a date; the second 16-bit grey, turned
    by its Orientation tag; the third with alpha, its own resolution and an Artist)."""
    import tifffile
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    first = (photo("coffee", 40, top=100, left=200) * 255).astype(np.uint8)
    second = (photo("chelsea", 36, top=60, left=150)[:, :28, 1] * 65535).astype(np.uint16)
    third = np.dstack([(photo("astronaut", 32, top=40, left=200) * 255).astype(np.uint8), np.full((32, 32), 200, np.uint8)])
    buf = io.BytesIO()
    with tifffile.TiffWriter(buf) as tif:
        tif.write(first, photometric="rgb", iccprofile=icc, resolution=(300, 300), resolutionunit="INCH",
                  datetime="1931:06:02 09:00:00", metadata=None)
        tif.write(first[::4, ::4], photometric="rgb", subfiletype=1, metadata=None)
        tif.write(second, photometric="minisblack", extratags=[(274, "H", 1, 6, True)], metadata=None)
        tif.write(third, photometric="rgb", extrasamples=["unassalpha"], resolution=(600, 600), resolutionunit="INCH",
                  extratags=[(315, "s", 0, "A. Clerk", True)], metadata=None)
    return buf.getvalue(), [first, np.rot90(second, -1), third], icc


def test_a_multi_page_tiff_becomes_a_multi_page_tiff_each_page_with_its_own_metadata() -> None:
    from PIL import Image

    from enhance_ops import codecs

    data, masters, icc = _letter()
    enhancer = Enhancer(EnhanceOptions(preset="fidelity", overrides=("superres.scale=2", "superres.models=[]")))
    result = enhancer.enhance(data)
    assert result.format == "TIFF" and codecs.pages(result.data).frames == (0, 1, 2)
    pages = [codecs.decode(result.data, frame=frame) for frame in (0, 1, 2)]
    def colour(a: np.ndarray) -> np.ndarray:
        a = a.reshape(*a.shape[:2], -1)[:, :, :3]
        return np.repeat(a, 3, 2) if a.shape[2] == 1 else a

    for page, master in zip(pages, masters):
        assert page.pixels.shape[:2] == (2 * master.shape[0], 2 * master.shape[1])  # each page, the right way up
        assert psnr(shrink(colour(page.pixels), 2), colour(master / np.iinfo(master.dtype).max)) > 28
    assert [p.bit_depth for p in pages] == [8, 16, 8] and [p.alpha is not None for p in pages] == [False, False, True]
    assert pages[0].metadata.icc_profile == icc and pages[1].metadata.icc_profile is None
    assert [p.metadata.dpi for p in pages] == [(600.0, 600.0), None, (1200.0, 1200.0)]
    assert Image.open(io.BytesIO(result.data)).getexif()[306] == "1931:06:02 09:00:00"
    tags = [(p.metadata.exif or {}).get("0th", {}) for p in pages]
    assert [t.get(315) for t in tags] == [None, None, b"A. Clerk"] and all(t.get(274, 1) == 1 for t in tags)

    record = result.record
    assert [(p["page"], p["input_size"], p["output_size"], p["bit_depth"], p["bits_per_sample"])
            for p in record["pages"]] == [(1, [40, 40], [80, 80], 8, 8), (2, [36, 28], [72, 56], 16, 16),
                                         (3, [32, 32], [64, 64], 8, 8)]
    psnrs = [p["metrics"]["consistency_psnr_db"] for p in record["pages"]]
    assert record["metrics"]["consistency_psnr_db"] == min(psnrs) and len(set(psnrs)) == 3
    assert record["metrics"]["artefact_score"] == max(p["metrics"]["artefact_score"] for p in record["pages"])
    assert record["input_size"] == (40, 40) and record["notes"] == [
        "1 reduced-resolution copy(s) in the file not enhanced: not pages of the document"]
    assert record["pages_complete"]  # a thumbnail left out is no page lost


def test_a_multi_page_tiff_written_as_png_is_its_first_page_and_says_so() -> None:
    from PIL import Image

    data, masters, _ = _letter()
    enhancer = Enhancer(EnhanceOptions(preset="fidelity", overrides=("superres.scale=2", "superres.models=[]"),
                                       output_format="PNG"))
    result = enhancer.enhance(data)
    assert result.format == "PNG" and Image.open(io.BytesIO(result.data)).size == (80, 80)
    assert not result.record["pages_complete"]  # the gate holds it: the derivative lacks two pages
    assert "pages" not in result.record and ("file holds 3 pages: only the first is enhanced, as a PNG derivative "
                                             "holds one (write TIFF to keep them all)") in result.record["notes"]


def test_damage_on_a_later_page_is_in_the_documents_record_naming_the_page() -> None:
    import tifffile

    page = (photo("astronaut", 48) * 255 + 0.5).astype(np.uint8)
    buf = io.BytesIO()
    with tifffile.TiffWriter(buf) as tif:
        for _ in range(2):
            tif.write(page, photometric="rgb", compression="zlib", rowsperstrip=16, metadata=None)
    data = bytearray(buf.getvalue())
    with tifffile.TiffFile(io.BytesIO(bytes(data))) as tif:
        offset, count = tif.pages[1].dataoffsets[1], tif.pages[1].databytecounts[1]
    data[offset + count // 2] ^= 0x10  # a bit of the second page's second strip, rotted
    enhancer = Enhancer(EnhanceOptions(preset="fidelity", overrides=("superres.scale=2", "superres.models=[]")))
    record = enhancer.enhance(bytes(data)).record
    assert record["master_damage"].startswith("page 2: strip 2 of 3 cannot be expanded: ")
    assert any(note.startswith("page 2: the TIFF's pixel data is damaged (strip 2 of 3") for note in record["notes"])


def test_the_record_names_lpips_and_its_precision_where_consistency_lpips_was_measured() -> None:
    """A worker without native bf16 computes LPIPS in fp32, and its values differ in the fourth
    decimal: the record says which precision, and names the LPIPS network with its weights'
    hash, on an image whose consistency LPIPS was measured and on a document where only a later
    page's was; an image too small to measure names neither."""
    from enhance_ops.models.manifest import get_entry
    from enhance_ops.quality.metrics import lpips_precision

    enhancer = Enhancer(EnhanceOptions(preset="fidelity", overrides=("superres.scale=2", "superres.models=[]")))
    small, large = ((photo("astronaut", side) * 255).astype(np.uint8) for side in (12, 40))
    alone = enhancer.enhance(save(small, "PNG")).record
    assert np.isnan(alone["metrics"]["consistency_lpips"])  # x2 makes 24 px, under what AlexNet takes
    assert alone["lpips_precision"] is None and "lpips-alex" not in alone["weights_sha256"]
    buf = io.BytesIO()
    with tifffile.TiffWriter(buf) as tif:
        tif.write(small, photometric="rgb")
        tif.write(large, photometric="rgb")
    document = enhancer.enhance(buf.getvalue()).record
    assert [np.isnan(page["metrics"]["consistency_lpips"]) for page in document["pages"]] == [True, False]
    assert document["lpips_precision"] == lpips_precision() and lpips_precision() in ("bf16", "fp32")
    assert document["weights_sha256"]["lpips-alex"] == get_entry("lpips-alex").sha256
    assert document["weights_sha256"].keys() == {"span-x2", "lpips-alex"}


def test_a_page_that_cannot_be_enhanced_fails_the_master_naming_the_page(monkeypatch: pytest.MonkeyPatch) -> None:
    import struct

    import tifffile

    from enhance_ops.errors import TruncatedImageError

    data, _, _ = _letter()
    cut = bytearray(data)
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        strips = tif.pages[2].tags["StripOffsets"]
    struct.pack_into(f"<{strips.count}I", cut, strips.valueoffset, *[len(cut) + 99] * strips.count)
    enhancer = Enhancer(EnhanceOptions(preset="fidelity", overrides=("superres.scale=2", "superres.models=[]")))
    calls = _counted(enhancer, monkeypatch)
    with pytest.raises(TruncatedImageError, match="^page 2 of 3: TIFF pixel data is incomplete"):
        enhancer.enhance(bytes(cut))
    assert len(calls) == 1  # the first page's chain; the third page was never reached
    again = enhancer.enhance(data)  # nothing of the failed master is left in the way
    assert len(calls) == 4 and "cache" not in again.record


def test_a_documents_pages_are_read_and_written_while_the_chain_runs_the_page_between(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from enhance_ops import codecs, encoders
    from enhance_ops.errors import EncodeError

    data, _, _ = _letter()  # pages at frames 0, 2 and 3 (frame 1 is a thumbnail)
    enhancer = Enhancer(EnhanceOptions(preset="fidelity", overrides=("superres.scale=2", "superres.models=[]")))
    read, written, threads = {frame: threading.Event() for frame in (2, 3)}, [threading.Event() for _ in range(3)], set()
    decode, add_page, run_master = codecs.decode, encoders.add_tiff_page, enhancer.chain.run_master
    runs: list[int] = []

    def reading(*args, frame: int = 0, **kwargs):  # type: ignore[no-untyped-def]
        image = decode(*args, frame=frame, **kwargs)
        if frame in read:
            threads.add(threading.current_thread().name)
            read[frame].set()
        return image

    def writing(*args, **kwargs):  # type: ignore[no-untyped-def]
        threads.add(threading.current_thread().name)
        add_page(*args, **kwargs)
        next(event for event in written if not event.is_set()).set()

    def chain(*args, **kwargs):  # type: ignore[no-untyped-def]
        runs.append(1)
        if len(runs) == 2:  # the second page, in the chain: the third is read, the first written, meanwhile
            assert read[3].wait(20) and written[0].wait(20)
        return run_master(*args, **kwargs)

    monkeypatch.setattr(codecs, "decode", reading)
    monkeypatch.setattr(encoders, "add_tiff_page", writing)
    monkeypatch.setattr(enhancer.chain, "run_master", chain)
    result = enhancer.enhance(data)
    assert len(codecs.pages(result.data).frames) == 3 and all(event.is_set() for event in written)
    assert threading.current_thread().name not in threads and len(threads) == 1  # one helper beside the chain
    assert result.record["encode_s"] > 0 and result.record["decode_s"] > 0

    pages_written: list[int] = []

    def failing(*args, **kwargs):  # type: ignore[no-untyped-def]
        pages_written.append(1)
        if len(pages_written) == 2:
            raise EncodeError("the disk is full")
        add_page(*args, **kwargs)

    monkeypatch.setattr(encoders, "add_tiff_page", failing)
    with pytest.raises(EncodeError, match="^page 2 of 3: the disk is full"):  # a page written late is still named
        Enhancer(EnhanceOptions(preset="fidelity", overrides=("superres.scale=2", "superres.models=[]"))).enhance(data)


def test_a_documents_pages_together_are_held_to_the_pixel_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each page is within it; a register of hundreds would still outgrow the worker, its
    derivative being built in memory."""
    from enhance_ops.errors import ImageTooLargeError

    data, _, _ = _letter()  # 40 x 40, 28 x 36 and 32 x 32: 3,632 pixels
    options = EnhanceOptions(preset="fidelity", overrides=("superres.scale=2", "superres.models=[]"), max_pixels=3000)
    enhancer = Enhancer(options)
    calls = _counted(enhancer, monkeypatch)
    with pytest.raises(ImageTooLargeError, match="^3 pages of 3,632 pixels in all exceed the limit of 3,000 "):
        enhancer.enhance(data)
    assert calls == []
    assert Enhancer(dataclasses.replace(options, output_format="PNG")).enhance(data).format == "PNG"  # one page
    assert Enhancer(dataclasses.replace(options, max_pixels=3632)).enhance(data).record["pages"][2]["page"] == 3


def test_the_tile_progress_is_planned_with_the_tiles_the_networks_run() -> None:
    """A progress bar's total: each page's tiles, planned once the chain knows its models and
    size. The command line had counted an image at its own size before decoding it: an image
    over the output cap, reduced first, was counted at 4 tiles where 1 ran, and every page or
    frame of a file, where only a TIFF's pages are enhanced (a WebP's later frames are not)."""
    enhancer = Enhancer(EnhanceOptions(preset="fast-cpu", overrides=(
        "superres.scale=4", "superres.max_output_long_side=1024")))
    plans: list[int] = []
    done: list[None] = []
    stages: list[str] = []  # each stage as it ends: the beat a watchdog hears between tiles
    progress = pipeline.TileProgress(plans.append, lambda: done.append(None), stages.append)
    large = (photo("astronaut") * 255).astype(np.uint8)  # 512 × 512: 2 × 2 tiles of 256
    assert enhancer.chain.tile_count(512, 512) == 4
    result = enhancer.enhance(save(large, "PNG"), progress)
    assert plans == [1] and len(done) == 1  # reduced to 256 × 256 first, for a long side of 1024: one tile
    assert stages == [s["stage"] for s in result.record["stages"] if s["stage"] in stages]
    assert "superres" in stages and len(stages) >= 5, stages
    plans.clear(), done.clear()
    small = (photo("coffee", 64, top=120, left=200) * 255).astype(np.uint8)
    buf = io.BytesIO()
    with tifffile.TiffWriter(buf) as tif:
        for page in (small, small[::-1], small[:, ::-1]):
            tif.write(page, photometric="rgb", metadata=None)
    enhancer.enhance(buf.getvalue(), progress)
    assert plans == [1, 1, 1] and len(done) == 3  # each page planned as it starts
    plans.clear(), done.clear()
    frames = [Image.fromarray(small), Image.fromarray(small[::-1])]
    webp = io.BytesIO()
    frames[0].save(webp, "WEBP", save_all=True, append_images=frames[1:], lossless=True)
    enhancer.enhance(webp.getvalue(), progress)
    assert plans == [1] and len(done) == 1  # the first frame only, as enhanced
