"""Signal plumbing for the robust mode: resampling to the working rate, an STFT with perfect
reconstruction, and per-tile band energies. Pure numpy/scipy; no keys here."""

from __future__ import annotations

from math import gcd
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import fft

from subtone.robust.layout import FRAME, HOP, RATE

__all__ = [
    "FRAME",
    "HOP",
    "RATE",
    "band_edges",
    "band_edges_hz",
    "frame_energies",
    "istft",
    "resample",
    "resample_quick",
    "stft",
    "stft_span",
    "synthesis_frames",
]

Array = npt.NDArray[np.float64]
CArray = npt.NDArray[np.complex64]

# sqrt-Hann at 50 %: w² sums to 1. Transforms run in single precision (scipy.fft): only the
# embedder's *difference* goes back into the cover, so float32 round-off stays far below it.
_WINDOW = np.sqrt(np.hanning(FRAME + 1)[:FRAME]).astype(np.float32)


def resample(x: Array, rate_from: int, rate_to: int) -> Array:
    """Polyphase resampling (the same filter on both sides of the channel)."""
    if rate_from == rate_to:
        return np.asarray(x, dtype=np.float64)
    from scipy.signal import resample_poly  # scipy.signal loads in seconds: only when used

    g = gcd(rate_from, rate_to)
    return np.asarray(resample_poly(x, rate_to // g, rate_from // g), dtype=np.float64)


KAISER_BETA = 5.0
"""``resample_poly``'s default window."""


def resample_quick(x: Array, rate_from: int, rate_to: int) -> Array:
    """:func:`resample` in numpy alone (no ``scipy.signal`` to load): the same Kaiser-windowed
    filter, delay and length, equal to it up to rounding, gathered tap by tap (memory grows as
    the signal times the taps per phase: for seconds of audio, as :func:`~subtone.robust.
    sync.probe` reads, not for files)."""
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    if rate_from == rate_to:
        return x.copy()
    g = gcd(rate_from, rate_to)
    up, down = rate_to // g, rate_from // g
    half = 10 * max(up, down)
    m = np.arange(2 * half + 1) - half
    cutoff = 1.0 / max(up, down)
    h = cutoff * np.sinc(cutoff * m) * np.kaiser(2 * half + 1, KAISER_BETA)
    h *= up / h.sum()
    n_out = -(-len(x) * up // down)
    j = np.arange(n_out)
    # Output j sits at upsampled position j*down; tap k of the centred filter reads the
    # upsampled sample j*down + half - k, which is x[i] when it is i*up.
    first = j * down + half
    k0 = first % up  # the first tap that lands on a real sample
    taps = -(-(2 * half + 1) // up)
    # The filter and the signal padded with zeros, so that every tap reads in bounds: a tap
    # past the filter's end or the signal's adds exactly 0.0 (the same sums, in the same
    # order, as leaving it out).
    h_padded = np.zeros((taps + 1) * up)
    h_padded[: len(h)] = h
    pad = taps + 1
    x_padded = np.zeros(len(x) + 2 * pad)
    x_padded[pad : pad + len(x)] = x
    at = (first - k0) // up + pad  # where tap 0 of each output reads, in x_padded
    y = np.zeros(n_out)
    for t in range(taps):
        y += h_padded[k0 + t * up] * x_padded[at - t]
    return y


def stft(x: Array) -> CArray:
    """Frames ``x[f*HOP : f*HOP+FRAME]`` (only whole ones), sqrt-Hann windowed, ``rfft``-ed."""
    n = (len(x) - FRAME) // HOP + 1
    if n <= 0:
        return np.zeros((0, FRAME // 2 + 1), dtype=np.complex64)
    x32 = np.asarray(x, dtype=np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(x32, FRAME)[::HOP][:n]
    return np.asarray(fft.rfft(frames * _WINDOW, axis=1), dtype=np.complex64)


def stft_span(
    x: npt.NDArray[np.floating[Any]],
    first: int,
    stop: int,
    rows: npt.NDArray[np.int64] | None = None,
) -> CArray:
    """Frames ``first … stop-1`` of :func:`stft` of ``x`` (only ``first + rows`` if given),
    the same values (each frame's transform is computed on its own), reading only the
    samples they cover."""
    if rows is None:
        return stft(x[first * HOP : (stop - 1) * HOP + FRAME])
    x32 = np.asarray(x[first * HOP : (stop - 1) * HOP + FRAME], dtype=np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(x32, FRAME)[::HOP][rows]
    return np.asarray(fft.rfft(frames * _WINDOW, axis=1), dtype=np.complex64)


def synthesis_frames(spec: CArray) -> npt.NDArray[np.float32]:
    """Each frame of ``spec`` back to windowed samples ``(frames, FRAME)``: what
    :func:`istft` overlaps and adds (frame ``f``'s first half on its own start, its second
    half on frame ``f+1``'s)."""
    return np.asarray(fft.irfft(spec, n=FRAME, axis=1) * _WINDOW, dtype=np.float32)


def istft(spec: CArray, length: int) -> Array:
    """Overlap-add inverse of :func:`stft` (exact where two frames overlap)."""
    n = spec.shape[0]
    y = np.zeros(max(length, (n + 1) * HOP))
    if n == 0:
        return y[:length]
    fr = fft.irfft(spec, n=FRAME, axis=1) * _WINDOW
    y[: n * HOP] += fr[:, :HOP].ravel()
    y[HOP : (n + 1) * HOP] += fr[:, HOP:].ravel()
    return y[:length]


def band_edges(f_lo: float, f_hi: float, bands: int) -> npt.NDArray[np.int64]:
    """Bin edges of ``bands`` bands spaced geometrically between ``f_lo`` and ``f_hi`` Hz."""
    edges = np.round(np.geomspace(f_lo, f_hi, bands + 1) / (RATE / FRAME)).astype(np.int64)
    if len(np.unique(edges)) != bands + 1:
        raise ValueError("bands narrower than one bin")
    return np.asarray(edges, dtype=np.int64)


def band_edges_hz(edges_hz: tuple[float, ...]) -> npt.NDArray[np.int64]:
    """Bin edges nearest to the given band edges in Hz (strictly increasing)."""
    edges = np.round(np.asarray(edges_hz, dtype=np.float64) / (RATE / FRAME)).astype(np.int64)
    if np.any(np.diff(edges) <= 0):
        raise ValueError("bands narrower than one bin")
    return np.asarray(edges, dtype=np.int64)


def frame_energies(spec: CArray, edges: npt.NDArray[np.int64]) -> Array:
    """Energy of each band in each frame: ``(frames, bands)``."""
    lo, hi = int(edges[0]), int(edges[-1])
    band = spec[:, lo:hi]
    p = band.real**2 + band.imag**2
    if p.shape[0] == 0:
        return np.zeros((0, len(edges) - 1))
    return np.asarray(np.add.reduceat(p, edges[:-1] - lo, axis=1), dtype=np.float64)
