"""Monochrome prints (sepia, cyanotype, black and white scanned in colour) keep their tone."""
from __future__ import annotations

import io

import numpy as np
import pytest
from conftest import photo
from fading_benchmark import photos
from PIL import Image

from enhance_ops.chain import pipeline, preprocess, toning
from enhance_ops.chain.color import fading_signs, plan_restoration
from enhance_ops.chain.colour_math import LUMA, srgb_to_lab
from enhance_ops.degrade import fade

SEPIA = (0.8, 1.0, 1.35)  # each channel's exponent on the print's reflectance: warm darks, cream lights
CYANOTYPE = (1.9, 1.2, 0.75)  # Prussian blue


def toned(name: str, process: tuple[float, float, float], black: float = 0.1) -> np.ndarray:
    """A black-and-white photograph as a toned print scanned in colour: the paper's black
    lifted to ``black``, each channel a power of the reflectance."""
    image = photo(name)
    grey = image if image.ndim == 2 else image @ LUMA
    reflectance = black + (0.92 - black) * grey
    return np.stack([reflectance**e for e in process], -1).astype(np.float32)


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray((image * 255 + 0.5).astype(np.uint8)).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("RGB"), np.float32) / 255


def tone_by_lightness(image: np.ndarray) -> dict[int, np.ndarray]:
    """Mean (a*, b*) of each tenth of L* that holds at least 1 % of the pixels."""
    lab = srgb_to_lab(image).reshape(-1, 3)
    tenth = (lab[:, 0] // 10).astype(int)
    return {int(t): lab[tenth == t, 1:].mean(axis=0) for t in np.unique(tenth) if (tenth == t).mean() >= 0.01}


@pytest.mark.parametrize("name", ["camera", "moon", "coins", "astronaut"])
def test_monochrome_prints_are_recognised_noisy_or_as_jpeg(name: str) -> None:
    rng = np.random.default_rng(0)
    sepia, cyanotype = toned(name, SEPIA), toned(name, CYANOTYPE, black=0.15)
    grey = np.repeat(toned(name, (1.0, 1.0, 1.0), black=0.0)[..., :1], 3, axis=2)
    scanned_grey = np.clip(grey + rng.normal(0, 2 / 255, grey.shape), 0, 1).astype(np.float32)  # RGB noise
    grainy_sepia = np.clip(sepia + rng.normal(0, 4 / 255, sepia.shape), 0, 1).astype(np.float32)
    for print_ in (sepia, cyanotype, jpeg(sepia, 50), jpeg(cyanotype, 50), scanned_grey, grainy_sepia):
        assert toning.measure(print_).monochrome
    assert 60 < toning.measure(sepia).hue_deg < 100 and toning.measure(sepia).chroma > 10
    assert 240 < toning.measure(cyanotype).hue_deg < 290
    assert toning.measure(scanned_grey).described == "untoned"


def test_colour_photos_faded_or_not_are_not_taken_for_monochrome_prints() -> None:
    """The fading benchmark's nine photos as they are, faded at 0.6 and 1.0 (a third of
    their chroma gone), and faded as JPEG: 4.0 % of pixels or more off the tone (monochrome
    prints above: at most 0.7 %)."""
    for name, (_, original) in photos().items():
        for image in (original, fade(original, 0.6), fade(original, 1.0), jpeg(fade(original, 1.0), 50)):
            assert toning.measure(image).off_tone_share > 2 * toning.MONOCHROME_SHARE, name


def test_fading_restoration_leaves_a_cyanotype_blue() -> None:
    """Its lifted blue blacks read as a faded print's stain: restored, its highlights turned yellow."""
    cyanotype = toned("camera", CYANOTYPE, black=0.15)
    assert fading_signs(cyanotype).faded
    correction, record = plan_restoration(cyanotype)
    assert correction is None
    assert record["decision"].startswith("skipped: a monochrome print (toned at hue 26")
    assert plan_restoration(cyanotype, mode="on")[0] is not None  # asked for, it is done


def test_cast_removal_leaves_a_toned_print() -> None:
    cyanotype = toned("camera", CYANOTYPE, black=0.03)
    kept, record = preprocess.correct_colour_cast(cyanotype)
    assert kept is cyanotype and record["cast_deg"] > 1.0  # a cast it would otherwise have removed
    assert "a monochrome print" in record["decision"]


def test_exposure_gives_a_stretched_sepia_print_its_own_tone() -> None:
    """The same levels on every channel had raised the tone's chroma by half (16-19 to
    20-29); each lightness now has the print's colour at that lightness. A hand-tinted patch
    keeps its tint."""
    sepia = toned("camera", SEPIA, black=0.14)
    sepia[40:90, 200:260] *= np.array([1.0, 0.85, 0.85], np.float32)  # a red tint: 1.1 % of the print
    analysis = preprocess.analyse_dynamic_range(sepia, 8)
    out, record = preprocess.compensate_exposure(sepia, analysis)
    assert "levels stretched" in record["decision"] and "the tone of a monochrome print kept" in record["decision"]
    before, after = tone_by_lightness(sepia), tone_by_lightness(out)
    for tenth in set(before) & set(after):
        assert np.linalg.norm(after[tenth] - before[tenth]) < 2.0, tenth
    tone = toning.measure(sepia)
    tint, kept = (off_tone(image[45:85, 205:255], tone) for image in (sepia, out))
    assert np.linalg.norm(tint) > 5 and np.linalg.norm(kept - tint) < 0.1 * np.linalg.norm(tint)


def off_tone(patch: np.ndarray, tone: toning.Toning) -> np.ndarray:
    """What the patch's (a*, b*) differ from the print's tone at their lightness by, on average."""
    lab = srgb_to_lab(patch)
    return (lab[..., 1:] - tone.tone_at(lab[..., 0])).mean(axis=(0, 1))


def test_the_default_chain_keeps_a_cyanotype_blue() -> None:
    """archive-photo at x4 through Real-ESRGAN: each tenth of lightness keeps its hue."""
    cyanotype = toned("camera", CYANOTYPE, black=0.15)[::6, ::6].copy()
    result = pipeline.Chain("archive-photo", ("superres.scale=4",)).run(cyanotype)
    decisions = {r.stage: r.decision for r in result.stages}
    assert decisions["superres"] == "x4 with realesrgan-x4plus"
    assert "a monochrome print" in decisions["colour_restore"]
    before, after = tone_by_lightness(cyanotype), tone_by_lightness(result.pixels)
    for tenth in set(before) & set(after):
        hue = np.degrees(np.arctan2(*before[tenth][::-1])), np.degrees(np.arctan2(*after[tenth][::-1]))
        assert abs(hue[0] - hue[1]) < 10 and np.linalg.norm(after[tenth]) > 0.8 * np.linalg.norm(before[tenth]), tenth
