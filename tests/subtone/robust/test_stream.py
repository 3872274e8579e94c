"""Block-by-block resampling gives resample_poly's output bit for bit, whatever the blocks."""

from __future__ import annotations

from math import gcd

import numpy as np
import pytest
from scipy.signal import resample_poly

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
