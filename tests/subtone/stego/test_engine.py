"""InProcessEngine: the kernel behind the WindowEngine interface, with the models' checks."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from subtone.stego.engine import (
    EmbedWindow,
    ExtractWindow,
    InProcessEngine,
    WindowEngine,
    check_embed,
    check_extract,
)
from subtone.stego.kernel import (
    KEY_BYTES,
    WINDOW_SAMPLES,
    block_size,
    embed_window,
    extract_window,
    sample_range,
)

ENGINE: WindowEngine = InProcessEngine()


def make_window(seed: int, length: int, bits_per_sample: int, k: int, skip: int) -> EmbedWindow:
    rng = np.random.default_rng(seed)
    lo, hi = sample_range(bits_per_sample)
    samples = rng.integers(lo, hi, length, endpoint=True, dtype=np.int64).astype(np.int32)
    samples[:16] = hi
    samples[16:32] = lo
    nblocks = (length - skip) // block_size(k)
    bits = rng.integers(0, 2, nblocks * k, dtype=np.uint8)
    return EmbedWindow(samples, rng.bytes(KEY_BYTES), k, skip, bits, bits_per_sample)


def as_extract(window: EmbedWindow, samples: np.ndarray) -> ExtractWindow:
    return ExtractWindow(samples, window.key, window.k, window.skip, window.nblocks)


@pytest.mark.parametrize(
    ("bits_per_sample", "length", "k", "skip"),
    [(16, WINDOW_SAMPLES, 5, 0), (24, 30_001, 3, 17), (32, 777, 1, 0), (16, 100, 8, 0)],
)
def test_round_trip_is_the_kernel(bits_per_sample: int, length: int, k: int, skip: int) -> None:
    window = make_window(length, length, bits_per_sample, k, skip)

    stego = ENGINE.embed(window)

    expected = embed_window(
        window.samples,
        window.key,
        k=k,
        skip=skip,
        bits=window.bits,
        bits_per_sample=bits_per_sample,
    )
    np.testing.assert_array_equal(stego, expected)
    assert stego.dtype == np.int32
    assert stego is not window.samples
    lo, hi = sample_range(bits_per_sample)
    assert lo <= stego.min()
    assert stego.max() <= hi
    bits = ENGINE.extract(as_extract(window, stego))
    np.testing.assert_array_equal(bits, window.bits)
    np.testing.assert_array_equal(
        ENGINE.extract(as_extract(window, window.samples)),
        extract_window(window.samples, window.key, k=k, skip=skip, nblocks=window.nblocks),
    )


def test_no_bits_leave_the_window_alone() -> None:
    window = make_window(1, 5000, 16, 4, 0)
    empty = EmbedWindow(window.samples, window.key, 4, 0, np.zeros(0, np.uint8), 16)
    assert empty.nblocks == 0
    np.testing.assert_array_equal(ENGINE.embed(empty), window.samples)
    assert ENGINE.extract(as_extract(empty, window.samples)).size == 0


def test_nblocks() -> None:
    window = make_window(2, 5000, 16, 4, 0)
    assert window.nblocks == window.bits.size // 4
    assert EmbedWindow(window.samples, window.key, 0, 0, window.bits, 16).nblocks == 0


def test_threads_get_the_same_answers() -> None:
    windows = [make_window(10 + i, 60_000, 16, 2 + i % 3, i) for i in range(8)]
    alone = [ENGINE.embed(w) for w in windows]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(ENGINE.embed, windows))
    for a, b in zip(alone, together, strict=True):
        np.testing.assert_array_equal(a, b)


GOOD = make_window(3, 4096, 16, 3, 0)


@pytest.mark.parametrize(
    ("window", "message"),
    [
        (EmbedWindow(GOOD.samples, GOOD.key, 0, 0, GOOD.bits[:0], 16), "k must be in 1..16"),
        (EmbedWindow(GOOD.samples, GOOD.key, 17, 0, GOOD.bits[:0], 16), "k must be in 1..16"),
        (
            EmbedWindow(GOOD.samples, GOOD.key, 3, 0, GOOD.bits, 8),
            r"bits_per_sample must be one of \(16, 24, 32\), got 8",
        ),
        (EmbedWindow(GOOD.samples, GOOD.key, 3, 2, GOOD.bits, 16), "do not fit"),
        (EmbedWindow(GOOD.samples, GOOD.key, 3, -1, GOOD.bits[:3], 16), "do not fit"),
        (EmbedWindow(GOOD.samples, GOOD.key[:31], 3, 0, GOOD.bits, 16), "key has 32 bytes"),
        (EmbedWindow(GOOD.samples[:0], GOOD.key, 3, 0, GOOD.bits[:0], 16), "length must be"),
        (
            EmbedWindow(np.zeros(WINDOW_SAMPLES + 1, np.int32), GOOD.key, 3, 0, GOOD.bits, 16),
            "length must be",
        ),
        (EmbedWindow(GOOD.samples * 4, GOOD.key, 3, 0, GOOD.bits, 16), "outside the 16-bit"),
        (EmbedWindow(GOOD.samples, GOOD.key, 3, 0, GOOD.bits[:-1], 16), "whole number"),
        (
            EmbedWindow(GOOD.samples.reshape(2, -1), GOOD.key, 3, 0, GOOD.bits[:3], 16),
            "one-dimensional",
        ),
    ],
)
def test_bad_embed_windows_are_refused(window: EmbedWindow, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ENGINE.embed(window)


@pytest.mark.parametrize(
    ("k", "skip", "nblocks", "key", "message"),
    [
        (0, 0, 1, bytes(KEY_BYTES), "k must be in 1..16"),
        (3, 0, 586, bytes(KEY_BYTES), "586 blocks of 7 samples after 0 do not fit"),
        (3, 0, -1, bytes(KEY_BYTES), "do not fit"),
        (3, 0, 1, bytes(5), "key has 32 bytes, got 5"),
    ],
)
def test_bad_extract_windows_are_refused(
    k: int, skip: int, nblocks: int, key: bytes, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        ENGINE.extract(ExtractWindow(GOOD.samples, key, k, skip, nblocks))


def test_checks_accept_what_fits_exactly() -> None:
    samples = np.zeros(7 * 10 + 3, np.int32)
    check_embed(samples, KEY_BYTES, k=3, skip=3, nblocks=10, bits=30, bits_per_sample=24)
    check_extract(samples, KEY_BYTES, k=3, skip=3, nblocks=10)
    with pytest.raises(ValueError, match="30 bits is not 9 blocks of 3 bits"):
        check_embed(samples, KEY_BYTES, k=3, skip=3, nblocks=9, bits=30, bits_per_sample=24)
    with pytest.raises(ValueError, match="11 blocks of 7 samples after 3 do not fit"):
        check_extract(samples, KEY_BYTES, k=3, skip=3, nblocks=11)


def test_close_is_harmless() -> None:
    engine = InProcessEngine()
    engine.close()
    engine.close()
