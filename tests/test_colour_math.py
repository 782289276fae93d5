"""The sRGB curve and CIE Lab, against their published definitions evaluated in float64."""
from __future__ import annotations

import numpy as np
from conftest import photo

from enhance_ops.chain.colour_math import lab_to_srgb, lightness, linear_to_srgb, srgb_to_lab

SIXTEEN_BIT_LEVEL = 1 / 65535
# IEC 61966-2-1: linear sRGB → CIE XYZ, D65 white
RGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750],
                       [0.0193339, 0.1191920, 0.9503041]])
D65 = np.array([0.95047, 1.0, 1.08883])


def _encoded(linear: np.ndarray) -> np.ndarray:
    x = np.clip(linear.astype(np.float64), 0, 1)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * x ** (1 / 2.4) - 0.055)


def _srgb_of_lab(lab: np.ndarray) -> np.ndarray:
    lab = lab.astype(np.float64)
    fy = (lab[..., 0] + 16) / 116
    f = np.stack([fy + lab[..., 1] / 500, fy, fy - lab[..., 2] / 200], axis=-1)
    delta = 6 / 29
    relative = np.where(f > delta, f**3, 3 * delta**2 * (f - 4 / 29))
    return _encoded((relative * D65) @ np.linalg.inv(RGB_TO_XYZ).T)


def test_lab_to_srgb_follows_the_cie_formula() -> None:
    """Over all of Lab, the dark end (L* < 8, where the formula is linear) included."""
    rng = np.random.default_rng(3)
    n = 200_000
    lab = np.stack([rng.uniform(0, 100, n), rng.uniform(-128, 127, n), rng.uniform(-128, 127, n)], axis=-1)
    dark = np.stack([rng.uniform(0, 8, n), rng.uniform(-20, 20, n), rng.uniform(-20, 20, n)], axis=-1)
    for sample in (lab, dark):
        sample = sample.astype(np.float32).reshape(400, 500, 3)
        out = lab_to_srgb(sample)
        assert out.shape == sample.shape and out.dtype == np.float32
        assert np.abs(out - _srgb_of_lab(sample)).max() < 2e-5


def test_srgb_round_trips_through_lab_within_two_16_bit_levels() -> None:
    """Local contrast and colour restoration go to Lab and back: where they change nothing,
    a 16-bit master must come back as it was."""
    ramp = np.repeat(np.linspace(0, 1, 4096, dtype=np.float32)[:, None], 3, axis=1)
    primaries = np.eye(3, dtype=np.float32) * np.linspace(0.01, 1, 64, dtype=np.float32)[:, None, None]
    for image in (photo("coffee"), ramp[None], primaries):
        assert np.abs(lab_to_srgb(srgb_to_lab(image)) - image).max() < 2 * SIXTEEN_BIT_LEVEL


def test_linear_to_srgb_is_the_curve_within_a_16_bit_level() -> None:
    linear = np.linspace(-0.5, 1.5, 1_000_001, dtype=np.float32)
    encoded = linear_to_srgb(linear)
    assert encoded.dtype == np.float32 and encoded.shape == linear.shape
    assert np.abs(encoded - _encoded(linear)).max() < 0.75 * SIXTEEN_BIT_LEVEL
    assert linear_to_srgb(np.array([-1.0, 0.0, 1.0, 2.0], np.float32)).tolist() == [0.0, 0.0, 1.0, 1.0]
    assert linear_to_srgb(np.zeros((0, 3), np.float32)).shape == (0, 3)


def test_an_image_of_a_pixel_or_two_converts_as_a_larger_one_does() -> None:
    """OpenCV reads an array of four values or fewer as a scalar; a one-pixel image had failed."""
    image = photo("coffee")[:4, :4]
    image[0, 0] = (0.001, 0.002, 0.001)  # on Lab's linear segment near black
    for pixels in (image[:1, :1], image[:1, :2], image[:2, :1]):
        rows, cols = pixels.shape[:2]
        assert np.allclose(lightness(pixels), lightness(image)[:rows, :cols], atol=1e-7)
        assert np.allclose(srgb_to_lab(pixels), srgb_to_lab(image)[:rows, :cols], atol=1e-5)
        assert np.allclose(lab_to_srgb(srgb_to_lab(pixels)), lab_to_srgb(srgb_to_lab(image))[:rows, :cols], atol=1e-6)
