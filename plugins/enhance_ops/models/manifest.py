"""The committed list of models (``include/models/manifest.json``) and where their weights live."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[3]
MANIFEST_PATH = PROJECT_ROOT / "include" / "models" / "manifest.json"


def models_dir() -> Path:
    """Converted weights: ``$ENHANCE_MODELS_DIR`` or ``include/models/weights`` (never committed)."""
    return Path(os.environ.get("ENHANCE_MODELS_DIR", PROJECT_ROOT / "include" / "models" / "weights"))


def sources_dir() -> Path:
    """The original files as shipped in their packages, kept for cross-checks."""
    return models_dir() / "sources"


@dataclass(frozen=True)
class Source:
    package: str
    version: str
    format: str
    files: tuple[str, ...]
    sha256: dict[str, str]

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


@dataclass(frozen=True)
class ModelEntry:
    name: str
    arch: str
    options: dict[str, Any]
    task: str
    scale: int
    description: str
    source: Source
    licence: dict[str, str]
    upstream: str
    sha256: str
    tile_context: int = 32  # input pixels of context a tile needs for tiled = untiled (measured per model)
    tile_overlap: int = 16  # input pixels neighbouring tiles cross-fade over (0: the context suffices)
    bitonal_sigma: float = 0.0  # a black-and-white input is smoothed by this Gaussian first (0: not)
    fp32_inside: tuple[str, ...] = ()  # convolutions kept fp32 in a bf16 model besides its ends (float_ends)

    @property
    def path(self) -> Path:
        return models_dir() / f"{self.name}.pth"

    def source_path(self, file: str) -> Path:
        return sources_dir() / self.source.package / file


@lru_cache(maxsize=1)
def load_manifest() -> dict[str, ModelEntry]:
    raw = json.loads(MANIFEST_PATH.read_text())
    entries = {}
    for name, item in raw["models"].items():
        src = item["source"]
        source = Source(src["package"], src["version"], src["format"], tuple(src["files"]), dict(src["sha256"]))
        entries[name] = ModelEntry(
            name=name,
            arch=item["arch"],
            options=dict(item.get("options", {})),
            task=item["task"],
            scale=int(item.get("scale", 1)),
            description=item["description"],
            source=source,
            licence=dict(item["licence"]),
            upstream=item["upstream"],
            sha256=item["sha256"],
            tile_context=int(item.get("tile_context", ModelEntry.tile_context)),
            tile_overlap=int(item.get("tile_overlap", ModelEntry.tile_overlap)),
            bitonal_sigma=float(item.get("bitonal_sigma", ModelEntry.bitonal_sigma)),
            fp32_inside=tuple(item.get("fp32_inside", ())),
        )
    return entries


def get_entry(name: str) -> ModelEntry:
    entries = load_manifest()
    if name not in entries:
        raise KeyError(f"unknown model {name!r}; the manifest lists: {', '.join(sorted(entries))}")
    return entries[name]
