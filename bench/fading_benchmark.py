"""Faded-colour restoration benchmark: real photos, synthetic print fading, CIEDE2000 to the original.

Photos: four from scikit-image's wheel (the "tuning" set the restoration's settings were
chosen on) and the five TID2013 reference photos in ../shared/calibration (held out).
Methods: the faded input itself, grey-world white balance, ``restore_faded_colour``, and
the nightly default preset's chain (``through_the_chain``: exposure and denoising before,
SR a plain enlargement, reduced back after, and no sharpening or local contrast), which
decides by itself whether the print is faded; and the same chain on the print scanned
whole, with ``MARGIN`` px of the scanner's black or white background around it.
The unfaded originals go through the same chain whole and reduced to a half and a quarter
(an area reduction lifts their darkest pixels, as a smaller scan's are): what it changes
there is harm, the distance from the photo itself.
Two diagnostics split the restoration's error in two, by giving it one half of the truth
from the fading model: ``true_tone`` undoes the model's stain and per-channel contrast loss
exactly and estimates only the chroma gain; ``true_chroma`` estimates the tone and cast
correction and is given the true chroma gain. They are not methods (they need the answer).

    .venv/bin/python bench/fading_benchmark.py      # writes bench/results/fading.json
"""
from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from skimage import data as skdata
from skimage.color import deltaE_ciede2000, rgb2lab

from cpu_inference import save_results, without_options

from enhance_ops.chain import pipeline
from enhance_ops.chain.color import RESTORED, FadeCorrection, plan_restoration, restore_faded_colour
from enhance_ops.chain.colour_math import linear_to_srgb, srgb_to_linear
from enhance_ops.degrade import CHROMA_LOSS, CONTRAST_LOSS, STAIN, fade

ROOT = Path(__file__).resolve().parents[1]
CALIBRATION = ROOT.parent / "shared" / "calibration" / "iqa" / "ref"
TUNING = ["chelsea", "coffee", "astronaut", "rocket"]
HELD_OUT = ["I03", "I04", "I06", "I08", "I19"]
MARGIN = 24
BACKGROUNDS = {"black": 0.02, "white": 0.97}
STRENGTHS = (0.6, 1.0)
SIZES = (1.0, 0.5, 0.25)  # the unfaded originals' sides, as shares of their own


def photos() -> dict[str, tuple[str, np.ndarray]]:
    found = {n: ("tuning", getattr(skdata, n)().astype(np.float32) / 255) for n in TUNING}
    for n in HELD_OUT:
        found[n] = ("held-out", np.asarray(Image.open(CALIBRATION / f"{n}.bmp").convert("RGB"), np.float32) / 255)
    return found


def grey_world(image: np.ndarray) -> np.ndarray:
    linear = srgb_to_linear(image)
    means = linear.reshape(-1, 3).mean(axis=0)
    return linear_to_srgb(linear * means.mean() / means)


def true_tone(faded: np.ndarray, strength: float) -> np.ndarray:
    """The model's stain and contrast loss undone exactly; chroma gain as the method estimates it."""
    untoned = np.clip((faded - strength * STAIN) / (1 - strength * CONTRAST_LOSS), 0, 1).astype(np.float32)
    estimated = plan_restoration(untoned, mode="on")[0]
    assert estimated is not None
    return FadeCorrection(np.zeros(3, np.float32), np.ones(3, np.float32), estimated.chroma_gain).apply(untoned)


def true_chroma(faded: np.ndarray, strength: float) -> np.ndarray:
    """The method's tone and cast correction with the model's true chroma gain."""
    estimated = plan_restoration(faded, mode="on")[0]
    assert estimated is not None
    return FadeCorrection(estimated.black, estimated.gains, 1 / (1 - CHROMA_LOSS * strength)).apply(faded)


def tone_chain() -> pipeline.Chain:
    """archive-photo with SR a plain enlargement and no sharpening or local contrast: its colour and tone stages."""
    return pipeline.Chain("archive-photo", ("superres.scale=2", "superres.models=[]", "superres.colour_guard=false",
                                            "sharpen.amount=0", "local_contrast.clip_limit=0"))


def through_the_chain(image: np.ndarray) -> tuple[np.ndarray, dict[str, str]]:
    """archive-photo's colour and tone stages on ``image``, and each stage's decision."""
    result = tone_chain().run(image)
    reduced = cv2.resize(result.pixels, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_AREA)
    return reduced, {r.stage: r.decision for r in result.stages}


def delta_e(a: np.ndarray, b: np.ndarray) -> float:
    return float(deltaE_ciede2000(rgb2lab(a), rgb2lab(b)).mean())


def unfaded(original: np.ndarray, size: float) -> dict[str, object]:
    """What the chain does to an original that never faded, at ``size`` of its sides."""
    image = original if size == 1 else cv2.resize(original, None, fx=size, fy=size, interpolation=cv2.INTER_AREA)
    result = tone_chain().run(image)
    [restore] = [r for r in result.stages if r.stage == "colour_restore"]
    reduced = cv2.resize(result.pixels, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_AREA)
    return {"chain_from_itself": delta_e(reduced, image), "restored": restore.decision == RESTORED,
            "strength": restore.details.get("strength", 0.0) if restore.decision == RESTORED else 0.0}


def run() -> dict[str, object]:
    rows, originals = [], []
    for name, (group, original) in photos().items():
        originals += [{"photo": name, "set": group, "size": size, **unfaded(original, size)} for size in SIZES]
        for strength in STRENGTHS:
            faded = fade(original, strength)
            restored, _ = restore_faded_colour(faded, mode="on")
            chained, decisions = through_the_chain(faded)
            on_background = {name: through_the_chain(np.pad(faded, ((MARGIN, MARGIN), (MARGIN, MARGIN), (0, 0)),
                                                             constant_values=value))[0][MARGIN:-MARGIN, MARGIN:-MARGIN]
                             for name, value in BACKGROUNDS.items()}
            rows.append({
                "photo": name, "set": group, "strength": strength,
                "faded": delta_e(faded, original),
                "grey_world": delta_e(grey_world(faded), original),
                "restored": delta_e(restored, original),
                "chain": delta_e(chained, original),
                "chain_restored": decisions["colour_restore"] == RESTORED,
                **{f"chain_on_{name}": delta_e(scan, original) for name, scan in on_background.items()},
                "diagnostic_true_tone": delta_e(true_tone(faded, strength), original),
                "diagnostic_true_chroma": delta_e(true_chroma(faded, strength), original),
                "detected_as_faded": restore_faded_colour(faded, mode="auto")[1]["decision"] == RESTORED,
            })
    summary = {}
    for group in ("tuning", "held-out", "all"):
        for strength in STRENGTHS:
            sub = [r for r in rows if r["strength"] == strength and group in ("all", r["set"])]
            means = {k: float(np.mean([r[k] for r in sub]))
                     for k in ("faded", "grey_world", "restored", "chain", "chain_on_black", "chain_on_white",
                               "diagnostic_true_tone", "diagnostic_true_chroma")}
            summary[f"{group}@{strength}"] = {**means, "restored/faded": means["restored"] / means["faded"]}
    unharmed = {str(size): {"chain_from_itself": float(np.mean([r["chain_from_itself"] for r in sub])),
                            "restored": sum(bool(r["restored"]) for r in sub),
                            "strength": float(np.mean([r["strength"] for r in sub if r["restored"]] or [0.0]))}
                for size in SIZES for sub in [[r for r in originals if r["size"] == size]]}
    return {"rows": rows, "summary": summary, "originals": originals, "originals_summary": unharmed}


def main() -> int:
    result = run()
    out = save_results("fading", result)
    for key, s in result["summary"].items():
        print(f"{key:18} faded {s['faded']:6.2f}  grey-world {s['grey_world']:6.2f}  "
              f"restored {s['restored']:6.2f}  ratio {s['restored/faded']:.2f}  chain {s['chain']:6.2f} "
              f"(on black {s['chain_on_black']:6.2f}, on white {s['chain_on_white']:6.2f})  "
              f"(true tone: {s['diagnostic_true_tone'] / s['faded']:.2f}, true chroma: "
              f"{s['diagnostic_true_chroma'] / s['faded']:.2f})")
    for size, s in result["originals_summary"].items():
        print(f"unfaded at {float(size):.0%} size: the chain {s['chain_from_itself']:5.2f} from itself, "
              f"{s['restored']} of 9 restored (mean strength {s['strength']:.2f})")
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    without_options(__doc__)
    sys.exit(main())
