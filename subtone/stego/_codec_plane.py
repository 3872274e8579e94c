"""Embedding and extraction on a cover's LSB plane, window by window through an engine.

Private: the public names are re-exported by :mod:`subtone.stego.codec`.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

from subtone.stego import layout
from subtone.stego._bitstream import BitReader, BitWriter
from subtone.stego._windows import Batch, batches, per_call, plane_windows, scheduled
from subtone.stego.engine import (
    EmbedTask,
    ExtractTask,
    FlipMap,
    Flips,
    WindowEngine,
    flip_count,
    flip_indices,
)
from subtone.stego.layout import HEADER_BITS, StegoError
from subtone.stego.plane import header_from_plane

DEFAULT_CONCURRENCY = 4
"""Batches in flight at once: enough for Triton to batch them, little memory."""
DEFAULT_WINDOWS_PER_CALL = 16
"""Windows per engine call (512 KiB of plane): amortises the call's overhead. Measured through
Triton on 2 cores, 500 MB cover: 8 a call took 0.78 s to embed a 23 KB secret, 16 0.64 s,
32 0.62 s (a 1 MB secret: 0.68, 0.62, 0.53 s); the worker's peak RSS for a 10 MB secret's
decode was 152, 181 and 220 MB (Triton's 170, 173, 197)."""

Progress = Callable[[float], None]
Int32Array = npt.NDArray[np.int32]
UInt8Array = npt.NDArray[np.uint8]
WindowFlips = Callable[[int, Flips], None]
"""Called with each window's index and its flips (window-relative indices, ascending, or a
dense window's bitmap: :class:`~subtone.stego.engine.FlipMap`), in order."""
Window = tuple[UInt8Array, UInt8Array]
"""A window's plane and the payload bits it carries."""


@dataclass(frozen=True)
class PayloadStream:
    """A payload read from a stream as the windows need it (a worker reads a secret from
    storage this way): exactly ``size`` bytes are read from ``stream``."""

    stream: BinaryIO
    size: int


def _as_stream(payload: bytes | PayloadStream) -> PayloadStream:
    if isinstance(payload, PayloadStream):
        return payload
    return PayloadStream(io.BytesIO(payload), len(payload))


@dataclass(frozen=True)
class EmbedResult:
    k: int
    payload_bytes: int
    samples: int
    samples_changed: int

    @property
    def change_rate(self) -> float:
        return self.samples_changed / self.samples


def _too_short(samples: int) -> None:
    if samples <= HEADER_BITS:
        raise StegoError("This file is too short to hold a Subtone message.", code="no_payload")


@dataclass(frozen=True)
class _EmbedWork:
    """One batch of windows' flips: the payload header's (window 0) and the message's."""

    engine: WindowEngine
    samples: int
    k_pos: bytes
    plan: layout.Plan
    header_bits: UInt8Array

    @classmethod
    def of(cls, engine: WindowEngine, samples: int, k_pos: bytes, size: int) -> _EmbedWork:
        plan = layout.plan(samples, size)
        sealed = layout.seal_header(k_pos, layout.Header(k=plan.k, payload_bytes=size))
        header_bits = np.frombuffer(sealed, dtype=np.uint8)
        return cls(engine, samples, k_pos, plan, header_bits)

    def __call__(self, indices: list[int], windows: list[Window]) -> list[Flips]:
        tasks, owners = self._tasks(indices, windows)
        results = self.engine.embed(tasks) if tasks else []
        per_window: list[list[Flips]] = [[] for _ in indices]
        for slot, flips in zip(owners, results, strict=True):
            per_window[slot].append(flips)
        return [_merged(parts) for parts in per_window]

    def _tasks(
        self, indices: list[int], windows: list[Window]
    ) -> tuple[list[EmbedTask], list[int]]:
        """The engine's tasks for a batch, and the slot in the batch each belongs to."""
        plan = self.plan
        tasks: list[EmbedTask] = []
        owners: list[int] = []
        for slot, (index, (plane, bits)) in enumerate(zip(indices, windows, strict=True)):
            key = layout.window_key(self.k_pos, index)
            length = layout.window_length(self.samples, index)
            if index == 0:
                tasks.append(EmbedTask(plane, length, key, 1, 0, HEADER_BITS, self.header_bits))
                owners.append(slot)
            if plan.blocks[index]:
                skip = plan.skip(index)
                tasks.append(EmbedTask(plane, length, key, plan.k, skip, plan.blocks[index], bits))
                owners.append(slot)
        return tasks, owners


def _with_bits(
    items: Iterable[Batch], plan: layout.Plan, reader: BitReader
) -> Iterator[tuple[list[int], list[Window]]]:
    """Each batch's windows with the payload bits they carry, read in window order (in the
    thread that feeds the engine, so the payload is read as a stream)."""
    for indices, planes in items:
        bits = [reader.take(plan.blocks[i] * plan.k) for i in indices]
        yield indices, list(zip(planes, bits, strict=True))


def _merged(parts: list[Flips]) -> Flips:
    """One window's flips from its tasks' (window 0 has two: the header's and the message's;
    they never flip the same sample)."""
    if len(parts) > 1:
        merged = np.concatenate([flip_indices(p) for p in parts])
        return np.sort(merged).astype(np.int32, copy=False)
    return parts[0] if parts else np.zeros(0, dtype=np.int32)


def embed_plane_flips(
    planes: Iterable[UInt8Array],
    *,
    samples: int,
    k_pos: bytes,
    payload: bytes | PayloadStream,
    engine: WindowEngine,
    progress: Progress | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    windows_per_call: int = DEFAULT_WINDOWS_PER_CALL,
) -> Iterator[tuple[int, Flips]]:
    """Each window's index and flips (ascending), in window order, for ``payload`` in a cover
    of ``samples`` samples whose LSB plane comes window by window from ``planes``; a
    :class:`PayloadStream` is read as the windows need it, never held whole."""
    source = _as_stream(payload)
    work = _EmbedWork.of(engine, samples, k_pos, source.size)
    count = len(work.plan.blocks)
    done = 0
    items = batches(planes, per_call(count, windows_per_call, concurrency))
    windows = _with_bits(items, work.plan, BitReader(source.stream, source.size))
    for indices, results in scheduled(windows, work, concurrency, "embed"):
        for index, flips in zip(indices, results, strict=True):
            yield index, flips if isinstance(flips, FlipMap) else np.asarray(flips, np.int32)
        done += len(indices)
        if progress is not None:
            progress(done / count)
    if done != count:
        raise StegoError(
            f"The LSB plane holds {done} windows; {samples:,} samples make {count}.",
            code="truncated",
        )


def embed_plane(
    src: BinaryIO,
    *,
    samples: int,
    k_pos: bytes,
    payload: bytes | PayloadStream,
    engine: WindowEngine,
    on_window_flips: WindowFlips,
    progress: Progress | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    windows_per_call: int = DEFAULT_WINDOWS_PER_CALL,
) -> EmbedResult:
    """Hide ``payload`` in a cover of ``samples`` samples whose LSB plane is read from ``src``:
    ``on_window_flips(index, flips)`` gets each window's flips, in order."""
    changed = 0
    for index, flips in embed_plane_flips(
        plane_windows(src, samples),
        samples=samples,
        k_pos=k_pos,
        payload=payload,
        engine=engine,
        progress=progress,
        concurrency=concurrency,
        windows_per_call=windows_per_call,
    ):
        changed += flip_count(flips)
        on_window_flips(index, flips)
    size = payload.size if isinstance(payload, PayloadStream) else len(payload)
    plan_k = layout.plan(samples, size).k
    return EmbedResult(k=plan_k, payload_bytes=size, samples=samples, samples_changed=changed)


@dataclass(frozen=True)
class _ExtractWork:
    """One batch of windows' message bits (the windows that carry any)."""

    engine: WindowEngine
    samples: int
    k_pos: bytes
    plan: layout.Plan

    def __call__(self, indices: list[int], planes: list[UInt8Array]) -> list[UInt8Array]:
        plan = self.plan
        tasks = [
            ExtractTask(
                plane,
                layout.window_length(self.samples, index),
                layout.window_key(self.k_pos, index),
                plan.k,
                plan.skip(index),
                plan.blocks[index],
            )
            for index, plane in zip(indices, planes, strict=True)
            if plan.blocks[index]
        ]
        return self.engine.extract(tasks) if tasks else []


def extract_planes(
    planes: Iterable[UInt8Array],
    *,
    samples: int,
    k_pos: bytes,
    engine: WindowEngine,
    progress: Progress | None,
    concurrency: int,
    windows_per_call: int,
) -> bytes:
    """The payload from a plane that comes window by window from ``planes``."""
    out = io.BytesIO()
    extract_planes_to(
        planes,
        out,
        samples=samples,
        k_pos=k_pos,
        engine=engine,
        progress=progress,
        concurrency=concurrency,
        windows_per_call=windows_per_call,
    )
    return out.getvalue()


def extract_planes_to(
    planes: Iterable[UInt8Array],
    sink: BinaryIO,
    *,
    samples: int,
    k_pos: bytes,
    engine: WindowEngine,
    progress: Progress | None,
    concurrency: int,
    windows_per_call: int,
) -> int:
    """Write the payload from a plane that comes window by window from ``planes`` to
    ``sink`` as its windows are read (it is never held whole); its size in bytes. Nothing
    is written before the payload's header is read and checked (window 0)."""
    _too_short(samples)
    windows = iter(planes)
    first = next(windows, None)
    if first is None:
        raise StegoError("The LSB plane is empty.", code="truncated")
    header = header_from_plane(first, samples, k_pos)
    plan = layout.plan(samples, header.payload_bytes, k=header.k)
    last = max(i for i, blocks in enumerate(plan.blocks) if blocks) if plan.total_blocks else 0
    writer = BitWriter(sink, header.payload_bytes)
    work = _ExtractWork(engine, samples, k_pos, plan)
    seen = 0
    items = batches(_chain(first, windows), per_call(last + 1, windows_per_call, concurrency), last)
    for indices, results in scheduled(items, work, concurrency, "extract"):
        carrying = [i for i in indices if plan.blocks[i]]
        for index, packed in zip(carrying, results, strict=True):
            writer.write(np.asarray(packed, dtype=np.uint8), plan.blocks[index] * plan.k)
        seen += len(indices)
        if progress is not None:
            progress(seen / (last + 1))
    if seen != last + 1:
        raise StegoError(
            f"The LSB plane ends after {seen} windows; the message needs {last + 1}.",
            code="truncated",
        )
    writer.close()
    return header.payload_bytes


def _chain(first: UInt8Array, rest: Iterator[UInt8Array]) -> Iterator[UInt8Array]:
    yield first
    yield from rest


def extract_plane(
    src: BinaryIO,
    *,
    samples: int,
    k_pos: bytes,
    engine: WindowEngine,
    progress: Progress | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    windows_per_call: int = DEFAULT_WINDOWS_PER_CALL,
) -> bytes:
    """The payload hidden under ``k_pos`` in a file of ``samples`` samples whose LSB plane is
    read from ``src`` (window 0 first: a wrong ``k_pos`` is refused after one window)."""
    return extract_planes(
        plane_windows(src, samples),
        samples=samples,
        k_pos=k_pos,
        engine=engine,
        progress=progress,
        concurrency=concurrency,
        windows_per_call=windows_per_call,
    )


def extract_plane_to(
    src: BinaryIO,
    sink: BinaryIO,
    *,
    samples: int,
    k_pos: bytes,
    engine: WindowEngine,
    progress: Progress | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    windows_per_call: int = DEFAULT_WINDOWS_PER_CALL,
) -> int:
    """:func:`extract_plane` written to ``sink`` as it is read; the payload's size."""
    return extract_planes_to(
        plane_windows(src, samples),
        sink,
        samples=samples,
        k_pos=k_pos,
        engine=engine,
        progress=progress,
        concurrency=concurrency,
        windows_per_call=windows_per_call,
    )
