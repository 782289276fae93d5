"""The even areas' cell maps, read at the image's own resolution strip by strip."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from enhance_ops.chain import even_areas


@pytest.mark.parametrize(("top", "height"), [(0, 13), (5, 20), (37, 11), (60, 4)])
def test_a_strips_rows_are_the_maps_resized_as_a_whole(top: int, height: int) -> None:
    """As ``cv2.resize`` by the cell size places them, the columns past the last whole cell held."""
    cells = np.random.default_rng(2).random((8, 7), dtype=np.float32)
    whole = cv2.resize(cells, (7 * even_areas.CELL, 8 * even_areas.CELL), interpolation=cv2.INTER_LINEAR)
    width = 7 * even_areas.CELL + 5
    rows = even_areas._rows(cells, top, height, width)
    assert rows.shape == (height, width) and rows.dtype == np.float32
    assert np.allclose(rows[:, : whole.shape[1]], whole[top : top + height], atol=1e-6)
    assert np.array_equal(rows[:, whole.shape[1] :], np.repeat(rows[:, whole.shape[1] - 1 : whole.shape[1]], 5, 1))


def test_a_textured_image_has_no_even_area_and_a_card_is_one() -> None:
    rng = np.random.default_rng(3)
    textured = (rng.random((40, 40)) * 255).astype(np.uint8)
    assert even_areas.find(textured, textured, tile_cells=16) is None
    card = np.full((40, 40), 200, np.uint8)
    card[10:30, 10:30] = textured[10:30, 10:30]
    equalised = np.clip(card.astype(np.int16) + np.arange(40)[None, :] // 4, 0, 255).astype(np.uint8)  # a slope across it
    found = even_areas.find(card, equalised, tile_cells=16)
    assert found is not None and 0.3 < found.fraction < 0.8
    on_card = found.weight == 1
    assert np.ptp(found.change[on_card]) == 0  # one value, the mean of the change over the card
    assert abs(float(found.change[on_card][0]) * 255 - (equalised - card.astype(np.int16))[card == 200].mean()) < 1.5
