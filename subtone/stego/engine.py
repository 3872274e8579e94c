"""Where windows are embedded and extracted: in this process, or on a Triton server.

An engine works on windows' **LSB planes** (:mod:`subtone.stego.kernel`), several windows a
call: the codec hands it a batch of tasks and may run several batches at once from a thread
pool, so every engine is thread-safe. :class:`InProcessEngine` calls the kernel directly;
:class:`server.integrations.triton.TritonEngine` sends the batch to the ``stego_embed`` /
``stego_extract`` models, which run the same kernel after the same checks
(:func:`check_tasks`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from subtone.stego.window import (
    DENSE_K,
    KEY_BYTES,
    MAX_K,
    WINDOW_BYTES,
    WINDOW_SAMPLES,
    FlipMap,
    Flips,
    flip_count,
    flip_indices,
)

__all__ = [
    "DENSE_K",
    "EmbedTask",
    "ExtractTask",
    "FlipMap",
    "Flips",
    "InProcessEngine",
    "WindowEngine",
    "answered_as_maps",
    "check_tasks",
    "flip_count",
    "flip_indices",
    "plane_bytes",
]

Int32Array = npt.NDArray[np.int32]
Int64Array = npt.NDArray[np.int64]
UInt8Array = npt.NDArray[np.uint8]


def plane_bytes(length: int) -> int:
    """Bytes of the packed LSB plane of ``length`` samples."""
    return (length + 7) // 8


@dataclass(frozen=True, eq=False)
class ExtractTask:
    """Read ``nblocks`` blocks of ``k`` bits from one window's LSB plane."""

    plane: UInt8Array
    """The window's packed LSB plane (``bitorder="little"``): at least
    ``plane_bytes(length)`` bytes; bits past ``length`` are ignored."""
    length: int
    """Samples in the window (:data:`WINDOW_SAMPLES`, less in the cover's last window)."""
    key: bytes
    """The window key (:data:`KEY_BYTES` bytes)."""
    k: int
    """Hamming parameter: each block of ``2**k - 1`` samples carries ``k`` bits."""
    skip: int
    """Leading keyed positions left alone (the payload header's, in window 0)."""
    nblocks: int


@dataclass(frozen=True, eq=False)
class EmbedTask(ExtractTask):
    """Which samples of one window must flip for it to carry ``nblocks * k`` bits."""

    bits: UInt8Array
    """The bits, packed most significant first (``np.packbits``): the first
    ``nblocks * k`` are used."""


class WindowEngine(Protocol):
    """Embeds in and extracts from batches of windows; safe to call from several threads."""

    def embed(self, tasks: Sequence[EmbedTask]) -> Sequence[Flips]:
        """For each task, the samples to flip: their window-relative indices (ascending),
        or, for a dense task (:data:`DENSE_K`), possibly their :class:`FlipMap`."""
        ...

    def extract(self, tasks: Sequence[ExtractTask]) -> list[UInt8Array]:
        """For each task, its ``nblocks * k`` bits packed most significant first
        (``plane_bytes``-style rounding up, zero-padded)."""
        ...

    def close(self) -> None:
        """Release what the engine holds (connections); it is not used afterwards."""
        ...


def answered_as_maps(tasks: Sequence[ExtractTask]) -> bool:
    """Whether an engine answers an embed of ``tasks`` with :class:`FlipMap` s: when every
    task is dense (``k`` up to :data:`DENSE_K`). The rule both engines follow."""
    return all(t.k <= DENSE_K for t in tasks)


def check_tasks(
    plane_sizes: npt.ArrayLike,
    lengths: npt.ArrayLike,
    key_sizes: npt.ArrayLike,
    ks: npt.ArrayLike,
    skips: npt.ArrayLike,
    nblocks: npt.ArrayLike,
    bits_sizes: npt.ArrayLike | None = None,
) -> None:
    """Raise :class:`ValueError` (a message for the caller) if a window cannot be worked on.

    One value per window: the bytes of its plane (and of its packed bits, for an embed), its
    length, the bytes of its key, ``k``, ``skip`` and ``nblocks``.
    """
    sizes = np.asarray(plane_sizes, dtype=np.int64).reshape(-1)
    n = sizes.size
    columns = [
        np.asarray(v, dtype=np.int64).reshape(-1) for v in (lengths, key_sizes, ks, skips, nblocks)
    ]
    if any(c.size != n for c in columns):
        raise ValueError("every window needs a plane, a length, a key, k, skip and nblocks")
    length, key, k, skip, blocks = columns
    for i in range(n):
        where = f"window {i}: " if n > 1 else ""
        if not 0 < length[i] <= WINDOW_SAMPLES:
            raise ValueError(f"{where}length must be in 1..{WINDOW_SAMPLES}, got {length[i]}")
        if sizes[i] < plane_bytes(int(length[i])) or sizes[i] > WINDOW_BYTES:
            raise ValueError(
                f"{where}a plane of {length[i]} samples has {plane_bytes(int(length[i]))}.."
                f"{WINDOW_BYTES} bytes, got {sizes[i]}"
            )
        if key[i] != KEY_BYTES:
            raise ValueError(f"{where}a window key has {KEY_BYTES} bytes, got {key[i]}")
        if not 1 <= k[i] <= MAX_K:
            raise ValueError(f"{where}k must be in 1..{MAX_K}, got {k[i]}")
        n_samples = (1 << int(k[i])) - 1
        if skip[i] < 0 or blocks[i] < 0 or skip[i] + blocks[i] * n_samples > length[i]:
            raise ValueError(
                f"{where}{blocks[i]} blocks of {n_samples} samples after {skip[i]} do not fit "
                f"a window of {length[i]}"
            )
    if bits_sizes is not None:
        bits = np.asarray(bits_sizes, dtype=np.int64).reshape(-1)
        for i in range(n):
            if bits[i] * 8 < blocks[i] * k[i]:
                where = f"window {i}: " if n > 1 else ""
                raise ValueError(
                    f"{where}{blocks[i]} blocks of {k[i]} bits need "
                    f"{plane_bytes(int(blocks[i] * k[i]))} bytes of bits, got {bits[i]}"
                )


def _planes(tasks: Sequence[ExtractTask]) -> tuple[UInt8Array, Int64Array]:
    """The tasks' planes, concatenated (one copy per distinct plane), and their offsets."""
    parts: list[UInt8Array] = []
    seen: dict[int, int] = {}
    offsets = np.zeros(len(tasks), dtype=np.int64)
    at = 0
    for i, task in enumerate(tasks):
        plane = np.asarray(task.plane, dtype=np.uint8).reshape(-1)
        if id(task.plane) in seen:
            offsets[i] = seen[id(task.plane)]
            continue
        seen[id(task.plane)] = offsets[i] = at
        parts.append(plane)
        at += plane.size
    joined = np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint8)
    return joined, offsets


def _check(tasks: Sequence[ExtractTask], embed: bool) -> None:
    check_tasks(
        [np.asarray(t.plane).size for t in tasks],
        [t.length for t in tasks],
        [len(t.key) for t in tasks],
        [t.k for t in tasks],
        [t.skip for t in tasks],
        [t.nblocks for t in tasks],
        [np.asarray(t.bits).size for t in tasks if isinstance(t, EmbedTask)] if embed else None,
    )


def _columns(
    tasks: Sequence[ExtractTask],
) -> tuple[list[bytes], list[int], list[int], list[int], list[int]]:
    return (
        [bytes(t.key) for t in tasks],
        [t.length for t in tasks],
        [t.k for t in tasks],
        [t.skip for t in tasks],
        [t.nblocks for t in tasks],
    )


class InProcessEngine:
    """Runs the kernel in the calling thread (it releases the GIL).

    The kernel (numba and LLVM, some 60 MB) is imported on the first call, not with this
    module: the worker, which only talks to Triton, imports the engine's types without it."""

    def embed(self, tasks: Sequence[EmbedTask]) -> list[Flips]:
        """Dense tasks (all with ``k`` up to :data:`DENSE_K`) are answered as the kernel
        marks them (:class:`FlipMap`), as Triton answers them: turning half a window's
        samples into indices would cost more than finding them."""
        from subtone.stego.kernel import embed_flips_batch, embed_maps_batch

        if not tasks:
            return []
        _check(tasks, embed=True)
        planes, offsets = _planes(tasks)
        bits = [np.asarray(t.bits, dtype=np.uint8).reshape(-1) for t in tasks]
        starts = np.zeros(len(tasks), dtype=np.int64)
        starts[1:] = np.cumsum([b.size * 8 for b in bits[:-1]])
        args = (planes, offsets, *_columns(tasks), np.concatenate(bits), starts)
        if answered_as_maps(tasks):
            maps, counts = embed_maps_batch(*args)
            return [
                FlipMap(maps[i, : plane_bytes(t.length)], int(counts[i]))
                for i, t in enumerate(tasks)
            ]
        flips, counts = embed_flips_batch(*args)
        return list(np.split(flips, np.cumsum(counts)[:-1]))

    def extract(self, tasks: Sequence[ExtractTask]) -> list[UInt8Array]:
        from subtone.stego.kernel import extract_bits_batch

        if not tasks:
            return []
        _check(tasks, embed=False)
        planes, offsets = _planes(tasks)
        sizes = [plane_bytes(t.nblocks * t.k) for t in tasks]
        starts = np.zeros(len(tasks), dtype=np.int64)
        starts[1:] = np.cumsum(sizes[:-1])
        out = extract_bits_batch(planes, offsets, *_columns(tasks), None, starts * 8)
        return [out[s : s + size] for s, size in zip(starts.tolist(), sizes, strict=True)]

    def close(self) -> None:
        """Nothing to release."""
