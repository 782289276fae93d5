"""A preset's own networks at the scale it was made for, in a nightly run and on the command line."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from conftest import run_night

from enhance_ops.airflow import tasks
from enhance_ops.catalog import Catalog
from enhance_ops.chain.presets import scale_overrides
from enhance_ops.cli import main
from enhance_ops.samples import photo_crops
from enhance_ops.storage import S3Store

DAY = dt.date(2026, 11, 21)


def test_a_scale_keeps_the_presets_networks_where_they_make_it_else_takes_the_scales() -> None:
    assert scale_overrides(4, preset="fidelity") == ["superres.scale=4"]  # SPAN x4
    assert scale_overrides(2, preset="fidelity") == ["superres.scale=2", 'superres.models=["span-x2"]']
    assert scale_overrides(8, preset="document-scan") == ["superres.scale=8", 'superres.models=["span-x4", "span-x2"]']
    assert scale_overrides(8, preset="fast-cpu") == [  # its own, then the x2 default: not Real-ESRGAN's x4
        "superres.scale=8", 'superres.models=["realesr-animevideov3-x4", "span-x2"]']
    assert scale_overrides(2, preset="fast-cpu") == ["superres.scale=2", "superres.models=[]"]  # the scale's own
    assert scale_overrides(8, preset="archive-photo") == ["superres.scale=8", "superres.models=[]"]
    assert scale_overrides(4, ["span-x2", "span-x2"], "fidelity")[1] == 'superres.models=["span-x2", "span-x2"]'


@pytest.mark.parametrize(("preset", "network"), [("fidelity", "span-x4"), ("fast-cpu", "realesr-animevideov3-x4")])
def test_a_nightly_run_enlarges_with_the_presets_own_network(preset: str, network: str, store: S3Store,
                                                            catalog: Catalog) -> None:
    """The nightly run always gives its scale (4 by default), and that had sent every preset's
    photographs to the scale's default, Real-ESRGAN: fast-cpu ran 20 times slower than it
    is made to, and fidelity redrew what it is made to keep."""
    store.put(f"incoming/{DAY}/{preset}.jpg", photo_crops(1, 24, "JPEG")[0])
    [row] = run_night(store, catalog, tasks.RunConfig(f"night-{preset}", DAY, preset=preset, scale=4))
    assert row["status"] == "ok" and list(row["models"]) == [network]


@pytest.mark.parametrize(("preset", "scale", "networks"), [
    ("fidelity", 4, ["span-x4"]), ("fast-cpu", 8, ["realesr-animevideov3-x4", "span-x2"])])
def test_the_command_line_scale_keeps_the_presets_network(preset: str, scale: int, networks: list[str],
                                                          tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "scan.jpg").write_bytes(photo_crops(1, 24, "JPEG")[0])
    args = ["enhance", str(folder), str(tmp_path / "out"), "--preset", preset, "--scale", str(scale), "--quiet"]
    assert main(args) == 0
    assert json.loads((tmp_path / "out" / "scan.jpg.json").read_text())["models"] == networks
