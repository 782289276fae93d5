from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

PROJECT = Path(__file__).resolve().parents[1]
SHARED = PROJECT.parent / "shared"


def photo(name: str, size: int | None = None, top: int = 0, left: int = 0) -> np.ndarray:
    """A crop of a real photograph from scikit-image's bundled data, float32 RGB in [0, 1]."""
    rgb = getattr(skdata, name)().astype(np.float32) / 255.0
    if size is not None:
        rgb = rgb[top : top + size, left : left + size]
    return np.ascontiguousarray(rgb)


def shrink(rgb: np.ndarray, factor: int) -> np.ndarray:
    """Antialiased bicubic downscale (Pillow), the degradation PSNR-oriented SR models expect."""
    h, w = rgb.shape[:2]
    im = Image.fromarray((rgb * 255 + 0.5).astype(np.uint8)).resize((w // factor, h // factor), Image.BICUBIC)
    return np.asarray(im, dtype=np.float32) / 255.0


def enlarge_bicubic(rgb: np.ndarray, factor: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    im = Image.fromarray((rgb * 255 + 0.5).astype(np.uint8)).resize((w * factor, h * factor), Image.BICUBIC)
    return np.asarray(im, dtype=np.float32) / 255.0


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


def save(array: np.ndarray, fmt: str, **options: object) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, fmt, **options)
    return buf.getvalue()


@pytest.fixture(scope="session")
def cat() -> np.ndarray:
    return photo("chelsea", 64, top=60, left=150)
