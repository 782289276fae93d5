from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from enhance_ops.models.ncnn_reader import TAG_FP16, NcnnFormatError, read_weights

PARAM = """7767517
3 3
Input            in0   0 1 data
Convolution      conv0 1 1 data c0 0=2 1=1 5=1 6=6
PReLU            act0  1 1 c0 output 0=2
"""


def _write(tmp_path: Path, param: str, binary: bytes) -> tuple[Path, Path]:
    (tmp_path / "m.param").write_text(param)
    (tmp_path / "m.bin").write_bytes(binary)
    return tmp_path / "m.param", tmp_path / "m.bin"


def _valid_bin() -> bytes:
    weight = np.arange(6, dtype=np.float16).tobytes()  # 12 bytes, already 4-aligned
    return struct.pack("<I", TAG_FP16) + weight + np.array([0.5, -0.5], "<f4").tobytes() + np.ones(2, "<f4").tobytes()


def test_reads_fp16_weights_fp32_bias_and_prelu(tmp_path: Path) -> None:
    conv, prelu = read_weights(*_write(tmp_path, PARAM, _valid_bin()))
    assert conv.arrays["weight"].shape == (2, 3, 1, 1)
    assert conv.arrays["weight"].ravel().tolist() == [0, 1, 2, 3, 4, 5]
    assert conv.arrays["bias"].tolist() == [0.5, -0.5]
    assert prelu.arrays["weight"].tolist() == [1.0, 1.0]


def test_bad_magic(tmp_path: Path) -> None:
    with pytest.raises(NcnnFormatError, match="magic"):
        read_weights(*_write(tmp_path, PARAM.replace("7767517", "123"), _valid_bin()))


def test_short_bin(tmp_path: Path) -> None:
    with pytest.raises(NcnnFormatError, match="ends early"):
        read_weights(*_write(tmp_path, PARAM, _valid_bin()[:-3]))


def test_bin_with_extra_bytes(tmp_path: Path) -> None:
    with pytest.raises(NcnnFormatError, match="bytes left"):
        read_weights(*_write(tmp_path, PARAM, _valid_bin() + b"\0" * 8))


def test_quantised_weights_are_refused(tmp_path: Path) -> None:
    data = struct.pack("<I", 0x000D4B38) + _valid_bin()[4:]
    with pytest.raises(NcnnFormatError, match="storage tag"):
        read_weights(*_write(tmp_path, PARAM, data))
