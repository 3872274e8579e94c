"""Block-by-block resampling gives resample_poly's output bit for bit, whatever the blocks."""

from __future__ import annotations

from math import gcd

import numpy as np
import pytest
from scipy.signal import resample_poly

from subtone.robust._dsp import resample_quick
from subtone.robust._stream import Resampler, resample_blocks

PAIRS = [(44_100, 16_000), (48_000, 16_000), (16_000, 44_100), (16_000, 48_000),
         (22_050, 16_000), (8_000, 16_000), (16_000, 16_000), (96_000, 16_000)]  # fmt: skip


def reference(x: np.ndarray, rate_from: int, rate_to: int) -> np.ndarray:
    g = gcd(rate_from, rate_to)
    return resample_poly(x, rate_to // g, rate_from // g)


@pytest.mark.parametrize(("rate_from", "rate_to"), PAIRS)
@pytest.mark.parametrize("block", [1, 777, 65_536])
def test_blocks_give_resample_poly_bit_for_bit(rate_from, rate_to, block):
    x = np.random.default_rng(rate_from + block).standard_normal(rate_from // 3 + 17)
    got = resample_blocks(x, rate_from, rate_to, block)
    want = reference(x, rate_from, rate_to)
    assert got.dtype == want.dtype == np.float64
    np.testing.assert_array_equal(got, want)


def test_short_signals_and_uneven_blocks():
    rng = np.random.default_rng(0)
    for n in (1, 2, 5, 100, 441, 442):
        x = rng.standard_normal(n)
        r = Resampler(44_100, 16_000, n)
        cuts = sorted(rng.integers(0, n + 1, 3))
        parts = [r.feed(x[a:b]) for a, b in zip([0, *cuts], [*cuts, n], strict=True)]
        got = np.concatenate([*parts, r.finish()])
        np.testing.assert_array_equal(got, reference(x, 44_100, 16_000))


def test_feeding_more_or_less_than_announced_is_an_error():
    r = Resampler(44_100, 16_000, 10)
    with pytest.raises(ValueError):
        r.feed(np.zeros(11))
    r.feed(np.zeros(5))
    with pytest.raises(ValueError):
        r.finish()


@pytest.mark.parametrize(("rate_from", "rate_to"), PAIRS)
def test_the_quick_resampler_is_resample_poly_up_to_rounding(rate_from, rate_to):
    x = np.random.default_rng(rate_to).standard_normal(rate_from // 4 + 5)
    got = resample_quick(x, rate_from, rate_to)
    want = reference(x, rate_from, rate_to)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def _gathered_tap_by_tap(x, rate_from, rate_to):
    """The quick resampler as first written: each tap gathered where it lands in bounds."""
    from math import gcd

    g = gcd(rate_from, rate_to)
    up, down = rate_to // g, rate_from // g
    half = 10 * max(up, down)
    m = np.arange(2 * half + 1) - half
    cutoff = 1.0 / max(up, down)
    h = cutoff * np.sinc(cutoff * m) * np.kaiser(2 * half + 1, 5.0)
    h *= up / h.sum()
    n_out = -(-len(x) * up // down)
    first = np.arange(n_out) * down + half
    k0 = first % up
    y = np.zeros(n_out)
    for t in range(-(-(2 * half + 1) // up)):
        k = k0 + t * up
        i = (first - k) // up
        ok = (k < len(h)) & (i >= 0) & (i < len(x))
        y[ok] += h[k[ok]] * x[i[ok]]
    return y


@pytest.mark.parametrize(("rate_from", "rate_to"), PAIRS)
@pytest.mark.parametrize("length", [1, 7, 4_001])
def test_the_quick_resampler_gives_the_same_bits_as_gathering_tap_by_tap(
    rate_from, rate_to, length
):
    """Reading zero padding instead of skipping out-of-bounds taps changes no bit: the
    robust probe's z (and the thresholds measured on it) stay what they were."""
    if rate_from == rate_to:
        pytest.skip("no resampling")
    x = np.random.default_rng(length).standard_normal(length)
    np.testing.assert_array_equal(
        resample_quick(x, rate_from, rate_to), _gathered_tap_by_tap(x, rate_from, rate_to)
    )


def test_a_probe_loads_no_scipy_signal(tmp_path):
    """A wrong passphrase is told from a file's first seconds without loading scipy.signal
    (which takes seconds on a busy machine)."""
    import subprocess
    import sys

    import soundfile as sf

    path = tmp_path / "x.wav"
    sf.write(path, np.random.default_rng(1).standard_normal((44_100 * 14, 2)) * 0.1, 44_100)
    code = (
        "import sys; from subtone.robust import file_probe; "
        f"file_probe({str(path)!r}, bytes(32)); "
        "print('scipy.signal' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
