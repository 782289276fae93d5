"""Photoshop documents for tests, written by ImageMagick (Debian's package, which `make test`
installs), and copies of them changed where ImageMagick writes no such file: a merged image
matted on white as Photoshop stores a transparent one, a deflated one, and resources it does
not write (EXIF, XMP, IPTC, the version info)."""
from __future__ import annotations

import io
import shutil
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

import imagecodecs
import numpy as np
from PIL import Image

from enhance_ops import photoshop_resources


def imagemagick() -> str:
    """ImageMagick's command: Debian's ``convert`` may be shadowed by another of that name."""
    found = shutil.which("convert-im6.q16") or shutil.which("magick")
    if found is None:
        raise RuntimeError("ImageMagick is not installed: `make imagemagick` installs it (`make test` does)")
    return found


def written(samples: np.ndarray, *options: str, kind: str = "PSD") -> bytes:
    """``samples`` (H, W[, C], uint8 or uint16) as ImageMagick writes them to a ``kind``
    file (PSD or PSB) with ``options`` (``-compress RLE``, ``-colorspace CMYK`` …)."""
    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder, "in.png"), Path(folder, "out")
        source.write_bytes(imagecodecs.png_encode(samples))
        subprocess.run([imagemagick(), str(source), *options, f"{kind}:{target}"], check=True, capture_output=True,
                       timeout=60)
        return target.read_bytes()


def imagemagick_grey(grey: np.ndarray, *options: str) -> np.ndarray:
    """A grey image (uint8) as ImageMagick makes it with ``options`` (``-ordered-dither o8x8`` …),
    read back as float32 in [0, 1] with one channel."""
    with Image.open(io.BytesIO(written(grey, *options, kind="PNG"))) as made:
        return (np.asarray(made.convert("L"), np.float32) / 255)[..., None]


def layout(data: bytes) -> tuple[int, int, int, int, int]:
    """(resources' length field, its section's end, the merged image's compression word,
    channels, rows) of a document."""
    version, channels, height = struct.unpack_from(">H6xHI", data, 4)
    at = 26 + 4 + int.from_bytes(data[26:30], "big")
    resources_end = at + 4 + int.from_bytes(data[at:at + 4], "big")
    size = 4 if version == 1 else 8
    image_data = resources_end + size + int.from_bytes(data[resources_end:resources_end + size], "big")
    return at, resources_end, image_data, channels, height


def with_resources(data: bytes, *resources: photoshop_resources.Resource) -> bytes:
    """The document with ``resources`` after its own."""
    at, end, *_ = layout(data)
    blocks = b"".join(r.block() for r in resources)
    length = end - at - 4 + len(blocks)
    return data[:at] + struct.pack(">I", length) + data[at + 4:end] + blocks + data[end:]


def version_info(merged: bool) -> photoshop_resources.Resource:
    """Resource 1057 as Photoshop writes it: its hasRealMergedData says whether the merged image
    was saved ("Maximize Compatibility")."""
    name = "Adobe Photoshop".encode("utf-16-be")
    body = struct.pack(">IB", 1, merged) + struct.pack(">I", len(name) // 2) + name + struct.pack(">I", 0) + \
        struct.pack(">I", 1)
    return photoshop_resources.Resource(1057, b"\x00\x00", body)


def raw_planes(data: bytes) -> np.ndarray:
    """The merged image of a document ImageMagick wrote uncompressed, (channels, H, row bytes)."""
    _, _, image_data, channels, height = layout(data)
    width, depth = struct.unpack_from(">IH", data, 18)
    assert data[image_data:image_data + 2] == b"\x00\x00", "written with -compress None"
    size = channels * height * ((width * depth + 7) // 8)
    return np.frombuffer(data, np.uint8, size, image_data + 2).reshape(channels, height, -1).copy()


def row_zeroed(data: bytes, channel: int, row: int) -> bytes:
    """A run-length document with one row's PackBits data zeroed, as a bad sector leaves it."""
    _, _, image_data, channels, height = layout(data)
    counts = np.frombuffer(data, ">u2", channels * height, image_data + 2).astype(int)
    start = image_data + 2 + 2 * channels * height + int(counts[:channel * height + row].sum())
    end = start + int(counts[channel * height + row])
    return data[:start] + bytes(end - start) + data[end:]


def with_planes(data: bytes, planes: np.ndarray, compression: int = 0, depth: int = 8) -> bytes:
    """The document with its merged image replaced: raw (0), deflated (2) or deflated as
    differences along each row (3), as Photoshop's deflate options store it."""
    _, _, image_data, _, _ = layout(data)
    if compression == 3:
        rows = planes.view(">u2").astype(np.int64) if depth == 16 else planes.astype(np.int64)
        deltas = np.diff(rows, axis=2, prepend=0) % (1 << depth)
        planes = deltas.astype(">u2" if depth == 16 else np.uint8).view(np.uint8)
    body = planes.tobytes()
    return data[:image_data] + struct.pack(">H", compression) + (zlib.compress(body) if compression else body)
