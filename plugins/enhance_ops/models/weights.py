"""Load a model's converted weights, only if they are exactly the file the manifest names."""
from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torch import nn

from ..errors import WeightsError
from . import float_ends
from .manifest import ModelEntry, get_entry
from .registry import build_arch

FIX = "run `make weights` (or `python -m enhance_ops fetch-models`) to fetch and convert them"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verified_state_dict(entry: ModelEntry) -> dict[str, torch.Tensor]:
    if not entry.path.is_file():
        raise WeightsError(f"weights for {entry.name} not found at {entry.path}: {FIX}")
    actual = sha256_file(entry.path)
    if actual != entry.sha256:
        raise WeightsError(
            f"weights file {entry.path} has sha256 {actual}, the manifest expects {entry.sha256}: "
            f"the file is damaged or was replaced; delete it and {FIX}"
        )
    return torch.load(entry.path, map_location="cpu", weights_only=True)


def build_model(entry: ModelEntry, state: dict[str, torch.Tensor]) -> nn.Module:
    """The entry's network holding ``state`` (every parameter), in eval mode."""
    model = build_arch(entry.arch, **entry.options)
    model.load_state_dict(state, strict=True)
    setattr(model, float_ends.FP32_INSIDE, entry.fp32_inside)
    return model.eval().requires_grad_(False)


def load_model(name: str, device: str | torch.device = "cpu") -> nn.Module:
    """The network named in the manifest, with verified weights, in eval mode."""
    entry = get_entry(name)
    return build_model(entry, verified_state_dict(entry)).to(device)
