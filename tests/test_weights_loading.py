"""Weights load only when they are exactly the manifest's file, and never run code."""
from __future__ import annotations

import dataclasses
import os
import pickle
import shutil
from pathlib import Path

import pytest
import torch

from enhance_ops.errors import WeightsError
from enhance_ops.models import manifest, weights
from enhance_ops.models.convert import load_numpy_pickle
from enhance_ops.models.manifest import get_entry


@pytest.fixture()
def models_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private models folder holding a copy of span-x2, so tests can damage it freely."""
    shutil.copy(get_entry("span-x2").path, tmp_path / "span-x2.pth")
    monkeypatch.setenv("ENHANCE_MODELS_DIR", str(tmp_path))
    return tmp_path


def test_loads_and_verifies_a_model(models_copy: Path) -> None:
    model = weights.load_model("span-x2")
    assert not model.training
    assert all(not p.requires_grad for p in model.parameters())


def test_missing_weights_name_the_fix(models_copy: Path) -> None:
    (models_copy / "span-x2.pth").unlink()
    with pytest.raises(WeightsError, match=r"not found at .*span-x2\.pth.*make weights"):
        weights.load_model("span-x2")


def test_tampered_weights_are_refused(models_copy: Path) -> None:
    path = models_copy / "span-x2.pth"
    state = torch.load(path, weights_only=True)
    next(iter(state.values())).add_(0.01)
    torch.save(state, path)
    with pytest.raises(WeightsError, match=r"sha256 .* the manifest expects .*damaged or was replaced"):
        weights.load_model("span-x2")


class _Exploit:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("echo pwned",))


def test_a_file_with_code_is_refused_even_if_its_hash_were_listed(
    models_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = models_copy / "span-x2.pth"
    torch.save({"payload": _Exploit()}, path)
    entry = dataclasses.replace(get_entry("span-x2"), sha256=weights.sha256_file(path))
    monkeypatch.setattr(weights, "get_entry", lambda name: entry)
    with pytest.raises(pickle.UnpicklingError):
        weights.load_model("span-x2")


def test_lpips_pickles_admit_numpy_arrays_only(tmp_path: Path) -> None:
    path = tmp_path / "evil.ckpt"
    path.write_bytes(pickle.dumps({"x": _Exploit()}))
    with pytest.raises(pickle.UnpicklingError, match="refusing to load posix.system"):
        load_numpy_pickle(path)


def test_unknown_model_lists_the_known_ones() -> None:
    with pytest.raises(KeyError, match="realesrgan-x4plus"):
        manifest.get_entry("esrgan-x16")


def test_manifest_records_source_licence_and_hashes() -> None:
    for entry in manifest.load_manifest().values():
        assert len(entry.sha256) == 64
        assert set(entry.source.sha256) == set(entry.source.files)
        assert entry.licence["weights"] and entry.licence["package"]
        assert entry.source.version and entry.upstream.startswith("https://")
