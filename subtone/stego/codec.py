"""Embed a payload in a cover and extract it again, one batch of windows at a time.

The engines (:mod:`subtone.stego.engine`) work on the cover's **LSB plane** only
(:mod:`subtone.stego.kernel`): bit ``i`` is the LSB of sample ``i``, packed with
``np.packbits(..., bitorder="little")``, so window ``w`` is bytes ``[w * WINDOW_BYTES,
(w + 1) * WINDOW_BYTES)`` of the plane. An embed answers, window by window, which samples must
flip (:func:`embed_plane`); whoever holds the audio applies them (:func:`apply_window_flips`).
:func:`embed_stream` / :func:`extract_stream` do both in one process, audio in: plane, flips,
and ±1 applied while the cover is copied.

The plane-level half lives in ``_codec_plane`` (and its scheduling in ``_windows``); this
module adds the WAV around it and is the public surface of both.

The plane is read sequentially (it may come from object storage); up to ``concurrency``
batches of ``windows_per_call`` windows are in flight at once, so Triton can batch them and
memory is bounded whatever the size of the cover. Flips are handed on window by window and
never all held: a 10 MB secret in a 500 MB cover flips some 30 million samples. Nor is the
payload held whole where it need not be: a :class:`PayloadStream` is read as the windows need
its bits, and :func:`extract_plane_to` writes the payload out as its windows are read.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

from subtone.files import atomic_output
from subtone.stego import layout, wav
from subtone.stego._codec_plane import (
    DEFAULT_CONCURRENCY,
    DEFAULT_WINDOWS_PER_CALL,
    EmbedResult,
    PayloadStream,
    Progress,
    WindowFlips,
    embed_plane,
    embed_plane_flips,
    extract_plane,
    extract_plane_to,
    extract_planes,
)
from subtone.stego.engine import WindowEngine, flip_indices
from subtone.stego.layout import read_capacity
from subtone.stego.patch import apply_window_flips
from subtone.stego.pcm import pack_lsb
from subtone.stego.plane import header_from_plane, lsb_plane, plane_size
from subtone.stego.window import WINDOW_SAMPLES

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_WINDOWS_PER_CALL",
    "EmbedResult",
    "PayloadStream",
    "Progress",
    "WindowFlips",
    "apply_window_flips",
    "embed_file",
    "embed_plane",
    "embed_plane_flips",
    "embed_stream",
    "extract_file",
    "extract_plane",
    "extract_plane_to",
    "extract_stream",
    "header_from_plane",
    "lsb_plane",
    "plane_size",
    "read_capacity",
]

COPY_CHUNK_BYTES = 1 << 20

Int32Array = npt.NDArray[np.int32]
UInt8Array = npt.NDArray[np.uint8]


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
    for index, window_flips in flips_by_window:
        data = held.popleft()
        flips = flip_indices(window_flips)
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
    return extract_planes(
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
