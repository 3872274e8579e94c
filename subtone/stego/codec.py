"""Embed a payload in a cover and extract it again, one batch of windows at a time.

The engines (:mod:`subtone.stego.engine`) work on the cover's **LSB plane** only
(:mod:`subtone.stego.kernel`): bit ``i`` is the LSB of sample ``i``, packed with
``np.packbits(..., bitorder="little")``, so window ``w`` is bytes ``[w * WINDOW_BYTES,
(w + 1) * WINDOW_BYTES)`` of the plane. An embed answers, window by window, which samples must
flip (:func:`embed_plane`); whoever holds the audio applies them (:func:`apply_window_flips`).
:func:`embed_stream` / :func:`extract_stream` do both in one process, audio in: plane, flips,
and ±1 applied while the cover is copied.

The plane is read sequentially (it may come from object storage); up to ``concurrency``
batches of ``windows_per_call`` windows are in flight at once, so Triton can batch them and
memory is bounded whatever the size of the cover. Flips are handed on window by window and
never all held: a 10 MB secret in a 500 MB cover flips some 30 million samples.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

from subtone.files import atomic_output
from subtone.stego import layout, wav
from subtone.stego.engine import EmbedTask, ExtractTask, WindowEngine, plane_bytes
from subtone.stego.kernel import (
    WINDOW_BYTES,
    WINDOW_SAMPLES,
    apply_flips_pcm,
    copy_bits,
    extract_bits_batch,
    pack_lsb,
)
from subtone.stego.layout import HEADER_BITS, StegoError

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_WINDOWS_PER_CALL",
    "EmbedResult",
    "Progress",
    "WindowFlips",
    "apply_window_flips",
    "embed_file",
    "embed_plane",
    "embed_plane_flips",
    "embed_stream",
    "extract_file",
    "extract_plane",
    "extract_stream",
    "header_from_plane",
    "lsb_plane",
    "plane_size",
    "read_capacity",
]

DEFAULT_CONCURRENCY = 4
"""Batches in flight at once: enough for Triton to batch them, little memory."""
DEFAULT_WINDOWS_PER_CALL = 8
"""Windows per engine call (256 KiB of plane): amortises the call's overhead."""
COPY_CHUNK_BYTES = 1 << 20
_ROUNDS = 4

Progress = Callable[[float], None]
Int32Array = npt.NDArray[np.int32]
UInt8Array = npt.NDArray[np.uint8]
WindowFlips = Callable[[int, Int32Array], None]
"""Called with each window's index and its flips (window-relative, ascending), in order."""


@dataclass(frozen=True)
class EmbedResult:
    k: int
    payload_bytes: int
    samples: int
    samples_changed: int

    @property
    def change_rate(self) -> float:
        return self.samples_changed / self.samples


def read_capacity(path: str | os.PathLike[str]) -> tuple[wav.WavInfo, layout.Capacity]:
    """A cover's format and capacity from its header alone."""
    with Path(path).open("rb") as f:
        info, _ = wav.read_header(f)
    wav.check_file_size(info, Path(path).stat().st_size)
    return info, layout.capacity(info.samples)


def plane_size(samples: int) -> int:
    """Bytes of the packed LSB plane of a cover with ``samples`` samples."""
    return plane_bytes(samples)


def lsb_plane(stream: BinaryIO, info: wav.WavInfo) -> Iterator[UInt8Array]:
    """The packed LSB plane of the data chunk at ``stream``'s position, one window at a time
    (:data:`WINDOW_BYTES` bytes, the last window fewer). Reads exactly the data chunk."""
    for data in wav.read_raw_windows(stream, info, WINDOW_SAMPLES):
        yield pack_lsb(data, info.bits_per_sample)


def _plane_windows(stream: BinaryIO, samples: int) -> Iterator[UInt8Array]:
    """A plane stream of ``samples`` samples, one window at a time."""
    left = plane_size(samples)
    while left:
        want = min(WINDOW_BYTES, left)
        parts, got = [], 0
        while got < want:
            part = stream.read(want - got)
            if not part:
                raise StegoError(
                    f"The LSB plane is truncated: {samples:,} samples need "
                    f"{plane_size(samples):,} bytes.",
                    code="truncated",
                )
            parts.append(part)
            got += len(part)
        left -= want
        yield np.frombuffer(b"".join(parts), dtype=np.uint8)


def _ordered(
    pool: ThreadPoolExecutor,
    items: Iterable[tuple[list[int], list[UInt8Array]]],
    work: Callable[[list[int], list[UInt8Array]], list[Int32Array] | list[UInt8Array]],
    depth: int,
) -> Iterator[tuple[list[int], list[Int32Array] | list[UInt8Array]]]:
    """Run ``work`` on up to ``depth`` batches at once, yielding (indices, results) in order."""
    pending: deque[tuple[list[int], Future[list[Int32Array] | list[UInt8Array]]]] = deque()
    try:
        for indices, planes in items:
            pending.append((indices, pool.submit(work, indices, planes)))
            if len(pending) >= depth:
                first, future = pending.popleft()
                yield first, future.result()
        while pending:
            first, future = pending.popleft()
            yield first, future.result()
    finally:
        for _, future in pending:
            future.cancel()


def _batches(
    planes: Iterable[UInt8Array], size: int, stop: int | None = None
) -> Iterator[tuple[list[int], list[UInt8Array]]]:
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


def _per_call(windows: int, windows_per_call: int, concurrency: int) -> int:
    """Windows per engine call: at most ``windows_per_call``, fewer for a short cover so that
    its windows still spread over several rounds of ``concurrency`` calls (work is shared
    out, and progress moves)."""
    return max(1, min(windows_per_call, -(-windows // (_ROUNDS * max(1, concurrency)))))


def _window_bits(packed: UInt8Array, start: int, stop: int) -> UInt8Array:
    """Bits ``[start, stop)`` of ``packed`` (most significant first), from bit 0 of a new array."""
    out = np.zeros(plane_bytes(stop - start), dtype=np.uint8)
    copy_bits(out, 0, packed, start, stop - start)
    return out


def embed_plane_flips(
    planes: Iterable[UInt8Array],
    *,
    samples: int,
    k_pos: bytes,
    payload: bytes,
    engine: WindowEngine,
    progress: Progress | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    windows_per_call: int = DEFAULT_WINDOWS_PER_CALL,
) -> Iterator[tuple[int, Int32Array]]:
    """Each window's index and flips (ascending), in window order, for ``payload`` in a cover
    of ``samples`` samples whose LSB plane comes window by window from ``planes``."""
    plan = layout.plan(samples, len(payload))
    total_bits = plan.total_blocks * plan.k
    bits = np.zeros(plane_bytes(total_bits) + 1, dtype=np.uint8)
    bits[: len(payload)] = np.frombuffer(payload, dtype=np.uint8)
    ranges = plan.bit_ranges()
    sealed = layout.seal_header(k_pos, layout.Header(k=plan.k, payload_bytes=len(payload)))
    header_bits = np.frombuffer(sealed, dtype=np.uint8)
    count = len(plan.blocks)

    def work(indices: list[int], window_planes: list[UInt8Array]) -> list[Int32Array]:
        tasks: list[EmbedTask] = []
        owners: list[int] = []
        for slot, (index, plane) in enumerate(zip(indices, window_planes, strict=True)):
            key = layout.window_key(k_pos, index)
            length = layout.window_length(samples, index)
            if index == 0:
                tasks.append(EmbedTask(plane, length, key, 1, 0, HEADER_BITS, header_bits))
                owners.append(slot)
            start, stop = ranges[index]
            if stop > start:
                window_bits = _window_bits(bits, start, stop)
                tasks.append(
                    EmbedTask(
                        plane,
                        length,
                        key,
                        plan.k,
                        plan.skip(index),
                        plan.blocks[index],
                        window_bits,
                    )
                )
                owners.append(slot)
        results = engine.embed(tasks) if tasks else []
        per_window: list[list[Int32Array]] = [[] for _ in indices]
        for slot, flips in zip(owners, results, strict=True):
            per_window[slot].append(flips)
        return [
            np.sort(np.concatenate(parts)).astype(np.int32, copy=False)
            if len(parts) > 1
            else (parts[0] if parts else np.zeros(0, dtype=np.int32))
            for parts in per_window
        ]

    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="embed") as pool:
        done = 0
        batches = _batches(planes, _per_call(count, windows_per_call, concurrency))
        for indices, results in _ordered(pool, batches, work, concurrency):
            for index, flips in zip(indices, results, strict=True):
                yield index, np.asarray(flips, dtype=np.int32)
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
    payload: bytes,
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
        _plane_windows(src, samples),
        samples=samples,
        k_pos=k_pos,
        payload=payload,
        engine=engine,
        progress=progress,
        concurrency=concurrency,
        windows_per_call=windows_per_call,
    ):
        changed += flips.size
        on_window_flips(index, flips)
    plan_k = layout.plan(samples, len(payload)).k
    return EmbedResult(
        k=plan_k, payload_bytes=len(payload), samples=samples, samples_changed=changed
    )


def apply_window_flips(
    data: bytearray | UInt8Array,
    *,
    k_pos: bytes,
    index: int,
    flips: Sequence[int] | Int32Array,
    bits_per_sample: int,
) -> None:
    """Apply window ``index``'s flips to its PCM bytes in place (±1, keyed sign, full-scale
    samples inwards): what a client does while it copies its cover to the stego file."""
    where = np.asarray(flips, dtype=np.int32)
    apply_flips_pcm(data, layout.window_key(k_pos, index), where, bits_per_sample)


def header_from_plane(
    window0_plane: UInt8Array | bytes, samples: int, k_pos: bytes
) -> layout.Header:
    """The payload header read from window 0's LSB plane: refuses a wrong ``k_pos`` (or a
    file without a payload) locally, before any upload."""
    if samples <= HEADER_BITS:
        raise StegoError("This file is too short to hold a Subtone message.", code="no_payload")
    length = layout.window_length(samples, 0)
    plane = np.frombuffer(bytes(window0_plane), dtype=np.uint8)
    if plane.size < plane_bytes(length):
        raise ValueError(f"window 0's plane has {plane_bytes(length)} bytes, got {plane.size}")
    sealed = extract_bits_batch(
        plane, [0], [layout.window_key(k_pos, 0)], [length], [1], [0], [HEADER_BITS]
    )
    return layout.open_header(k_pos, sealed.tobytes(), samples)


def _extract_planes(
    planes: Iterable[UInt8Array],
    *,
    samples: int,
    k_pos: bytes,
    engine: WindowEngine,
    progress: Progress | None,
    concurrency: int,
    windows_per_call: int,
) -> bytes:
    if samples <= HEADER_BITS:
        raise StegoError("This file is too short to hold a Subtone message.", code="no_payload")
    windows = iter(planes)
    first = next(windows, None)
    if first is None:
        raise StegoError("The LSB plane is empty.", code="truncated")
    header = header_from_plane(first, samples, k_pos)
    plan = layout.plan(samples, header.payload_bytes, k=header.k)
    ranges = plan.bit_ranges()
    last = max(i for i, blocks in enumerate(plan.blocks) if blocks) if plan.total_blocks else 0
    out = np.zeros(plane_bytes(plan.total_blocks * plan.k), dtype=np.uint8)

    def work(indices: list[int], window_planes: list[UInt8Array]) -> list[UInt8Array]:
        tasks = [
            ExtractTask(
                plane,
                layout.window_length(samples, index),
                layout.window_key(k_pos, index),
                plan.k,
                plan.skip(index),
                plan.blocks[index],
            )
            for index, plane in zip(indices, window_planes, strict=True)
            if plan.blocks[index]
        ]
        return engine.extract(tasks) if tasks else []

    def all_planes() -> Iterator[UInt8Array]:
        yield first
        yield from windows

    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="extract") as pool:
        seen = 0
        per_call = _per_call(last + 1, windows_per_call, concurrency)
        batches = _batches(all_planes(), per_call, stop=last)
        for indices, results in _ordered(pool, batches, work, concurrency):
            carrying = [i for i in indices if plan.blocks[i]]
            for index, packed in zip(carrying, results, strict=True):
                start, stop = ranges[index]
                copy_bits(out, start, np.asarray(packed, dtype=np.uint8), 0, stop - start)
            seen += len(indices)
            if progress is not None:
                progress(seen / (last + 1))
    if seen != last + 1:
        raise StegoError(
            f"The LSB plane ends after {seen} windows; the message needs {last + 1}.",
            code="truncated",
        )
    return out[: header.payload_bytes].tobytes()


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
    return _extract_planes(
        _plane_windows(src, samples),
        samples=samples,
        k_pos=k_pos,
        engine=engine,
        progress=progress,
        concurrency=concurrency,
        windows_per_call=windows_per_call,
    )


def embed_stream(
    src: BinaryIO,
    dst: BinaryIO,
    *,
    k_pos: bytes,
    payload: bytes,
    engine: WindowEngine,
    source_size: int | None = None,
    progress: Progress | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    windows_per_call: int = DEFAULT_WINDOWS_PER_CALL,
) -> EmbedResult:
    """Copy the WAV in ``src`` to ``dst`` with ``payload`` hidden in its samples."""
    info, prefix = wav.read_header(src, total_size=source_size)
    if source_size is not None:
        wav.check_file_size(info, source_size)
    bps = info.bits_per_sample
    held: deque[bytearray] = deque()

    def planes() -> Iterator[UInt8Array]:
        for data in wav.read_raw_windows(src, info, WINDOW_SAMPLES):
            held.append(bytearray(data))
            yield pack_lsb(data, bps)

    dst.write(prefix)
    changed = 0
    flips_by_window = embed_plane_flips(
        planes(),
        samples=info.samples,
        k_pos=k_pos,
        payload=payload,
        engine=engine,
        progress=progress,
        concurrency=concurrency,
        windows_per_call=windows_per_call,
    )
    for index, flips in flips_by_window:
        data = held.popleft()
        if flips.size:
            apply_window_flips(data, k_pos=k_pos, index=index, flips=flips, bits_per_sample=bps)
        changed += flips.size
        dst.write(data)
    wav.copy_rest(src, dst, COPY_CHUNK_BYTES)
    k = layout.plan(info.samples, len(payload)).k
    return EmbedResult(
        k=k, payload_bytes=len(payload), samples=info.samples, samples_changed=changed
    )


def extract_stream(
    src: BinaryIO,
    *,
    k_pos: bytes,
    engine: WindowEngine,
    source_size: int | None = None,
    progress: Progress | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    windows_per_call: int = DEFAULT_WINDOWS_PER_CALL,
) -> bytes:
    """The payload hidden in the WAV in ``src`` under ``k_pos``."""
    info, _ = wav.read_header(src, total_size=source_size)
    if source_size is not None:
        wav.check_file_size(info, source_size)
    return _extract_planes(
        lsb_plane(src, info),
        samples=info.samples,
        k_pos=k_pos,
        engine=engine,
        progress=progress,
        concurrency=concurrency,
        windows_per_call=windows_per_call,
    )


def embed_file(
    cover: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    k_pos: bytes,
    payload: bytes,
    engine: WindowEngine,
    progress: Progress | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    windows_per_call: int = DEFAULT_WINDOWS_PER_CALL,
) -> EmbedResult:
    """Write ``cover`` with ``payload`` hidden in it to ``out``, atomically."""
    size = Path(cover).stat().st_size
    with Path(cover).open("rb") as src, atomic_output(out) as dst:
        return embed_stream(
            src,
            dst,
            k_pos=k_pos,
            payload=payload,
            engine=engine,
            source_size=size,
            progress=progress,
            concurrency=concurrency,
            windows_per_call=windows_per_call,
        )


def extract_file(
    stego: str | os.PathLike[str],
    *,
    k_pos: bytes,
    engine: WindowEngine,
    progress: Progress | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    windows_per_call: int = DEFAULT_WINDOWS_PER_CALL,
) -> bytes:
    """The payload hidden in the file ``stego`` under ``k_pos``."""
    size = Path(stego).stat().st_size
    with Path(stego).open("rb") as src:
        return extract_stream(
            src,
            k_pos=k_pos,
            engine=engine,
            source_size=size,
            progress=progress,
            concurrency=concurrency,
            windows_per_call=windows_per_call,
        )
