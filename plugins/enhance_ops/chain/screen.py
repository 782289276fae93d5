"""Which parts of a grey or colour scan are a printed halftone, and the screen's period.

A newspaper's or a book's photograph is printed as dots on a regular grid; scanned in grey
or colour, the grid stays in the scan as a fine periodic pattern. Real-ESRGAN, the nightly
default, takes it for texture or noise and redraws it: a screen of 2.8 to 10.6 px period
over scikit-image's camera or coffee, at x4, measured 18-21 dB consistency with halos on
17-62 % of pixels, and the gate held every one. Smoothed first, the pattern gone, the
photograph the dots stand for passes through SPAN at 56-68 dB (bench/screened_prints.py;
Real-ESRGAN still held the smoothed ones, sharpening what the screen never held: 23-32 dB).

A screen shows in a block's spectrum as a sharp peak and its twin at right angles (the
grid's two directions), carrying a large share of the block's energy, at the same
frequency all over the print. A sample of blocks of 64 px is looked at for a peak at least
``FIND_RATIO`` times its ring's median and with ``FIND_ENERGY`` of the block's energy,
both ways; the frequency most such blocks share is the screen's. On scikit-image's 25 test
images at their own size and enlarged 2 and 3 times, and the JPEGs of four of them at
quality 20 and 50 (whose 8-px block grid is a peak too, on the axes), no block passed;
brick's regular courses came nearest (11 of its 64 blocks at 30 times and 2 %, none past
65 times). Then each pixel is screened where each of the screen's two waves holds
``SCREENED`` of the fine detail's power in a box of ``WINDOW_PERIODS`` periods around it
(a screened photograph: 0.21-0.39 at its median; the dashed lines of diagrams and a
monospaced listing's lattice of characters, where their two waves together held 15 %:
0.02-0.12 at the 90th percentile), and swings by ``FAINTEST`` at least; gaps of up to
``CLOSE_PERIODS`` periods (highlights and shadows, which hold no dots) are closed over. The
part found follows a photograph's edge to a few pixels; blocks had missed or overrun it by
up to a block's half, leaving a frame of dots or blurring the print beside it. A colour
print's inks each have their own screen angle: each channel is looked at with its own.
Coarser screens (fundamentals of 12 to 24 px; 85 lines per inch scanned at 1200 dpi is 14)
are looked for at half the size.

The Gaussian that best turned a screen back into its photograph (simulated prints and
scans, four photographs, periods 2.8 to 10.6 px) had sigma 0.4 periods at every period;
but it leaves 4 % of the screen's wave, which the sharpening and local contrast after
enlarging brought back into view as a grid. Sigma 0.5 periods leaves 0.7 % and none
showed, for about 1 dB further from the photograph.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import cv2
import numpy as np
import torch

from . import strips
from .colour_math import luma
from .dither import FEATHER, MIN_SHARE, Dither

BLOCK = 64  # px: the blocks whose spectra are looked at
# px: the screens' fundamentals looked for; to 24 at half the size. Down to 2.05 px, short of
# an axis's Nyquist frequency (2 px, where a sensor's odd and even columns differ): a
# magazine's 133 lines per inch scanned at 300 dpi is 2.26, and until 2.5 was the least, such
# screens went to Real-ESRGAN and were held (consistency 18-28 dB, artefacts 0.14-0.80).
PERIODS = (2.05, 12.0)
SAMPLE = 4096  # blocks at most looked at to find a screen's frequency
FIND_RATIO, FIND_ENERGY = 100.0, 0.05  # a block's peak that names the frequency (brick's: 65 at most)
MIN_BLOCKS = 2  # blocks agreeing on a frequency before it is taken for a screen's
COARSE_AGREEING = 0.1  # of the blocks sampled at half size: a monospaced listing's 12-px lattice had 4 of 90
SCREENED = 0.12  # a pixel is screened where each of the screen's two waves holds this share of the detail's power
FAINTEST = 4 / 255  # and a screen's wave swings by this much at least: blank paper's faint structure is no screen
WINDOW_PERIODS = 4  # the box, in the screen's periods, over which that share is taken
CLOSE_PERIODS = 8  # gaps in the screened parts (a photograph's highlights and shadows hold no dots) closed over

_FREQ = np.fft.fftfreq(BLOCK) * BLOCK  # cycles per block down the rows, in the FFT's order
_RADIUS = np.hypot(*np.meshgrid(_FREQ, np.arange(BLOCK // 2 + 1), indexing="ij"))  # the real FFT's half
_RING = np.rint(_RADIUS).astype(np.intp)
_BAND = (_RADIUS >= BLOCK / PERIODS[1]) & (_RADIUS <= BLOCK / PERIODS[0])
_WINDOW = np.outer(np.hanning(BLOCK), np.hanning(BLOCK)).astype(np.float32)

Frequency = tuple[int, int]  # (rows, columns), in cycles per block


def find(image: np.ndarray) -> Dither | None:
    """The halftone-screened parts of a grey or colour image; None where none is found or
    the image is smaller than a block. A colour print's inks each have their screen, at its
    own angle: each channel is looked at with its own, and a pixel is screened where any is.
    A screen coarser than ``PERIODS`` allows is looked for at half the size, over a tenth of
    the image at least (``COARSE_AGREEING``), and taken over one found at full size: a coarse
    screen's overtones (at 45 degrees, a 14-px screen's at 9.9 px) had been taken for a finer
    screen's, smoothed too little and over half of it."""
    height, width = image.shape[:2]
    if min(height, width) < BLOCK:
        return None
    coarse = _frequency(image, luma, 2) if min(height, width) >= 2 * BLOCK else None
    if coarse is not None and 2 * coarse[1] > PERIODS[1]:
        shrink, seen = 2, coarse
    else:
        shrink, seen = 1, _frequency(image, luma)
    if seen is None:
        return None
    if image.shape[2] == 1:
        screens = [(0, seen)]
    else:
        screens = [(c, _frequency(image, lambda pixels, c=c: pixels[..., c], shrink)) for c in range(image.shape[2])]
    found = [(channel, screen) for channel, screen in screens if screen is not None]
    if not found:
        return None
    weight = np.zeros((height, width), np.uint8)
    for channel, (frequency, period) in found:
        if shrink == 1:
            weight |= _screened(image[..., channel], frequency, period)
        else:
            mask = _screened(_reduced(image[..., channel : channel + 1], shrink), frequency, period)
            weight |= cv2.resize(mask, (width, height), interpolation=cv2.INTER_NEAREST)
    period = shrink * max(period for _, (_, period) in found)
    # a square, not a disc: a photograph's corners are square, and on 48 Mpx a disc of 97 px
    # (a 12-px screen's) took 6.9 s where the square takes 0.2 s
    reach = 2 * round(CLOSE_PERIODS * period / 2) + 1
    weight = cv2.morphologyEx(weight, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (reach, reach)),
                              borderType=cv2.BORDER_REPLICATE)
    share = cv2.countNonZero(weight) / weight.size
    if share < MIN_SHARE:
        return None
    colour = image.shape[2] > 1
    if share == 1.0:
        return Dither(weight, 1.0, True, colour, period)
    return Dither(cv2.GaussianBlur(weight, (0, 0), FEATHER), share, True, colour, period)


def _screened(channel: np.ndarray, frequency: Frequency, period: float) -> np.ndarray:
    """Where each of the screen's two waves (its grid's two directions) holds at least
    ``SCREENED`` of the detail's power (what is finer than about three periods) in a box of
    ``WINDOW_PERIODS`` periods: 255 there, 0 elsewhere. The detail is shifted by each wave's
    frequency and averaged over the box, which keeps what lies at it. By strips, each with
    the box's and the high-pass's rows of context: no float copy of the whole channel."""
    height, width = channel.shape
    box = 2 * round(WINDOW_PERIODS * period / 2) + 1
    margin = box + 3 * math.ceil(period)
    mask = np.empty((height, width), np.uint8)
    step = 2 * np.pi / BLOCK
    waves = [(fy * step, np.cos(fx * step * np.arange(width)).astype(np.float32),
              np.sin(fx * step * np.arange(width)).astype(np.float32))
             for fy, fx in (frequency, (frequency[1], -frequency[0]))]

    def strip(r0: int, r1: int) -> None:
        top, bottom = max(0, r0 - margin), min(height, r1 + margin)
        rows = np.ascontiguousarray(channel[top:bottom], dtype=np.float32)
        detail = rows - cv2.GaussianBlur(rows, (0, 0), period / 2)  # the screen kept, the picture's tones gone
        total = cv2.blur(detail * detail, (box, box))
        kept, total = slice(r0 - top, r1 - top), total[r0 - top : r1 - top]
        screened = np.ones(total.shape, bool)
        for down, cos_across, sin_across in waves:  # cos(a + b) and sin(a + b), a down the rows, b across
            angles = down * np.arange(top, bottom)[:, None]
            cos_down, sin_down = np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)
            along_cos, along_sin = detail * cos_across, detail * sin_across
            held = np.zeros_like(total)
            for shifted in (cos_down * along_cos - sin_down * along_sin, sin_down * along_cos + cos_down * along_sin):
                shifted = cv2.blur(shifted, (box, box))[kept]
                held += shifted * shifted
            # a wave of amplitude a: (a/2)^2 held, a^2/2 its power
            held *= 2
            screened &= (held >= SCREENED * total) & (held >= FAINTEST**2 / 2)
        mask[r0:r1] = np.where(screened, 255, 0)

    strips.map_bands(height, width, strip)
    return mask


def _frequency(image: np.ndarray, plane: Callable[[np.ndarray], np.ndarray],
               shrink: int = 1) -> tuple[Frequency, float] | None:
    """The screen's frequency (the FFT bin) and period in px in the ``plane`` of the image
    (its luminance, a channel) reduced ``shrink`` times, from a sample of blocks; None where
    too few agree on one. Only the sampled blocks are reduced: sampling 4,096 at half size
    as at full size had made the search four times as long (0.6 s on 40 Mpx)."""
    height, width, side = *image.shape[:2], BLOCK * shrink
    step = max(side, math.ceil(math.sqrt(height * width / (SAMPLE // shrink**2))))  # as many pixels at any size
    xs = range(0, width - side + 1, step)
    rows = (np.asarray(plane(image[y : y + side]), np.float32) for y in range(0, height - side + 1, step))
    blocks = np.stack([row[:, x : x + side] for row in rows for x in xs])
    if shrink > 1:
        blocks = blocks.reshape(len(blocks), BLOCK, shrink, BLOCK, shrink).mean(axis=(2, 4))
    power = _spectra(blocks)
    peaks = np.where(_BAND, power, 0).reshape(len(power), -1).argmax(axis=1)
    ky, kx = np.unravel_index(peaks, _BAND.shape)
    strong = _passes(power, ky, kx, FIND_RATIO, FIND_ENERGY)
    if strong.sum() < MIN_BLOCKS:
        return None
    keys = np.stack(_canonical(ky[strong], kx[strong]), axis=1)
    bins, counts = np.unique(keys, axis=0, return_counts=True)  # a few bins, however many blocks
    support = (np.abs(bins[:, None, :] - bins[None, :, :]) <= 1).all(axis=2) @ counts  # within a bin: one screen
    if support.max() < max(MIN_BLOCKS, (COARSE_AGREEING if shrink > 1 else 0.0) * len(power)):
        return None
    fy, fx = (int(k) for k in bins[support.argmax()])
    agree = (np.abs(keys - (fy, fx)) <= 1).all(axis=1)
    # the peak lies between bins: the period from the centroid of the agreeing blocks' power
    summed = power[np.flatnonzero(strong)[agree]].sum(axis=0)
    offsets = np.array([(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)])
    weights = summed[_half(fy + offsets[:, 0], fx + offsets[:, 1])]
    centroid = (weights @ (offsets + (fy, fx))) / weights.sum()
    return (fy, fx), BLOCK / math.hypot(*centroid)


def _reduced(plane: np.ndarray, shrink: int) -> np.ndarray:
    """One channel (``plane``, height x width x 1) reduced ``shrink`` times, each pixel the
    mean of those it covers, by strips: no float copy of the whole channel."""
    height, width = plane.shape[0] // shrink, plane.shape[1] // shrink
    whole = plane[: height * shrink, : width * shrink]  # whole blocks only: INTER_AREA is then their mean
    reduced = np.empty((height, width, 1), np.float32)

    def strip(r0: int, r1: int) -> None:
        reduced[r0:r1] = strips.shrink_rows(whole, shrink, r0, r1)

    strips.map_bands(height, width, strip)
    return reduced[..., 0]


def _spectra(blocks: np.ndarray) -> np.ndarray:
    """Each block's power spectrum (the half a real FFT gives), its mean taken out and its
    edges windowed. torch's FFT: numpy's took 1.6 s over 4,096 blocks, torch's 0.07 s."""
    centred = blocks - blocks.mean(axis=(1, 2), keepdims=True, dtype=np.float32)
    centred *= _WINDOW
    return torch.fft.rfft2(torch.from_numpy(centred)).abs().square_().numpy()


def _half(ky: np.ndarray, kx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The bin of the real FFT's half that holds (ky, kx), either sign: a real block's
    spectrum is the same at a frequency and its opposite."""
    flip = np.asarray(kx % BLOCK > BLOCK // 2)
    return np.where(flip, -ky, ky) % BLOCK, np.where(flip, -kx, kx) % BLOCK


def _passes(power: np.ndarray, ky: np.ndarray, kx: np.ndarray, ratio: float, energy: float) -> np.ndarray:
    """Which blocks have a peak near (ky, kx) and near the same turned a right angle, each
    at least ``ratio`` times its ring's median and ``energy`` of the block's energy."""
    total = 2 * power.sum(axis=(1, 2)) - power[:, :, [0, BLOCK // 2]].sum(axis=(1, 2)) + 1e-12  # both halves
    passed = np.ones(len(power), bool)
    for y, x in ((ky, kx), (kx, -ky)):
        peak, around = _peak(power, y, x)
        passed &= (peak >= ratio * _ring_median(power, _RING[_half(y, x)])) & (2 * around >= energy * total)
    return passed


def _peak(power: np.ndarray, ky: np.ndarray, kx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The highest power within a bin of (ky, kx), and the power of those bins together."""
    rows = np.arange(len(power))
    near = np.stack([power[(rows, *_half(ky + dy, kx + dx))] for dy in (-1, 0, 1) for dx in (-1, 0, 1)])
    return near.max(axis=0), near.sum(axis=0)


def _ring_median(power: np.ndarray, rings: np.ndarray) -> np.ndarray:
    """Each block's median power over the ring of its peak's radius: the level a peak stands out from."""
    medians = np.empty(len(power), np.float32)
    for ring in np.unique(rings):
        which = rings == ring
        medians[which] = np.median(power[which][:, _RING == ring], axis=1)
    return medians


def _canonical(ky: np.ndarray, kx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One of a peak's four forms (itself, its mirror, both turned a right angle): the one at
    0 to 90 degrees, so that blocks of one screen agree whichever of its peaks each found."""
    y, x = np.where(ky >= BLOCK // 2, ky - BLOCK, ky), kx
    for _ in range(3):
        turn = ~((x > 0) & (y >= 0))
        y, x = np.where(turn, x, y), np.where(turn, -y, x)
    return y, x
