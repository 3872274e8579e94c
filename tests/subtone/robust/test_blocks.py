"""Robust mode's block-by-block STFT work (subtone/robust/_blocks.py): the same values as the
whole cover at once, and the same bits whatever the number of threads."""

from __future__ import annotations

import numpy as np
import pytest

from subtone.robust import _blocks, embedding
from subtone.robust._dsp import HOP, frame_energies, istft, stft
from subtone.robust.core import _EDGES, _ratios, _tile_energies, as_mix
from subtone.robust.embedding import GAIN_CAP_DB, ITERATIONS, SNR_DB, _band_gains, _strengths
from subtone.robust.layout import BANDS, CELLS, GUARD_FRAMES, _columns

KEY = bytes(range(32))


def _mix(seconds: float) -> np.ndarray:
    """A working mix like speech: 1/f-ish noise with a syllable-rate envelope."""
    rng = np.random.default_rng(4)
    n = int(seconds * 16000)
    spec = np.fft.rfft(rng.standard_normal(n)) / np.maximum(np.fft.rfftfreq(n, 1 / 16000), 200)
    x = np.fft.irfft(spec, n) * (0.55 + 0.45 * np.sin(2 * np.pi * 3.0 * np.arange(n) / 16000))
    return as_mix(x / np.abs(x).max() * 0.3)


def _whole_cover(m16: np.ndarray, payload: bytes) -> np.ndarray:
    """The marking iterations on the whole cover at once (format r2 as first written)."""
    columns = _columns(len(m16))
    used, lattice = embedding._targets(KEY, payload, columns)
    lo, hi = int(_EDGES[0]), int(_EDGES[-1])
    rows = slice(GUARD_FRAMES, GUARD_FRAMES + columns)
    y16, want, total_db = m16.astype(np.float64), np.zeros(0), np.zeros((columns, BANDS))
    for it in range(ITERATIONS):
        spec = stft(y16)
        tiles = _tile_energies(frame_energies(spec, _EDGES), GUARD_FRAMES, columns)
        d = _ratios(tiles)
        ea, eb = tiles[:, 0::2].ravel(), tiles[:, 1::2].ravel()
        fa = eb / (ea + eb)
        if it == 0:
            full = np.where(used, np.round((d - lattice) / 7.0) * 7.0 + lattice - d, 0)
            ga, gb = 10.0 ** (full * fa / 20.0), 10.0 ** (-full * (1.0 - fa) / 20.0)
            cost = ea * (ga - 1.0) ** 2 + eb * (gb - 1.0) ** 2
            budget = float(np.sum(np.abs(spec) ** 2, dtype=np.float64)) * 10 ** (-SNR_DB / 10)
            want = d + full * _strengths(cost, budget)
        shift = np.where(used, want - d, 0.0).reshape(columns, CELLS)
        g_db = np.empty((columns, BANDS))
        g_db[:, 0::2] = shift * fa.reshape(columns, CELLS)
        g_db[:, 1::2] = -shift * (1.0 - fa.reshape(columns, CELLS))
        g_db = np.clip(total_db + g_db, -GAIN_CAP_DB, GAIN_CAP_DB) - total_db
        total_db += g_db
        diff = np.zeros_like(spec)
        diff[rows, lo:hi] = spec[rows, lo:hi] * _band_gains(10.0 ** (g_db / 20.0))
        y16 += istft(diff, len(y16))
    start, end = GUARD_FRAMES * HOP, (GUARD_FRAMES + columns + 1) * HOP
    return (y16 - m16)[start:end].astype(np.float16)


def test_energies_by_block_are_the_whole_covers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_blocks, "BLOCK_COLUMNS", 37)
    x = _mix(5.0)
    with _blocks.pool() as p:
        got = _blocks.energies(x, _EDGES, p)
    assert np.array_equal(got, frame_energies(stft(x), _EDGES))


@pytest.mark.parametrize("payload_bytes", [180, 12])  # full, and mostly unmarked columns
def test_marking_by_block_is_the_whole_covers(
    monkeypatch: pytest.MonkeyPatch, payload_bytes: int
) -> None:
    monkeypatch.setattr(_blocks, "BLOCK_COLUMNS", 100)  # a dozen blocks, odd boundaries
    mix = _mix(20.0)
    payload = np.random.default_rng(5).integers(0, 256, payload_bytes, np.uint8).tobytes()
    got = embedding.embed_mix(mix, KEY, payload, verify=False).samples
    want = _whole_cover(mix, payload)
    # The SNR budget's base is summed block by block (another order): the same values, or a
    # last-bit difference where that rounding tips a sample (none on this cover today).
    assert got.shape == want.shape
    np.testing.assert_array_max_ulp(got, want, maxulp=1)


def test_marking_is_the_same_bits_on_one_thread_or_many(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_blocks, "BLOCK_COLUMNS", 64)
    mix = _mix(12.0)
    payload = bytes(range(60))
    many = embedding.embed_mix(mix, KEY, payload).samples.tobytes()
    monkeypatch.setattr(_blocks, "MAX_THREADS", 1)
    assert embedding.embed_mix(mix, KEY, payload).samples.tobytes() == many
