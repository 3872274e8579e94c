"""How the codec feeds an engine: the plane read window by window, windows grouped into
batches, and up to ``depth`` batches in flight on a thread pool, results handed on in order.

Private to :mod:`subtone.stego.codec`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import BinaryIO, TypeVar

import numpy as np
import numpy.typing as npt

from subtone.stego.engine import plane_bytes
from subtone.stego.layout import StegoError
from subtone.stego.window import WINDOW_BYTES

__all__ = ["batches", "per_call", "plane_windows", "scheduled"]

ROUNDS = 4
"""Rounds of ``concurrency`` calls a short cover's windows are spread over at least."""

UInt8Array = npt.NDArray[np.uint8]
Batch = tuple[list[int], list[UInt8Array]]
R = TypeVar("R")
T = TypeVar("T")


def plane_windows(stream: BinaryIO, samples: int) -> Iterator[UInt8Array]:
    """A plane stream of ``samples`` samples, one window at a time."""
    left = plane_bytes(samples)
    while left:
        want = min(WINDOW_BYTES, left)
        parts, got = [], 0
        while got < want:
            part = stream.read(want - got)
            if not part:
                raise StegoError(
                    f"The LSB plane is truncated: {samples:,} samples need "
                    f"{plane_bytes(samples):,} bytes.",
                    code="truncated",
                )
            parts.append(part)
            got += len(part)
        left -= want
        yield np.frombuffer(b"".join(parts), dtype=np.uint8)


def batches(planes: Iterable[UInt8Array], size: int, stop: int | None = None) -> Iterator[Batch]:
    """Group windows' planes ``size`` at a time, with their indices (up to window ``stop``)."""
    indices: list[int] = []
    batch: list[UInt8Array] = []
    for index, plane in enumerate(planes):
        if stop is not None and index > stop:
            break
        indices.append(index)
        batch.append(plane)
        if len(batch) == size:
            yield indices, batch
            indices, batch = [], []
    if batch:
        yield indices, batch


def per_call(windows: int, windows_per_call: int, concurrency: int) -> int:
    """Windows per engine call: at most ``windows_per_call``, fewer for a short cover so that
    its windows still spread over several rounds of ``concurrency`` calls (work is shared
    out, and progress moves)."""
    return max(1, min(windows_per_call, -(-windows // (ROUNDS * max(1, concurrency)))))


def _ordered(
    pool: ThreadPoolExecutor,
    items: Iterable[tuple[list[int], T]],
    work: Callable[[list[int], T], R],
    depth: int,
) -> Iterator[tuple[list[int], R]]:
    """Run ``work`` on up to ``depth`` batches at once, yielding (indices, results) in order.

    ``items`` is consumed in the calling thread, in order (an embed's payload bits are read
    from a stream as its windows come)."""
    pending: deque[tuple[list[int], Future[R]]] = deque()
    try:
        for indices, batch in items:
            pending.append((indices, pool.submit(work, indices, batch)))
            if len(pending) >= depth:
                first, future = pending.popleft()
                yield first, future.result()
        while pending:
            first, future = pending.popleft()
            yield first, future.result()
    finally:
        for _, future in pending:
            future.cancel()


def scheduled(
    items: Iterable[tuple[list[int], T]],
    work: Callable[[list[int], T], R],
    concurrency: int,
    name: str,
) -> Iterator[tuple[list[int], R]]:
    """:func:`_ordered` on a pool of ``concurrency`` threads named after ``name``, shut down
    (pending batches cancelled) when the iteration ends or is abandoned."""
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix=name) as pool:
        yield from _ordered(pool, items, work, concurrency)
