"""Embed a payload in a WAV stream and extract it again, one window at a time.

The codec reads the cover sequentially (it may come from object storage), sends each window
to a :class:`~subtone.stego.engine.WindowEngine` (Triton, or the kernel in-process), and
writes the result in order. Several windows are in flight at once so that Triton can batch
them; memory is bounded by ``concurrency`` windows whatever the size of the cover.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

from subtone.files import atomic_output
from subtone.stego import layout, wav
from subtone.stego.engine import EmbedWindow, ExtractWindow, WindowEngine
from subtone.stego.kernel import WINDOW_SAMPLES
from subtone.stego.layout import HEADER_BITS, StegoError

__all__ = [
    "DEFAULT_CONCURRENCY",
    "EmbedResult",
    "Progress",
    "embed_file",
    "embed_stream",
    "extract_file",
    "extract_stream",
    "read_capacity",
]

DEFAULT_CONCURRENCY = 4
"""Windows in flight at once: enough for Triton to batch, little memory (about 1 MiB each)."""
COPY_CHUNK_BYTES = 1 << 20

Progress = Callable[[float], None]
Samples = npt.NDArray[np.int32]


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


def _bits(data: bytes, total: int) -> npt.NDArray[np.uint8]:
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8))
    return np.pad(bits, (0, total - bits.size))


def _ordered(
    pool: ThreadPoolExecutor,
    items: Iterator[tuple[int, Samples]],
    work: Callable[[int, Samples], Samples],
    depth: int,
) -> Iterator[tuple[Samples, Samples]]:
    """Run ``work`` on up to ``depth`` windows at once, yielding (input, output) in order."""
    pending: deque[tuple[Samples, Future[Samples]]] = deque()
    try:
        for index, samples in items:
            pending.append((samples, pool.submit(work, index, samples)))
            if len(pending) >= depth:
                first, future = pending.popleft()
                yield first, future.result()
        while pending:
            first, future = pending.popleft()
            yield first, future.result()
    finally:
        for _, future in pending:
            future.cancel()


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
) -> EmbedResult:
    """Copy the WAV in ``src`` to ``dst`` with ``payload`` hidden in its samples."""
    info, prefix = wav.read_header(src, total_size=source_size)
    if source_size is not None:
        wav.check_file_size(info, source_size)
    plan = layout.plan(info.samples, len(payload))
    bits = _bits(payload, plan.total_blocks * plan.k)
    ranges = plan.bit_ranges()
    sealed = layout.seal_header(k_pos, layout.Header(k=plan.k, payload_bytes=len(payload)))
    header_bits = _bits(sealed, HEADER_BITS)
    bps = info.bits_per_sample

    def work(index: int, samples: Samples) -> Samples:
        key = layout.window_key(k_pos, index)
        if index == 0:
            samples = engine.embed(
                EmbedWindow(samples, key, k=1, skip=0, bits=header_bits, bits_per_sample=bps)
            )
        start, stop = ranges[index]
        if start == stop:
            return samples
        return engine.embed(
            EmbedWindow(
                samples,
                key,
                k=plan.k,
                skip=plan.skip(index),
                bits=bits[start:stop],
                bits_per_sample=bps,
            )
        )

    dst.write(prefix)
    windows = enumerate(wav.read_windows(src, info, WINDOW_SAMPLES))
    count, changed = len(plan.blocks), 0
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="embed") as pool:
        for done, (before, after) in enumerate(_ordered(pool, windows, work, concurrency), 1):
            changed += int(np.count_nonzero(before != after))
            dst.write(wav.encode_samples(after, bps))
            if progress is not None:
                progress(done / count)
    wav.copy_rest(src, dst, COPY_CHUNK_BYTES)
    return EmbedResult(
        k=plan.k, payload_bytes=len(payload), samples=info.samples, samples_changed=changed
    )


def extract_stream(
    src: BinaryIO,
    *,
    k_pos: bytes,
    engine: WindowEngine,
    source_size: int | None = None,
    progress: Progress | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> bytes:
    """The payload hidden in the WAV in ``src`` under ``k_pos``."""
    info, _ = wav.read_header(src, total_size=source_size)
    if source_size is not None:
        wav.check_file_size(info, source_size)
    if info.samples <= HEADER_BITS:
        raise StegoError("This file is too short to hold a Subtone message.", code="no_payload")
    windows = wav.read_windows(src, info, WINDOW_SAMPLES)
    first = next(windows)
    header_bits = engine.extract(
        ExtractWindow(first, layout.window_key(k_pos, 0), k=1, skip=0, nblocks=HEADER_BITS)
    )
    header = layout.open_header(k_pos, np.packbits(header_bits).tobytes(), info.samples)
    plan = layout.plan(info.samples, header.payload_bytes, k=header.k)
    last = max(i for i, blocks in enumerate(plan.blocks) if blocks) if plan.total_blocks else 0

    def work(index: int, samples: Samples) -> Samples:
        key = layout.window_key(k_pos, index)
        nblocks = plan.blocks[index]
        if nblocks == 0:
            return np.zeros(0, dtype=np.int32)
        window = ExtractWindow(samples, key, k=plan.k, skip=plan.skip(index), nblocks=nblocks)
        return engine.extract(window).astype(np.int32)

    def needed() -> Iterator[tuple[int, Samples]]:
        yield 0, first
        for index, samples in enumerate(windows, 1):
            if index > last:
                return
            yield index, samples

    parts: list[npt.NDArray[np.uint8]] = []
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="extract") as pool:
        for done, (_, bits) in enumerate(_ordered(pool, needed(), work, concurrency), 1):
            parts.append(bits.astype(np.uint8))
            if progress is not None:
                progress(done / (last + 1))
    stream = np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint8)
    return np.packbits(stream[: header.payload_bytes * 8]).tobytes()


def embed_file(
    cover: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    k_pos: bytes,
    payload: bytes,
    engine: WindowEngine,
    progress: Progress | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
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
        )


def extract_file(
    stego: str | os.PathLike[str],
    *,
    k_pos: bytes,
    engine: WindowEngine,
    progress: Progress | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
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
        )
