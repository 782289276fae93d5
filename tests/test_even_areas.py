"""Even areas for local contrast, found on cell maps."""
from __future__ import annotations

import numpy as np

from enhance_ops.chain import even_areas


def test_a_textured_image_has_no_even_area_and_a_card_is_one() -> None:
    rng = np.random.default_rng(3)
    textured = (rng.random((40, 40)) * 255).astype(np.uint8)
    assert even_areas.find(textured, textured, 16, (320, 320)) is None
    card = np.full((40, 40), 200, np.uint8)
    card[10:30, 10:30] = textured[10:30, 10:30]
    equalised = np.clip(card.astype(np.int16) + np.arange(40)[None, :] // 4, 0, 255).astype(np.uint8)  # a slope across it
    found = even_areas.find(card, equalised, 16, (320, 320))
    assert found is not None and 0.3 < found.fraction < 0.8
    on_card = found.weight == 1
    assert np.ptp(found.change[on_card]) == 0  # one value, the mean of the change over the card
    assert abs(float(found.change[on_card][0]) * 255 - (equalised - card.astype(np.int16))[card == 200].mean()) < 1.5
