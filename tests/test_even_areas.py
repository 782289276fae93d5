"""Even areas for local contrast, found on cell maps."""
from __future__ import annotations

import numpy as np

from enhance_ops.chain import even_areas

SIZE = (320, 320)  # the image the 40 x 40 cells stand for


def _card_around_texture() -> tuple[np.ndarray, np.ndarray]:
    """Cells of a card at 200/255 around a textured print, and CLAHE's result, which lifts
    the card by a slope across it (its tiles' curves)."""
    rng = np.random.default_rng(3)
    card = np.full((40, 40), 200, np.uint8)
    card[10:30, 10:30] = (rng.random((20, 20)) * 255).astype(np.uint8)
    equalised = np.clip(card.astype(np.int16) + np.arange(40)[None, :] // 4, 0, 255).astype(np.uint8)
    return card, equalised


def test_a_textured_image_has_no_even_area() -> None:
    textured = (np.random.default_rng(3).random((40, 40)) * 255).astype(np.uint8)
    assert even_areas.find(textured, textured, 16, SIZE) is None


def test_a_card_takes_the_mean_of_its_change_at_its_level() -> None:
    card, equalised = _card_around_texture()
    found = even_areas.find(card, equalised, 16, SIZE)
    assert found is not None and 0.3 < found.fraction < 0.8
    assert np.all(found.weight[:5] == 1) and np.all(found.weight[18:22, 18:22] == 0)
    mean_change = float((equalised - card.astype(np.int16))[card == 200].mean())
    assert abs(float(found.curve[200]) * 255 - mean_change) < 1.0


def test_the_maps_move_little_with_the_pixels() -> None:
    """A network's precision moves its output by a fraction of a level; the maps must not
    jump with it (as connected components of a thresholded map did, each with its own mean)."""
    card, equalised = _card_around_texture()
    rng = np.random.default_rng(4)
    base = even_areas.find(card, equalised, 16, SIZE)
    nudge = rng.integers(-1, 2, card.shape)  # a level either way, here and there
    moved = even_areas.find(np.clip(card + nudge, 0, 255).astype(np.uint8), equalised, 16, SIZE)
    assert base is not None and moved is not None
    assert np.abs(moved.weight - base.weight).max() < 0.45
    assert abs(float(moved.curve[200] - base.curve[200])) * 255 < 0.5
