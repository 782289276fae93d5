"""How much damage to a master's compressed pixel data ``damage.py`` finds, and what looking costs.

Each case is a real photo (scikit-image's astronaut, 512²; for the CCITT codings, its page of print,
2 × 2) in one format and layout; each trial changes its pixel data once (a random byte of a
JPEG's scan, a random bit of a TIFF's strips, a WebP's bitstream, a JPEG 2000 codestream or a
Photoshop document's merged image, which ImageMagick writes: bit rot) with a fixed seed and
reads the copy as a shard reads a master. Outcomes: refused (an error code, no derivative), found (``damage`` set: held for review), or not found, by
how far the decoded image is from the sound one. The cost is the check alone on a 16.8-Mpx
photo or an A4 page at 300 dpi against ``codecs.decode``, which includes it: on this machine's
strip lanes, where the check runs beside the decoder, and on one lane, where it runs after it;
medians of 5 interleaved rounds after a warm-up.

    .venv/bin/python bench/damage_found.py      # writes bench/results/damage_found.json
"""
from __future__ import annotations

import io
import logging
import random
import statistics
import sys
import warnings
from collections import Counter
from collections.abc import Callable

import numpy as np
import tifffile
from PIL import Image
from skimage import data as skdata

import lanes_runs
from cpu_inference import ROOT, cpu_name, save_results, without_options

sys.path.insert(0, str(ROOT / "tests"))
from hostile_corpus import scan_data  # noqa: E402  (the tests' damaged corpus locates a JPEG's scan the same way)
from photoshop_files import layout, written  # noqa: E402  (ImageMagick's documents, as the tests read them)

from enhance_ops import codecs, damage
from enhance_ops.errors import EnhanceError

TRIALS, VISIBLE = 200, 40  # levels of 255: "off by more than this" is a visible error
REPS = 5


def _tiff(rgb: np.ndarray, **options: object) -> bytes:
    buf = io.BytesIO()
    tifffile.imwrite(buf, rgb, photometric="rgb", metadata=None, **options)
    return buf.getvalue()


def _saved(fmt: str, **options: object) -> Callable[[np.ndarray], bytes]:
    def save(rgb: np.ndarray) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, fmt, **options)
        return buf.getvalue()

    return save


def _bitonal(compression: str, **tags: int) -> Callable[[np.ndarray], bytes]:
    """A bitonal page of print (scikit-image's, 2 × 2), as document scanners (Group 4) or fax
    software (Group 3, Modified Huffman) store one; ``tags`` by number, as ``t292`` for T4Options."""
    tiffinfo = {int(name[1:]): value for name, value in tags.items()}
    return lambda _: _saved("TIFF", compression=compression, tiffinfo=tiffinfo)(np.tile(skdata.page() > 128, (2, 2)))


def _webp_bitstream(data: bytes) -> slice:
    return slice(20, len(data))  # past the RIFF header and the VP8/VP8L chunk's own


def _codestream(data: bytes) -> slice:
    return slice(data.index(b"\xff\x93") + 2, data.rindex(b"\xff\xd9"))  # from the first tile's SOD to EOC


def _strips(data: bytes) -> slice:
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        page = tif.pages[0]
        return slice(min(page.dataoffsets), max(o + c for o, c in zip(page.dataoffsets, page.databytecounts)))


def _merged_image(data: bytes) -> slice:
    """A Photoshop document's merged image (its rows' lengths and their PackBits data), after its layers."""
    return slice(layout(data)[2] + 2, len(data))


def _byte(data: bytearray, at: int, rng: random.Random) -> None:
    data[at] = rng.randrange(256)


def _bit(data: bytearray, at: int, rng: random.Random) -> None:
    data[at] ^= 1 << rng.randrange(8)


CASES: list[tuple[str, Callable[[np.ndarray], bytes], Callable[[bytes], slice], Callable[..., None]]] = [
    ("JPEG, quality 90 (a byte changed)", _saved("JPEG", quality=90), scan_data, _byte),
    ("TIFF, deflate, 16-row strips", lambda rgb: _tiff(rgb, compression="zlib", rowsperstrip=16), _strips, _bit),
    ("TIFF, LZW, 16-row strips", lambda rgb: _tiff(rgb, compression="lzw", rowsperstrip=16), _strips, _bit),
    ("TIFF, LZW with predictor, 16-row strips",
     lambda rgb: _tiff(rgb, compression="lzw", predictor=True, rowsperstrip=16), _strips, _bit),
    ("TIFF, LZW, one strip", lambda rgb: _tiff(rgb, compression="lzw", rowsperstrip=512), _strips, _bit),
    ("TIFF, PackBits, 16-row strips", lambda rgb: _tiff(rgb, compression="packbits", rowsperstrip=16), _strips, _bit),
    ("TIFF, JPEG, 16-row strips", lambda rgb: _tiff(rgb, compression="jpeg", rowsperstrip=16), _strips, _bit),
    ("WebP, lossy, quality 90", _saved("WEBP", quality=90), _webp_bitstream, _bit),
    ("WebP, lossless", _saved("WEBP", lossless=True), _webp_bitstream, _bit),
    ("JPEG 2000, lossless", _saved("JPEG2000", irreversible=False), _codestream, _bit),
    ("TIFF, CCITT Group 4, a bitonal page", _bitonal("group4"), _strips, _bit),
    ("TIFF, CCITT Group 3 1-D, a bitonal page", _bitonal("group3"), _strips, _bit),
    ("TIFF, CCITT Group 3 2-D with fill bits, a bitonal page", _bitonal("group3", t292=5), _strips, _bit),
    ("TIFF, CCITT Modified Huffman, a bitonal page", _bitonal("tiff_ccitt"), _strips, _bit),
    ("Photoshop PSD, run-length", lambda rgb: written(rgb, "-compress", "RLE"), _merged_image, _bit),  # seeds kept
]


def outcomes(sound: bytes, where: slice, change: Callable[..., None], seed: int) -> Counter[str]:
    reference, rng, counts = codecs.decode(sound).pixels, random.Random(seed), Counter[str]()
    for _ in range(TRIALS):
        data = bytearray(sound)
        change(data, rng.randrange(where.start, where.stop), rng)
        try:
            decoded = codecs.decode(bytes(data))
        except EnhanceError:
            counts["refused"] += 1
            continue
        off = float(np.abs(decoded.pixels - reference).max()) * 255
        counts["found" if decoded.damage else
               "missed, visible" if off > VISIBLE else "missed, slight" if off > 0 else "missed, identical"] += 1
    return counts


def cost(data: bytes, check: Callable[[], object]) -> dict[str, float]:
    """The check alone, and ``codecs.decode`` on this machine's lanes (the check beside the
    decoder) and on one (the check after it), interleaved (``lanes_runs``)."""
    chosen = lanes_runs.settings()
    times: dict[str, list[float]] = {"check": [], **{setting: [] for setting in chosen}}
    for rep in range(REPS + 1):  # the first round warms up
        times["check"].append(lanes_runs.timed(check))
        for setting in lanes_runs.in_turn(chosen, rep):
            times[setting].append(lanes_runs.timed(lambda: codecs.decode(data)))
    median = {name: statistics.median(runs[1:]) for name, runs in times.items()}
    lanes, one = chosen
    return {"check_s": median["check"], "decode_s": median[lanes], "decode_one_lane_s": median[one], "lanes": lanes}


def main() -> None:
    warnings.simplefilter("ignore")
    logging.disable(logging.CRITICAL)
    rgb = skdata.astronaut()
    cases = []
    for seed, (name, make, locate, change) in enumerate(CASES):
        sound = make(rgb)
        cases.append({"case": name, **outcomes(sound, locate(sound), change, seed)})
    big = np.tile(rgb, (8, 8, 1))  # 4096², 16.8 Mpx
    jpeg, lzw = _saved("JPEG", quality=90)(big), _tiff(big, compression="lzw", rowsperstrip=16)
    deflate16 = _tiff(big.astype(np.uint16) * 257, compression="zlib", predictor=True)  # a 16-bit master's usual store
    a4 = np.tile(skdata.page() > 128, (10, 7))[:3508, :2480]  # a page of print at 300 dpi, A4: 2480 × 3508
    group4 = _saved("TIFF", compression="group4")(a4)
    group3 = _saved("TIFF", compression="group3", tiffinfo={292: 5, 282: 300.0, 283: 300.0})(a4)
    costs = {"JPEG, 16.8 Mpx": cost(jpeg, lambda: damage.in_jpeg(jpeg)),
             "TIFF, LZW, 16.8 Mpx": cost(lzw, lambda: damage.in_tiff_page(lzw, 0)),
             "TIFF, 16-bit, deflate, 16.8 Mpx": cost(deflate16, lambda: damage.in_tiff_page(deflate16, 0)),
             "TIFF, Group 4, 8.7 Mpx page": cost(group4, lambda: damage.in_tiff_page(group4, 0)),
             "TIFF, Group 3 2-D, 8.7 Mpx page": cost(group3, lambda: damage.in_tiff_page(group3, 0))}
    report = {"machine": cpu_name(), "trials": TRIALS, "visible_levels": VISIBLE, "cases": cases, "cost": costs}
    print(f"written to {save_results('damage_found', report)}", file=sys.stderr)


if __name__ == "__main__":
    without_options(__doc__)
    main()
