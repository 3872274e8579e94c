"""InProcessEngine: the kernel behind the WindowEngine interface, with the models' checks."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import numpy as np
import pytest

from subtone.stego.engine import (
    DENSE_K,
    EmbedTask,
    ExtractTask,
    FlipMap,
    InProcessEngine,
    WindowEngine,
    check_tasks,
    flip_count,
    flip_indices,
    plane_bytes,
)
from subtone.stego.kernel import KEY_BYTES, WINDOW_BYTES, WINDOW_SAMPLES, block_size, sample_range

from . import reference_kernel as ref

ENGINE: WindowEngine = InProcessEngine()


def make_window(
    seed: int, length: int, bits_per_sample: int, k: int, skip: int
) -> tuple[np.ndarray, np.ndarray, EmbedTask]:
    rng = np.random.default_rng(seed)
    lo, hi = sample_range(bits_per_sample)
    samples = rng.integers(lo, hi, length, endpoint=True, dtype=np.int64).astype(np.int32)
    nblocks = (length - skip) // block_size(k)
    bits = rng.integers(0, 2, nblocks * k, dtype=np.uint8)
    plane = np.packbits(samples & 1, bitorder="little")
    task = EmbedTask(plane, length, rng.bytes(KEY_BYTES), k, skip, nblocks, np.packbits(bits))
    return samples, bits, task


def as_extract(task: EmbedTask, samples: np.ndarray | None = None) -> ExtractTask:
    plane = task.plane if samples is None else np.packbits(samples & 1, bitorder="little")
    return ExtractTask(plane, task.length, task.key, task.k, task.skip, task.nblocks)


@pytest.mark.parametrize(
    ("bits_per_sample", "length", "k", "skip"),
    [(16, WINDOW_SAMPLES, 5, 0), (24, 30_001, 3, 17), (32, 777, 1, 0), (16, 100, 8, 0)],
)
def test_round_trip_is_the_reference(bits_per_sample: int, length: int, k: int, skip: int) -> None:
    samples, bits, task = make_window(length, length, bits_per_sample, k, skip)
    want = ref.embed_window(samples, task.key, k=k, skip=skip, bits=bits, bits_per_sample=16)

    (flips,) = ENGINE.embed([task])

    indices = flip_indices(flips)
    assert indices.dtype == np.int32
    np.testing.assert_array_equal(indices, np.nonzero(want != samples)[0])
    assert flip_count(flips) == indices.size
    (packed,) = ENGINE.extract([as_extract(task, want)])
    assert packed.size == (bits.size + 7) // 8
    np.testing.assert_array_equal(np.unpackbits(packed, count=bits.size), bits)


def test_a_batch_is_its_tasks_one_by_one_and_may_share_a_plane() -> None:
    windows = [make_window(i, WINDOW_SAMPLES - 1000 * i, 16, 1 + i, 0) for i in range(5)]
    tasks = [t for _, _, t in windows]
    # Window 0's header and payload share its plane.
    tasks.append(replace(tasks[0], k=1, skip=0, nblocks=128, bits=np.zeros(16, np.uint8)))
    tasks[0] = replace(tasks[0], skip=128, nblocks=tasks[0].nblocks - 128)
    together = ENGINE.embed(tasks)
    for task, flips in zip(tasks, together, strict=True):
        np.testing.assert_array_equal(flip_indices(ENGINE.embed([task])[0]), flip_indices(flips))
    extract = [as_extract(t) for t in tasks]
    for task, bits in zip(extract, ENGINE.extract(extract), strict=True):
        np.testing.assert_array_equal(ENGINE.extract([task])[0], bits)


def test_no_blocks_flip_nothing() -> None:
    _, _, task = make_window(1, 5000, 16, 4, 0)
    empty = replace(task, nblocks=0, bits=np.zeros(0, np.uint8))
    assert flip_count(ENGINE.embed([empty])[0]) == 0
    assert ENGINE.extract([as_extract(empty)])[0].size == 0
    assert ENGINE.embed([]) == [] and ENGINE.extract([]) == []


def test_threads_get_the_same_answers() -> None:
    tasks = [[make_window(10 + i, 60_000, 16, 2 + i % 3, i)[2]] for i in range(8)]
    alone = [ENGINE.embed(t) for t in tasks]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(ENGINE.embed, tasks))
    for a, b in zip(alone, together, strict=True):
        np.testing.assert_array_equal(flip_indices(a[0]), flip_indices(b[0]))


def test_dense_tasks_are_answered_as_the_kernels_bitmap() -> None:
    """A batch of dense tasks (k <= DENSE_K) gets FlipMaps, as Triton answers them: the
    same flips as indices would be, bits past a short window's end clear. A batch with a
    sparse task gets indices for all."""
    dense = [make_window(20 + k, length, 16, k, 0)[2] for k, length in ((1, 1000), (2, 70_001))]
    sparse = make_window(30, 5000, 16, DENSE_K + 1, 0)[2]

    answers = ENGINE.embed(dense)
    mixed = ENGINE.embed([*dense, sparse])

    for task, flips, indices in zip(dense, answers, mixed[:2], strict=True):
        assert isinstance(flips, FlipMap) and not isinstance(indices, FlipMap)
        assert flips.bits.size == plane_bytes(task.length)
        np.testing.assert_array_equal(flips.indices(), indices)
        assert flips.count == indices.size > task.nblocks // 4
    assert not isinstance(mixed[2], FlipMap)


GOOD = make_window(3, 4096, 16, 3, 0)[2]


@pytest.mark.parametrize(
    ("task", "message"),
    [
        (replace(GOOD, k=0), "k must be in 1..16"),
        (replace(GOOD, k=17), "k must be in 1..16"),
        (replace(GOOD, skip=2), "do not fit"),
        (replace(GOOD, skip=-1), "do not fit"),
        (replace(GOOD, key=GOOD.key[:31]), "key has 32 bytes"),
        (replace(GOOD, length=0, nblocks=0), "length must be"),
        (replace(GOOD, length=WINDOW_SAMPLES + 1), "length must be"),
        (replace(GOOD, plane=GOOD.plane[:-1]), "a plane of 4096 samples has 512..32768 bytes"),
        (replace(GOOD, plane=np.zeros(WINDOW_BYTES + 1, np.uint8)), "32768 bytes, got 32769"),
        (replace(GOOD, bits=GOOD.bits[:-1]), "bytes of bits"),
    ],
)
def test_bad_embed_tasks_are_refused(task: EmbedTask, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ENGINE.embed([task])
    with pytest.raises(ValueError, match=f"window 1: .*{message}"):
        ENGINE.embed([GOOD, task])


@pytest.mark.parametrize(
    ("k", "skip", "nblocks", "key", "message"),
    [
        (0, 0, 1, bytes(KEY_BYTES), "k must be in 1..16"),
        (3, 0, 586, bytes(KEY_BYTES), "586 blocks of 7 samples after 0 do not fit"),
        (3, 0, -1, bytes(KEY_BYTES), "do not fit"),
        (3, 0, 1, bytes(5), "key has 32 bytes, got 5"),
    ],
)
def test_bad_extract_tasks_are_refused(
    k: int, skip: int, nblocks: int, key: bytes, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        ENGINE.extract([ExtractTask(GOOD.plane, GOOD.length, key, k, skip, nblocks)])


def test_checks_accept_what_fits_exactly() -> None:
    check_tasks([10], [7 * 10 + 3], [KEY_BYTES], [3], [3], [10], [4])
    with pytest.raises(ValueError, match="10 blocks of 3 bits need 4 bytes of bits, got 3"):
        check_tasks([10], [73], [KEY_BYTES], [3], [3], [10], [3])
    with pytest.raises(ValueError, match="11 blocks of 7 samples after 3 do not fit"):
        check_tasks([10], [73], [KEY_BYTES], [3], [3], [11])


def test_close_is_harmless() -> None:
    engine = InProcessEngine()
    engine.close()
    engine.close()
