"""A whole cover's STFT work cut into fixed blocks of frames, run on a few threads.

numpy's array loops and ``scipy.fft`` release the GIL, so blocks of a few hundred frames run
in parallel on threads, and a block's temporaries (its frames, its spectrum) stay a few
megabytes whatever the cover's length. Blocks are cut at fixed places (:data:`BLOCK_COLUMNS`),
never by the number of threads, and every value a block computes depends on its own frames
alone (each frame's FFT is computed on its own; tiles are summed from their own frames), so
the result is the same bits on one thread or many, on any machine.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final, TypeVar

import numpy as np
import numpy.typing as npt

from subtone.robust._dsp import FRAME, HOP, frame_energies, stft_span

__all__ = ["BLOCK_COLUMNS", "Pool", "energies", "pool", "spans"]

BLOCK_COLUMNS: Final = 512
"""Columns (frames) per block: 8 s of working mix, 1 MB of its samples in double precision
(a core's L2 cache holds a block's working set)."""
MAX_THREADS: Final = 4

T = TypeVar("T")
Pool = ThreadPoolExecutor


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows: the desktop client
        return os.cpu_count() or 1


def pool() -> ThreadPoolExecutor:
    """Threads for one call's blocks (as many as the cores this process may use, at most
    :data:`MAX_THREADS`); the caller closes it (``with pool() as p``)."""
    return ThreadPoolExecutor(max(1, min(MAX_THREADS, _cores())), thread_name_prefix="robust")


def spans(first: int, stop: int) -> list[tuple[int, int]]:
    """``[first, stop)`` cut into ``[a, b)`` pieces of :data:`BLOCK_COLUMNS` (the last one
    shorter)."""
    size = BLOCK_COLUMNS
    return [(a, min(a + size, stop)) for a in range(first, stop, size)]


def run(p: ThreadPoolExecutor, call: Callable[..., T], *args: Iterable[object]) -> list[T]:
    """``call`` over the zipped ``args`` on ``p``, the results in order."""
    return list(p.map(call, *args))


def frames_in(samples: int) -> int:
    """Whole frames in ``samples`` samples (what :func:`~subtone.robust._dsp.stft` returns)."""
    return max(0, (samples - FRAME) // HOP + 1)


def energies(
    x: npt.NDArray[np.floating[Any]], edges: npt.NDArray[np.int64], p: ThreadPoolExecutor
) -> npt.NDArray[np.float64]:
    """``frame_energies(stft(x), edges)``, the same values, block by block on ``p``: the
    cover's spectrum is never whole in memory."""
    parts = run(p, lambda s: frame_energies(stft_span(x, *s), edges), spans(0, frames_in(len(x))))
    return np.concatenate(parts) if parts else np.zeros((0, len(edges) - 1))
