import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from subtone.stego import kernel

keys = st.binary(min_size=32, max_size=32)


@given(key=keys, length=st.integers(1, kernel.WINDOW_SAMPLES))
def test_positions_are_a_permutation_of_the_window(key, length):
    perm = kernel.positions(key, length)
    assert np.array_equal(np.sort(perm), np.arange(length))


@given(key=keys, count=st.integers(0, 5000))
def test_a_prefix_of_positions_equals_the_full_order(key, count):
    full = kernel.positions(key, kernel.WINDOW_SAMPLES)
    assert np.array_equal(kernel.positions(key, kernel.WINDOW_SAMPLES, count), full[:count])


@given(
    key=keys,
    k=st.integers(1, 10),
    bps=st.sampled_from([16, 24, 32]),
    seed=st.integers(0, 2**32 - 1),
    length=st.integers(2000, 20000),
)
def test_embed_then_extract_is_exact_and_changes_at_most_one_per_block(key, k, bps, seed, length):
    rng = np.random.default_rng(seed)
    lo, hi = kernel.sample_range(bps)
    samples = rng.integers(lo, hi, length, endpoint=True).astype(np.int32)
    samples[:50] = hi  # full scale must never clip
    samples[50:100] = lo
    nblocks = (length - 10) // kernel.block_size(k)
    bits = rng.integers(0, 2, nblocks * k).astype(np.uint8)
    out = kernel.embed_window(samples, key, k=k, skip=10, bits=bits, bits_per_sample=bps)
    assert np.array_equal(kernel.extract_window(out, key, k=k, skip=10, nblocks=nblocks), bits)
    diff = out.astype(np.int64) - samples
    assert np.abs(diff).max(initial=0) <= 1
    assert out.min() >= lo and out.max() <= hi
    assert np.count_nonzero(diff) <= nblocks


def test_changes_are_plus_and_minus_one_not_lsb_replacement():
    rng = np.random.default_rng(7)
    key = bytes(range(32))
    samples = rng.integers(-1000, 1000, kernel.WINDOW_SAMPLES).astype(np.int32)
    bits = rng.integers(0, 2, kernel.WINDOW_SAMPLES).astype(np.uint8)
    out = kernel.embed_window(samples, key, k=1, skip=0, bits=bits, bits_per_sample=16)
    diff = out - samples
    # LSB replacement would only ever move even samples up and odd samples down.
    even_down = np.count_nonzero((samples % 2 == 0) & (diff == -1))
    odd_up = np.count_nonzero((samples % 2 == 1) & (diff == 1))
    assert even_down > 1000 and odd_up > 1000


@pytest.mark.parametrize("k", [0, -1, 17])
def test_k_out_of_range_is_a_value_error(k):
    samples = np.zeros(100, dtype=np.int32)
    with pytest.raises(ValueError, match="k must be"):
        kernel.embed_window(
            samples, bytes(32), k=k, skip=0, bits=np.zeros(0, np.uint8), bits_per_sample=16
        )
    with pytest.raises(ValueError, match="k must be"):
        kernel.extract_window(samples, bytes(32), k=k, skip=0, nblocks=0)
