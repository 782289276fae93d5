"""Percentiles by single-position partitions: numpy's values, without its slow multi-position path."""
from __future__ import annotations

import numpy as np
import pytest

from enhance_ops.chain.quantiles import median, percentiles

QS = [0, 0.2, 0.5, 1, 25, 50, 75, 95, 99, 99.5, 100]


@pytest.mark.parametrize("size", [1, 2, 3, 4, 7, 100, 4097, 100_001])
@pytest.mark.parametrize("kind", ["random", "few levels", "sorted", "reversed", "constant"])
def test_the_same_values_as_numpy(size: int, kind: str) -> None:
    rng = np.random.default_rng(size)
    values = rng.random(size, dtype=np.float32)
    values = {
        "random": values,
        "few levels": np.round(values * 4) / 4,  # many ties, straddling each percentile
        "sorted": np.sort(values),
        "reversed": np.sort(values)[::-1].copy(),
        "constant": np.full(size, 0.3, np.float32),
    }[kind]
    np.testing.assert_allclose(percentiles(values, QS), np.percentile(values, QS), rtol=0, atol=1e-7)
    assert median(values) == pytest.approx(float(np.median(values)), abs=1e-7)


def test_images_of_any_shape_and_order_of_percentiles() -> None:
    image = np.random.default_rng(3).random((37, 53, 3))
    image = image[:, ::-1]  # not contiguous
    qs = [99, 1, 50]
    np.testing.assert_allclose(percentiles(image, qs), np.percentile(image, qs), rtol=0, atol=1e-12)


def test_the_input_is_left_as_it_was() -> None:
    values = np.random.default_rng(4).random(1000)
    kept = values.copy()
    percentiles(values, QS)
    assert np.array_equal(values, kept)


def test_an_empty_array_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        percentiles(np.zeros(0), [50])
