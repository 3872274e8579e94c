import os

import pytest

from subtone.stego import layout
from subtone.stego.kernel import WINDOW_SAMPLES, block_size


def test_capacity_from_sample_count_alone():
    cap = layout.capacity(10 * WINDOW_SAMPLES)
    assert cap.max_payload_bytes == (10 * WINDOW_SAMPLES - layout.HEADER_BITS) // 8


def test_choose_k_is_the_largest_that_fits():
    samples = 50 * WINDOW_SAMPLES
    for size in (10, 1_000, 100_000, 1_000_000):
        k = layout.choose_k(samples, size)
        assert layout.capacity(samples).payload_bytes_at(k) >= size
        layout.plan(samples, size, k=k)
        if k < 16:
            with pytest.raises(layout.StegoError):
                layout.plan(samples, size, k=k + 1)


def test_small_payload_uses_large_k():
    assert layout.choose_k(50 * WINDOW_SAMPLES, 100) == 16


def test_plan_spreads_blocks_over_every_window_and_never_overfills():
    samples = 7 * WINDOW_SAMPLES + 12_345
    for size in (1, 500, 40_000, layout.capacity(samples).max_payload_bytes):
        plan = layout.plan(samples, size)
        n = block_size(plan.k)
        assert plan.total_blocks * plan.k >= size * 8
        for i, blocks in enumerate(plan.blocks):
            length = min(WINDOW_SAMPLES, samples - i * WINDOW_SAMPLES)
            assert blocks * n + plan.skip(i) <= length
        if plan.total_blocks >= len(plan.blocks):
            assert all(plan.blocks), plan.blocks


def test_over_capacity_is_refused_with_its_code():
    with pytest.raises(layout.StegoError) as e:
        layout.choose_k(WINDOW_SAMPLES, WINDOW_SAMPLES)
    assert e.value.code == "capacity_exceeded"


def test_empty_payload_is_refused_with_its_code():
    with pytest.raises(layout.StegoError) as e:
        layout.choose_k(WINDOW_SAMPLES, 0)
    assert e.value.code == "empty_secret"


def test_header_round_trip_and_wrong_key():
    k_pos = os.urandom(32)
    sealed = layout.seal_header(k_pos, layout.Header(k=5, payload_bytes=1234))
    assert layout.open_header(k_pos, sealed, 10 * WINDOW_SAMPLES) == layout.Header(5, 1234)
    with pytest.raises(layout.StegoError) as e:
        layout.open_header(os.urandom(32), sealed, 10 * WINDOW_SAMPLES)
    assert e.value.code == "no_payload"


def test_header_bytes_look_random_without_the_key():
    a = layout.seal_header(os.urandom(32), layout.Header(k=5, payload_bytes=1234))
    b = layout.seal_header(os.urandom(32), layout.Header(k=5, payload_bytes=1234))
    assert a != b


def test_window_keys_differ_per_window_and_key():
    k = os.urandom(32)
    assert layout.window_key(k, 0) != layout.window_key(k, 1)
    assert layout.window_key(k, 0) != layout.window_key(os.urandom(32), 0)
    assert layout.window_key(k, 3) == layout.window_key(k, 3)
