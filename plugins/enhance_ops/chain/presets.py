"""Every preset in one place, as plain data: which stages run, in which order, with what settings.

A run picks a preset by name and may override single settings (``denoise.strength=strong``).
Each stage also takes ``blend`` (0-1): progressive enhancement, the share of the stage's
change that is kept (1 = all of it, 0.5 = halfway between its input and its output).
"""
from __future__ import annotations

import copy
import json
import math
from typing import Any

STAGES = (
    "exposure",
    "colour_cast",
    "lens",
    "denoise",
    "superres",
    "colour_restore",
    "sharpen",
    "local_contrast",
    "colour_space",
)

SR_DEFAULTS: dict[int, tuple[str, ...]] = {  # the super-resolution models each enlargement runs by default
    2: ("span-x2",),
    4: ("realesrgan-x4plus",),
    8: ("realesrgan-x4plus", "span-x2"),
}
# A page of black and white only (a bitonal scan) goes to a fidelity network instead, smoothed
# first (the manifest's ``bitonal_sigma``): Real-ESRGAN and the compact model redraw its letters
# (consistency 24.7 dB on a printed page at x4, which the gate holds), SPAN keeps them (40 dB).
# So does a grey or colour page of text where ``superres.text_pages`` is on (``text_page``).
BITONAL_DEFAULTS: dict[int, tuple[str, ...]] = {2: ("span-x2",), 4: ("span-x4",), 8: ("span-x4", "span-x2")}
SCALES = tuple(SR_DEFAULTS)
PRECISIONS = ("auto", "fp32", "bf16", "fp16")  # auto: superres.best_precision

_BASE: dict[str, dict[str, Any]] = {
    "exposure": {"enabled": True, "blend": 1.0},
    # Opt-in (colour_cast.enabled=true): no single-image estimate tells a warm scene from a cast
    # reliably (docs/chain.md), and an archive's default is to do no harm.
    "colour_cast": {"enabled": False, "blend": 1.0},
    "lens": {"enabled": True, "k1": 0.0, "k2": 0.0, "blend": 1.0},
    "denoise": {"strength": "auto", "sigma": None, "blend": 1.0},
    "superres": {"scale": 4, "models": [], "bitonal_models": [], "text_pages": True, "descreen": True,
                 "colour_guard": True, "max_output_long_side": 30000, "square_pixels": True, "blend": 1.0},
    "colour_restore": {"mode": "auto", "blend": 1.0},
    "sharpen": {"amount": 0.4, "blend": 1.0},
    "local_contrast": {"clip_limit": 1.2, "blend": 1.0},
    "colour_space": {"target": None},
    "inference": {"precision": "auto"},
}


def _preset(**changes: dict[str, Any]) -> dict[str, dict[str, Any]]:
    preset = copy.deepcopy(_BASE)
    for stage, settings in changes.items():
        preset[stage].update(settings)
    return preset


PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    # Prints and negatives: the full chain, real-world SR (Real-ESRGAN), faded colours restored when detected.
    "archive-photo": _preset(),
    # Text, drawings, maps: fidelity SR (no invented texture), impulse dust removed, no colour work.
    "document-scan": _preset(
        exposure={"enabled": False},
        superres={"models": ["span-x4"]},
        colour_restore={"mode": "off"},
        sharpen={"amount": 0.6},
        local_contrast={"clip_limit": 0.0},
    ),
    # As close to the master as possible: PSNR-oriented SR only, plus the colour guard.
    "fidelity": _preset(
        exposure={"enabled": False},
        lens={"enabled": False},
        denoise={"strength": "off"},
        superres={"models": ["span-x4"]},
        colour_restore={"mode": "off"},
        sharpen={"amount": 0.0},
        local_contrast={"clip_limit": 0.0},
    ),
    # Throughput on CPU workers: the compact SR model (about 20x cheaper than RRDBNet here).
    "fast-cpu": _preset(
        superres={"models": ["realesr-animevideov3-x4"]},
        local_contrast={"clip_limit": 0.0},
    ),
}


def scale_overrides(scale: int, models: list[str] | None = None, preset: str | None = None) -> list[str]:
    """Overrides for an enlargement: the ``models`` named; else ``preset``'s own where they make
    that scale (a nightly run's scale, always given, had sent every preset's photographs to
    Real-ESRGAN), or begin it (``_own_networks_at``); else that scale's default models."""
    if not models and preset in PRESETS and (own := PRESETS[preset]["superres"]["models"]):
        models = _own_networks_at(scale, own)
        if models == own:
            return [f"superres.scale={scale}"]
    return [f"superres.scale={scale}", "superres.models=" + json.dumps(models or [])]


def _own_networks_at(scale: int, own: list[str]) -> list[str]:
    """A preset's networks at ``scale``: its own where they make it; its own and then the
    default networks for the factor left (fast-cpu at x8: the compact model, then SPAN x2, not
    Real-ESRGAN); for a preset of fidelity networks only, the fidelity networks (``BITONAL_DEFAULTS``)
    for that factor, or for a smaller scale (SPAN x2 at x2); else none, leaving the scale's defaults."""
    from ..models.manifest import get_entry  # read here: the DAG file imports this module to parse

    made = math.prod(get_entry(name).scale for name in own)
    fidelity_only = set(own) <= {name for chain in BITONAL_DEFAULTS.values() for name in chain}
    defaults = BITONAL_DEFAULTS if fidelity_only else SR_DEFAULTS
    if scale == made:
        return own
    if scale % made == 0 and scale // made in defaults:
        return [*own, *defaults[scale // made]]
    return list(BITONAL_DEFAULTS[scale]) if fidelity_only and scale in BITONAL_DEFAULTS else []


def resolve_models(
    scale: int, names: tuple[str, ...] | list[str] = (), defaults: dict[int, tuple[str, ...]] = SR_DEFAULTS
) -> tuple[str, ...]:
    """The SR models for ``scale``: the defaults, or the named ones whose scales multiply to it."""
    from ..models.manifest import get_entry  # read here: the DAG file imports this module to parse

    if not names:
        if scale not in defaults:
            raise ValueError(f"scale must be one of {sorted(defaults)}, not {scale}")
        return defaults[scale]
    product = 1
    for name in names:
        try:
            entry = get_entry(name)
        except KeyError as exc:
            raise ValueError(exc.args[0]) from None
        if entry.task != "super-resolution":
            raise ValueError(f"{name} is a {entry.task} model, not a super-resolution model")
        product *= entry.scale
    if product != scale:
        raise ValueError(f"models {', '.join(names)} upscale x{product}, but x{scale} was asked for")
    return tuple(names)


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def resolve_preset(name: str, overrides: list[str] | tuple[str, ...] = ()) -> dict[str, dict[str, Any]]:
    """The named preset with ``stage.setting=value`` overrides applied (values parsed as JSON when they can be)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    preset = copy.deepcopy(PRESETS[name])
    for item in overrides:
        key, sep, value = item.partition("=")
        stage, dot, setting = key.partition(".")
        if not sep or not dot:
            raise ValueError(f"override {item!r} must look like stage.setting=value")
        if stage not in preset or setting not in preset[stage]:
            known = ", ".join(f"{s}.{k}" for s in preset for k in preset[s])
            raise ValueError(f"unknown setting {key!r}; known settings: {known}")
        preset[stage][setting] = _checked(key, preset[stage][setting], _parse_value(value))
    sr = preset["superres"]  # a model that cannot make the scale is refused here, before any image is read
    resolve_models(sr["scale"], sr["models"])
    try:
        resolve_models(sr["scale"], sr["bitonal_models"], BITONAL_DEFAULTS)
    except ValueError as exc:
        raise ValueError(f"superres.bitonal_models: {exc}") from None
    return preset


def _choices(key: str) -> tuple[Any, ...] | None:
    """The values a worded setting takes, from where each is defined. A value outside them
    failed every image later, as an internal error (``denoise.strength=bogus``: KeyError
    'bogus'). The chain's modules are imported only here, when an override is checked: the
    DAG file reads ``PRESETS`` when it is parsed, and must not load torch for it."""
    if key == "denoise.strength":
        from .denoise import STRENGTH_FACTOR

        return ("auto", "off", *STRENGTH_FACTOR)
    if key == "colour_space.target":
        from .icc import SPACES

        return (None, *SPACES)
    return {"colour_restore.mode": ("auto", "on", "off"), "inference.precision": PRECISIONS,
            "superres.scale": SCALES}.get(key)


def _checked(key: str, default: Any, value: Any) -> Any:
    """An override's value, refused by name where the chain could not use it."""
    if choices := _choices(key):
        if value not in choices:
            raise ValueError(f"{key}={json.dumps(value)}: choose one of {', '.join(map(json.dumps, choices))}")
    elif isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{key}={json.dumps(value)}: true or false")
    elif isinstance(default, list):
        if not (isinstance(value, list) and all(isinstance(item, str) for item in value)):
            raise ValueError(f'{key}={json.dumps(value)}: a list of names, such as ["span-x2"]')
    elif isinstance(default, (int, float)) or key == "denoise.sigma":  # sigma: null (measured) or a number
        if value is None and default is None:
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"{key}={json.dumps(value)}: a number")
        if value < 0 and not key.startswith("lens.k"):  # the lens coefficients are signed
            raise ValueError(f"{key}={json.dumps(value)}: a number of 0 or more")
        if key.endswith(".blend") and value > 1:
            raise ValueError(f"{key}={json.dumps(value)}: the share of the stage's change kept, from 0 to 1")
    return value
