"""A grey or colour page of text is told from a photograph, and goes to the fidelity network."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data as skdata

from enhance_ops.chain import pipeline
from enhance_ops.chain.text_page import STROKE_PX, look, text_page
from enhance_ops.samples import microfilm_negative, typed_page


def grey(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float32)[..., None] / 255


def half(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    return cv2.resize(image, (w // 2, h // 2), interpolation=cv2.INTER_AREA).reshape(h // 2, w // 2, -1)


PAGES = {
    "scikit-image's page": lambda: grey(skdata.page()),
    "scikit-image's handwriting": lambda: grey(skdata.text()),
    "typed page": lambda: typed_page(),
    "yellowed, unevenly lit page": lambda: typed_page(yellowed=True, uneven=1.0, seed=1),
    "small type": lambda: typed_page(12, seed=2),
    "large type": lambda: typed_page(48, seed=3),
}
# Every photograph scikit-image ships without a download, cats to galaxies and micrographs.
PHOTOS = ("astronaut", "camera", "coffee", "chelsea", "rocket", "coins", "moon", "hubble_deep_field",
          "immunohistochemistry", "retina", "clock", "brick", "grass", "gravel", "colorwheel", "logo", "cell",
          "microaneurysms")


def photograph(name: str) -> np.ndarray:
    image = getattr(skdata, name)()
    image = image[..., :3] if image.ndim == 3 else image[..., None]
    return image.astype(np.float32) / float(np.iinfo(image.dtype).max if image.dtype.kind in "ui" else image.max())


@pytest.mark.parametrize("name", PAGES)
def test_a_page_of_text_reads_as_one_at_its_size_and_at_half(name: str) -> None:
    page = PAGES[name]()
    for image in (page, half(page)):
        found = text_page(image)
        assert found is not None and found.is_text(), look(image)


@pytest.mark.parametrize("name", PAGES)
def test_a_negative_of_a_page_reads_as_one(name: str) -> None:
    """Off negative microfilm (dense grey paper, clear ink, grain), and a plain inverse."""
    page = PAGES[name]()
    for negative in (microfilm_negative(page), 1.0 - page):
        assert look(negative).is_text() is False
        for image in (negative, half(negative)):
            found = text_page(image)
            assert found is not None and found.negative, look(image, negative=True)


@pytest.mark.parametrize("name", PHOTOS)
def test_a_photograph_does_not_read_as_a_page(name: str) -> None:
    image = photograph(name)
    for scaled in (image, half(image)):
        assert text_page(scaled) is None, (name, scaled.shape, look(scaled), look(scaled, negative=True))


# Whose inverse reads as a page (docs/chain.md, *Known limits*): the cat's whiskers and light fur
# become dark thin strokes on a lighter ground (64 % paper, as dense print has read as a negative);
# the deep field's stars, at 500 px, dark dots on white; the logo is a graphic with lettering.
NEGATIVES_READ_AS_PAGES = ("chelsea", "hubble_deep_field", "logo")


@pytest.mark.parametrize("name", [n for n in PHOTOS if n not in NEGATIVES_READ_AS_PAGES])
def test_the_negative_of_a_photograph_does_not_read_as_a_page(name: str) -> None:
    """A photograph's inverse is what a scan of its negative gives; read as a negative it is
    the photograph again."""
    image = 1.0 - photograph(name)
    for scaled in (image, half(image)):
        assert text_page(scaled) is None, (name, scaled.shape, look(scaled), look(scaled, negative=True))


def test_a_close_scan_of_handwriting_is_read_again_at_half_size_where_its_strokes_are_thin() -> None:
    """At 640 px scikit-image's handwriting has strokes wider than STROKE_PX; halved, it reads as text."""
    text = skdata.text()
    close = grey(cv2.resize(text, (text.shape[1] * 640 // text.shape[0], 640), interpolation=cv2.INTER_CUBIC))
    first = look(close)
    assert not first.is_text() and first.thin < 0.8
    found = text_page(close)
    assert found is not None and found.side == first.side // 2


def test_an_image_too_small_to_tell_is_not_a_page() -> None:
    assert text_page(grey(skdata.page())[:15, :100]) is None
    assert STROKE_PX < 15


def test_a_grey_page_of_text_goes_to_span_where_the_preset_runs_real_esrgan() -> None:
    """Real-ESRGAN redrew the letters of a grey page of print (22.9 dB consistency at 640 px, held by
    the gate); SPAN kept them (41.3 dB). A photograph in the same run stays with Real-ESRGAN."""
    chain = pipeline.Chain("archive-photo")
    page = chain.run(grey(skdata.page()))
    record = next(r for r in page.stages if r.stage == "superres")
    assert page.models == ("span-x4",) and record.details["text_page"]["marks"] >= 20
    assert "in place of realesrgan-x4plus, which would redraw its letters: read as a page of text" in record.decision
    assert page.metrics["consistency_psnr_db"] > 35
    photo = chain.run(photograph("camera")[100:196, 200:296])
    assert photo.models == ("realesrgan-x4plus",)
    assert "text_page" not in next(r for r in photo.stages if r.stage == "superres").details


def test_a_microfilm_negative_of_a_page_goes_to_span_as_it_is() -> None:
    """Through Real-ESRGAN such a page measured 25.1 dB consistency and was held; SPAN, 43.5 dB.
    The derivative stays a negative: which way to print it is the archive's call."""
    film = microfilm_negative(typed_page(seed=4))[200:456, 100:356]
    result = pipeline.Chain("archive-photo").run(film.copy())
    record = next(r for r in result.stages if r.stage == "superres")
    assert result.models == ("span-x4",) and record.details["text_page"]["negative"] is True
    assert "read as a negative of a page of text" in record.decision
    assert result.metrics["consistency_psnr_db"] > 35
    assert np.median(result.pixels) < 0.5 < np.percentile(result.pixels, 99.5)  # dark ground, light ink


def test_text_pages_false_keeps_a_page_with_the_presets_models() -> None:
    chain = pipeline.Chain("fast-cpu", ("superres.text_pages=false",))
    page = chain.run(grey(skdata.page()))
    record = next(r for r in page.stages if r.stage == "superres")
    assert page.models == chain.model_names != ("span-x4",) and "text_page" not in record.details
