"""Each super-resolution network as an ONNX file that onnxruntime runs as torch does, at any size."""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

from enhance_ops.cli import main
from enhance_ops.models import onnx_export
from enhance_ops.models.manifest import get_entry, load_manifest
from enhance_ops.models.weights import load_model

SUPER_RESOLUTION = sorted(name for name, entry in load_manifest().items() if entry.task == "super-resolution")


@pytest.mark.parametrize("name", SUPER_RESOLUTION)
def test_the_export_agrees_with_torch_at_another_size_and_names_its_weights(name: str, tmp_path: Path) -> None:
    done = onnx_export.export(name, tmp_path / f"{name}.onnx")
    assert done.agreement_db >= onnx_export.MIN_AGREEMENT_DB
    entry = get_entry(name)
    props = {p.key: p.value for p in onnx.load(str(done.path)).metadata_props}
    assert props["weights_sha256"] == entry.sha256 and props["scale"] == str(entry.scale)
    assert props["model"] == name and props["weights_licence"] == entry.licence["weights"]
    # a third size, a tile's edge: one file serves every tile
    image = np.random.default_rng(0).random((1, 3, 20, 33), dtype=np.float32)
    session = onnxruntime.InferenceSession(str(done.path), providers=["CPUExecutionProvider"])
    assert session.run(None, {onnx_export.INPUT: image})[0].shape == (1, 3, 20 * entry.scale, 33 * entry.scale)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{name}.onnx"]  # nothing unchecked left beside it


def test_the_check_tells_a_file_that_is_not_the_network(tmp_path: Path) -> None:
    """The agreement is what keeps a wrong export out: one layer's weights 1 % off fall far under it."""
    model = load_model("span-x2")
    done = onnx_export.export("span-x2", tmp_path / "span.onnx", copy.deepcopy(model))
    assert onnx_export.agreement_db(model, done.path) >= onnx_export.MIN_AGREEMENT_DB
    with torch.no_grad():
        model.conv_cat.weight.mul_(1.01)
    assert onnx_export.agreement_db(model, done.path) < 60


def test_a_network_other_than_super_resolution_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="ffdnet-color is a denoise model"):
        onnx_export.export("ffdnet-color", tmp_path / "f.onnx")
    assert not any(tmp_path.iterdir())


def test_the_command_writes_the_file_and_keeps_one_already_there(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "span.onnx"
    assert main(["export-onnx", "span-x2", str(path)]) == 0
    assert "onnxruntime agrees with torch" in capsys.readouterr().out
    written = path.read_bytes()
    assert main(["export-onnx", "span-x4", str(path)]) == 2
    assert "exists; --overwrite replaces it" in capsys.readouterr().err and path.read_bytes() == written
    assert main(["export-onnx", "span-x4", str(path), "--overwrite"]) == 0 and path.read_bytes() != written
