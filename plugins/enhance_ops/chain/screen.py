"""Which parts of a grey or colour scan are a printed halftone, and the screen's period.

A newspaper's or a book's photograph is printed as dots on a regular grid; scanned in grey
or colour, the grid stays in the scan as a fine periodic pattern. Real-ESRGAN, the nightly
default, takes it for texture or noise and redraws it: a screen of 2.8 to 10.6 px period
over scikit-image's camera or coffee, at x4, measured 18-21 dB consistency with halos on
17-62 % of pixels, and the gate held every one. Smoothed first, the pattern gone, the
photograph the dots stand for passes through SPAN at 58-66 dB (Real-ESRGAN still held the
smoothed ones, sharpening what the screen never held: 23-32 dB).

A screen shows in a block's spectrum as a sharp peak and its twin at right angles (the
grid's two directions), carrying a large share of the block's energy, at the same
frequency all over the print. Blocks of 64 px are looked at: first a sample of them, for a
peak at least ``FIND_RATIO`` times its ring's median and with ``FIND_ENERGY`` of the
block's energy, both ways; the frequency most such blocks share is the screen's. Then every
block (every 32 px) is held to that frequency at the looser ``KEEP_*``: a screen's peak
weakens in its highlights and shadows. On scikit-image's 25 test images at their own size
and enlarged 2 and 3 times, and the JPEGs of four of them at quality 20 and 50 (whose 8-px
block grid is a peak too, on the axes), no block passed the first test; brick's regular
courses came nearest (11 of its 64 blocks at 30 times and 2 %, none past 65 times). Screens of
2.8 to 10.6 px period at three angles over four photographs, and their JPEGs at quality 75,
were found in 92-100 % of their blocks.

The Gaussian that best turned a screen back into its photograph (simulated prints and
scans, four photographs, periods 2.8 to 10.6 px) had sigma 0.4 periods at every period.
"""
from __future__ import annotations

import math

import cv2
import numpy as np
import torch

from .dither import FEATHER, MIN_SHARE, Dither

BLOCK = 64  # px: the blocks whose spectra are looked at
STEP = BLOCK // 2  # px between the blocks held to the screen's frequency
PERIODS = (2.5, 12.0)  # px: the screens looked for (finer ones the scanner has blurred away)
SAMPLE = 4096  # blocks at most looked at to find a screen's frequency
FIND_RATIO, FIND_ENERGY = 100.0, 0.05  # a block's peak that names the frequency (brick's: 65 at most)
KEEP_RATIO, KEEP_ENERGY = 20.0, 0.02  # a block screened at the frequency found
MIN_BLOCKS = 2  # blocks agreeing on a frequency before it is taken for a screen's

_FREQ = np.fft.fftfreq(BLOCK) * BLOCK  # cycles per block down the rows, in the FFT's order
_RADIUS = np.hypot(*np.meshgrid(_FREQ, np.arange(BLOCK // 2 + 1), indexing="ij"))  # the real FFT's half
_RING = np.rint(_RADIUS).astype(np.intp)
_BAND = (_RADIUS >= BLOCK / PERIODS[1]) & (_RADIUS <= BLOCK / PERIODS[0])
_WINDOW = np.outer(np.hanning(BLOCK), np.hanning(BLOCK)).astype(np.float32)

Frequency = tuple[int, int]  # (rows, columns), in cycles per block


def find(image: np.ndarray) -> Dither | None:
    """The halftone-screened parts of a grey or colour image; None where none is found or
    the image is smaller than a block."""
    height, width = image.shape[:2]
    if min(height, width) < BLOCK:
        return None
    found = _frequency(image)
    if found is None:
        return None
    frequency, period = found
    ys, xs = _starts(height), _starts(width)
    # STEP-px cells, each screened where most of the blocks over it are: a block a quarter
    # over a photograph's edge can hold its peak, and the cell of print it covers is not screened
    votes, blocks = (np.zeros((-(-height // STEP), -(-width // STEP)), np.uint16) for _ in range(2))
    for y in ys:
        row = _luminance(image[y : y + BLOCK])
        screened = _at(_spectra(np.stack([row[:, x : x + BLOCK] for x in xs])), frequency, KEEP_RATIO, KEEP_ENERGY)
        down = slice(y // STEP, -(-(y + BLOCK) // STEP))
        for x, counted in zip(xs, screened):
            across = slice(x // STEP, -(-(x + BLOCK) // STEP))
            blocks[down, across] += 1
            votes[down, across] += counted
    cells = np.where(2 * votes > blocks, np.uint8(255), np.uint8(0))
    # a screen's blocks in its photograph's highlights and shadows hold no peak: closed over
    cells = cv2.morphologyEx(cells, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3)),
                             borderType=cv2.BORDER_REPLICATE)
    share = _share(cells, height, width)
    if share < MIN_SHARE:
        return None
    weight = np.ascontiguousarray(np.repeat(np.repeat(cells, STEP, axis=0), STEP, axis=1)[:height, :width])
    colour = image.shape[2] > 1
    if share == 1.0:
        return Dither(weight, 1.0, True, colour, period)
    return Dither(cv2.GaussianBlur(weight, (0, 0), FEATHER), share, True, colour, period)


def _frequency(image: np.ndarray) -> tuple[Frequency, float] | None:
    """The screen's frequency (the FFT bin) and period in px, from a sample of blocks; None
    where too few blocks agree on one."""
    height, width = image.shape[:2]
    step = max(BLOCK, math.ceil(math.sqrt(height * width / SAMPLE)))
    xs = range(0, width - BLOCK + 1, step)
    rows = (_luminance(image[y : y + BLOCK]) for y in range(0, height - BLOCK + 1, step))
    power = _spectra(np.stack([row[:, x : x + BLOCK] for row in rows for x in xs]))
    peaks = np.where(_BAND, power, 0).reshape(len(power), -1).argmax(axis=1)
    ky, kx = np.unravel_index(peaks, _BAND.shape)
    strong = _passes(power, ky, kx, FIND_RATIO, FIND_ENERGY)
    if strong.sum() < MIN_BLOCKS:
        return None
    keys = np.stack(_canonical(ky[strong], kx[strong]), axis=1)
    peaks, counts = np.unique(keys, axis=0, return_counts=True)  # a few bins, however many blocks
    support = (np.abs(peaks[:, None, :] - peaks[None, :, :]) <= 1).all(axis=2) @ counts  # within a bin: one screen
    if support.max() < MIN_BLOCKS:
        return None
    fy, fx = (int(k) for k in peaks[support.argmax()])
    agree = (np.abs(keys - (fy, fx)) <= 1).all(axis=1)
    # the peak lies between bins: the period from the centroid of the agreeing blocks' power
    summed = power[np.flatnonzero(strong)[agree]].sum(axis=0)
    offsets = np.array([(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)])
    weights = summed[_half(fy + offsets[:, 0], fx + offsets[:, 1])]
    centroid = (weights @ (offsets + (fy, fx))) / weights.sum()
    return (fy, fx), BLOCK / math.hypot(*centroid)


def _starts(length: int) -> np.ndarray:
    """Where blocks start along a side: every ``STEP`` px, and one flush with its end."""
    starts = list(range(0, length - BLOCK + 1, STEP))
    if starts[-1] != length - BLOCK:
        starts.append(length - BLOCK)
    return np.array(starts)


def _luminance(pixels: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY) if pixels.shape[2] == 3 else pixels[..., 0]


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


def _at(power: np.ndarray, frequency: Frequency, ratio: float, energy: float) -> np.ndarray:
    """Which blocks have the screen's peaks at ``frequency``."""
    count = len(power)
    return _passes(power, np.full(count, frequency[0]), np.full(count, frequency[1]), ratio, energy)


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


def _share(cells: np.ndarray, height: int, width: int) -> float:
    """The share of the image's pixels in screened cells (the last row and column of cells
    are narrower than the rest)."""
    rows = np.minimum(STEP, height - STEP * np.arange(cells.shape[0]))
    columns = np.minimum(STEP, width - STEP * np.arange(cells.shape[1]))
    return float(rows @ (cells > 0) @ columns) / (height * width)
