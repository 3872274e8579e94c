"""The numba kernel over the packed LSB plane, checked against the sample-based numpy
reference kernel of format v1 (tests/subtone/stego/reference_kernel.py)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from subtone.stego import kernel

from . import reference_kernel as ref

W = kernel.WINDOW_SAMPLES
keys = st.binary(min_size=32, max_size=32)


def cover(seed: int, length: int, bps: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lo, hi = kernel.sample_range(bps)
    samples = rng.integers(lo, hi, length, endpoint=True, dtype=np.int64).astype(np.int32)
    samples[: length // 20] = hi  # full scale must never clip
    samples[length // 20 : length // 10] = lo
    return samples


def plane_of(samples: np.ndarray) -> np.ndarray:
    return np.packbits(samples & 1, bitorder="little")


def check_against_reference(seed: int, length: int, bps: int, k: int, skip: int) -> None:
    rng = np.random.default_rng(seed)
    key = rng.bytes(32)
    samples = cover(seed, length, bps)
    nblocks = max(0, (length - skip) // kernel.block_size(k))
    bits = rng.integers(0, 2, nblocks * k).astype(np.uint8)
    want = ref.embed_window(samples, key, k=k, skip=skip, bits=bits, bits_per_sample=bps)

    flips = kernel.embed_flips(plane_of(samples), key, length=length, k=k, skip=skip, bits=bits)

    np.testing.assert_array_equal(flips, np.nonzero(want != samples)[0])
    got = samples.copy()
    kernel.apply_flips(got, key, flips, bps)
    np.testing.assert_array_equal(got, want)
    read = kernel.extract_bits(plane_of(want), key, length=length, k=k, skip=skip, nblocks=nblocks)
    np.testing.assert_array_equal(read, bits)
    np.testing.assert_array_equal(
        kernel.extract_bits(plane_of(samples), key, length=length, k=k, skip=skip, nblocks=nblocks),
        ref.extract_window(samples, key, k=k, skip=skip, nblocks=nblocks),
    )


@pytest.mark.parametrize("k", range(1, 17))
def test_every_k_matches_the_reference_on_a_full_window(k):
    check_against_reference(k, W, 16, k, 128 if k % 2 else 0)


@pytest.mark.parametrize(
    ("length", "bps", "k", "skip"),
    [(W - 1, 16, 1, 0), (W // 2 + 3, 24, 2, 128), (100_003, 24, 3, 21), (65_536, 32, 16, 1),
     (777, 16, 1, 0), (9, 16, 3, 2), (1, 24, 1, 0), (1000, 16, 16, 0)],
)  # fmt: skip
def test_short_windows_match_the_reference(length, bps, k, skip):
    check_against_reference(length + k, length, bps, k, skip)


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    length=st.integers(1, 40_000),
    k=st.integers(1, 10),
    bps=st.sampled_from([16, 24, 32]),
    skip=st.integers(0, 300),
)
def test_random_windows_match_the_reference(seed, length, k, bps, skip):
    check_against_reference(seed, length, bps, k, min(skip, length))


@settings(max_examples=20, deadline=None)
@given(key=keys, length=st.integers(1, W))
def test_positions_are_the_references(key, length):
    np.testing.assert_array_equal(kernel.positions(key, length), ref.positions(key, length))


@given(key=keys, count=st.integers(0, 5000))
def test_a_prefix_of_positions_equals_the_full_order(key, count):
    full = kernel.positions(key, W)
    assert np.array_equal(kernel.positions(key, W, count), full[:count])


def test_the_batch_is_the_windows_one_by_one():
    rng = np.random.default_rng(5)
    lengths = [W, W, 70_001, 1000]
    ks, skips = [1, 4, 3, 16], [128, 0, 5, 0]
    planes = [rng.integers(0, 256, (n + 7) // 8, dtype=np.uint8) for n in lengths]
    key_list = [rng.bytes(32) for _ in lengths]
    nblocks = [(n - s) // kernel.block_size(k) for n, s, k in zip(lengths, skips, ks, strict=True)]
    bits = [rng.integers(0, 2, b * k).astype(np.uint8) for b, k in zip(nblocks, ks, strict=True)]
    packed = np.packbits(np.concatenate(bits))
    starts = np.cumsum([0] + [b.size for b in bits[:-1]])
    offsets = np.cumsum([0] + [p.size for p in planes[:-1]])
    joined = np.concatenate(planes)

    flips, counts = kernel.embed_flips_batch(
        joined, offsets, key_list, lengths, ks, skips, nblocks, packed, starts
    )
    out = kernel.extract_bits_batch(
        joined, offsets, key_list, lengths, ks, skips, nblocks, np.zeros(packed.size, np.uint8),
        starts,
    )  # fmt: skip

    for i, parts in enumerate(np.split(flips, np.cumsum(counts)[:-1])):
        alone = kernel.embed_flips(
            planes[i], key_list[i], length=lengths[i], k=ks[i], skip=skips[i], bits=bits[i]
        )
        np.testing.assert_array_equal(parts, alone)
        read = kernel.extract_bits(
            planes[i], key_list[i], length=lengths[i], k=ks[i], skip=skips[i], nblocks=nblocks[i]
        )
        np.testing.assert_array_equal(
            np.unpackbits(out)[starts[i] : starts[i] + bits[i].size], read
        )


@pytest.mark.parametrize("start", [1, 3, 7, 8, 13])
@pytest.mark.parametrize("nblocks", [W - 128, W - 133])
def test_single_sample_blocks_read_their_bits_from_any_bit(start, nblocks):
    """k = 1 in a full window is embedded in one pass reading the bits a byte at a time:
    the same flips, as indices and as a bitmap, whatever bit its bits start at."""
    rng = np.random.default_rng(start)
    samples = cover(start, W, 16)
    key = rng.bytes(32)
    bits = rng.integers(0, 2, nblocks).astype(np.uint8)
    stego = ref.embed_window(samples, key, k=1, skip=128, bits=bits, bits_per_sample=16)
    want = np.nonzero(stego != samples)[0]
    junk = rng.integers(0, 2, start).astype(np.uint8)
    packed = np.packbits(np.concatenate([junk, bits, junk]))
    args = (plane_of(samples), [0], [key], [W], [1], [128], [nblocks], packed, [start])

    flips, counts = kernel.embed_flips_batch(*args)
    maps, map_counts = kernel.embed_maps_batch(*args)

    np.testing.assert_array_equal(flips, want)
    assert counts.tolist() == map_counts.tolist() == [want.size]
    np.testing.assert_array_equal(np.flatnonzero(np.unpackbits(maps[0], bitorder="little")), want)


def test_changes_are_plus_and_minus_one_not_lsb_replacement():
    rng = np.random.default_rng(7)
    key = bytes(range(32))
    samples = rng.integers(-1000, 1000, W).astype(np.int32)
    bits = rng.integers(0, 2, W).astype(np.uint8)
    flips = kernel.embed_flips(plane_of(samples), key, length=W, k=1, skip=0, bits=bits)
    out = samples.copy()
    kernel.apply_flips(out, key, flips, 16)
    diff = out - samples
    # LSB replacement would only ever move even samples up and odd samples down.
    even_down = np.count_nonzero((samples % 2 == 0) & (diff == -1))
    odd_up = np.count_nonzero((samples % 2 == 1) & (diff == 1))
    assert even_down > 1000 and odd_up > 1000
    np.testing.assert_array_equal(diff[flips], kernel.signs(key, flips))


@pytest.mark.parametrize("bps", [16, 24, 32])
def test_full_scale_samples_move_inwards(bps):
    lo, hi = kernel.sample_range(bps)
    samples = np.array([lo, hi, lo, hi, 0, 1], dtype=np.int32)
    where = np.arange(6, dtype=np.int32)
    out = samples.copy()
    kernel.apply_flips(out, bytes(32), where, bps)
    assert out[:4].tolist() == [lo + 1, hi - 1, lo + 1, hi - 1]
    pcm = bytearray(b"".join(int(v).to_bytes(bps // 8, "little", signed=True) for v in samples))
    kernel.apply_flips_pcm(pcm, bytes(32), where, bps)
    decoded = [
        int.from_bytes(pcm[i : i + bps // 8], "little", signed=True)
        for i in range(0, len(pcm), bps // 8)
    ]
    assert decoded == out.tolist()


@pytest.mark.parametrize("bps", [16, 24, 32])
def test_pack_lsb_is_packbits_of_the_lsbs(bps):
    samples = cover(bps, 1001, bps)
    data = b"".join(int(v).to_bytes(bps // 8, "little", signed=True) for v in samples)
    np.testing.assert_array_equal(kernel.pack_lsb(data, bps), plane_of(samples))


@settings(max_examples=50, deadline=None)
@given(
    data=st.binary(min_size=1, max_size=64),
    src_start=st.integers(0, 100),
    dst_start=st.integers(0, 100),
    n=st.integers(0, 300),
)
def test_copy_bits(data, src_start, dst_start, n):
    src = np.frombuffer(data, np.uint8)
    src_start = min(src_start, src.size * 8)
    n = min(n, src.size * 8 - src_start)
    dst = np.frombuffer(bytes(range(64)) * 2, np.uint8).copy()
    want = np.unpackbits(dst)
    want[dst_start : dst_start + n] = np.unpackbits(src)[src_start : src_start + n]
    kernel.copy_bits(dst, dst_start, src, src_start, n)
    np.testing.assert_array_equal(np.unpackbits(dst), want)


@pytest.mark.parametrize("k", [0, -1, 17])
def test_k_out_of_range_is_a_value_error(k):
    plane = np.zeros(13, dtype=np.uint8)
    with pytest.raises(ValueError, match="k must be"):
        kernel.embed_flips(plane, bytes(32), length=100, k=k, skip=0, bits=np.zeros(0, np.uint8))
    with pytest.raises(ValueError, match="k must be"):
        kernel.extract_bits(plane, bytes(32), length=100, k=k, skip=0, nblocks=0)


@pytest.mark.parametrize(
    ("length", "skip", "nblocks", "message"),
    [(0, 0, 0, "length must be"), (W + 1, 0, 0, "length must be"), (100, 90, 2, "do not fit"),
     (100, -1, 0, "do not fit"), (200, 0, 1, "plane runs past")],
)  # fmt: skip
def test_the_batch_refuses_what_would_read_out_of_bounds(length, skip, nblocks, message):
    with pytest.raises(ValueError, match=message):
        kernel.extract_bits_batch(
            np.zeros(13, np.uint8), [0], [bytes(32)], [length], [3], [skip], [nblocks]
        )
