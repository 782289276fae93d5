"""Colour under full transparency is filled from the visible colours, so no enlargement
spreads it into the visible edge of a cut-out object."""
from __future__ import annotations

import numpy as np
from conftest import photo

from enhance_ops.chain import hidden_colour, pipeline


def cut_out() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A photographed object on a transparent ground, black under the transparency as most
    writers leave it: (its true colours, the colours as stored, the alpha)."""
    true = photo("astronaut", 128, top=100, left=150)
    alpha = np.zeros((128, 128), np.float32)
    alpha[24:104, 24:104] = 1.0
    stored = true.copy()
    stored[alpha == 0] = 0.0
    return true, stored, alpha


def test_a_cut_out_object_keeps_its_colour_along_its_edge() -> None:
    """The enlarged alpha makes the edge's pixels partly opaque; their colour had been part
    black (0.13 against the object's 0.36 on this crop), a dark outline on any background."""
    true, stored, alpha = cut_out()
    result = pipeline.Chain("fidelity", ("superres.scale=2", "superres.models=[]")).run(stored, alpha)
    edge = (result.alpha > 0.02) & (result.alpha < 0.98)
    enlarged = np.repeat(np.repeat(true, 2, axis=0), 2, axis=1)
    assert edge.sum() > 1000
    assert abs(float(result.pixels[edge].mean()) - float(enlarged[edge].mean())) < 0.02
    record = next(r for r in result.stages if r.stage == "hidden_colour")
    assert record.details == {"filled_px": int((alpha == 0).sum())}


def test_only_fully_transparent_pixels_change() -> None:
    true, stored, alpha = cut_out()
    alpha[24:104, 24] = 0.5  # the object's first column partly transparent: seen, so kept
    colour = stored.copy()
    assert hidden_colour.fill(colour, alpha) == int((alpha == 0).sum())
    seen = alpha > 0
    np.testing.assert_array_equal(colour[seen], stored[seen])
    assert np.isfinite(colour).all()
    beside = np.abs(colour[24:104, 23] - stored[24:104, 24]).mean()  # just outside the edge: near the edge's colours
    black = np.abs(stored[24:104, 23] - stored[24:104, 24]).mean()
    assert beside < black / 2, (beside, black)


def test_an_image_without_hidden_pixels_is_left_alone() -> None:
    true, _, _ = cut_out()
    for alpha in (np.ones((128, 128), np.float32), np.zeros((128, 128), np.float32)):
        colour = true.copy()
        assert hidden_colour.fill(colour, alpha) == 0
        np.testing.assert_array_equal(colour, true)
    chain = pipeline.Chain("fidelity", ("superres.scale=2", "superres.models=[]"))
    result = chain.run(true.copy(), np.ones((128, 128), np.float32))
    assert "hidden_colour" not in [r.stage for r in result.stages]
