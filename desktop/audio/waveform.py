"""Waveform decimation for display: min/max columns, and a scrolling view of the last seconds."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Final

import numpy as np
import soundfile as sf
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "DEFAULT_COLUMNS",
    "DEFAULT_SECONDS",
    "OVERVIEW_EXACT_FRAMES",
    "Columns",
    "Overview",
    "ScrollingWaveform",
    "min_max_columns",
    "overview_of_file",
    "to_mono",
    "waveform_of_file",
]

DEFAULT_COLUMNS: Final = 600
DEFAULT_SECONDS: Final = 6.0
FILE_BLOCK_FRAMES: Final = 65_536
"""Frames read at once by :func:`waveform_of_file` (memory stays at one block)."""

OVERVIEW_EXACT_FRAMES: Final = 8_000_000
"""Up to this many frames (three minutes of 44.1 kHz) an overview reads every sample; a
longer file is sampled (see :func:`overview_of_file`)."""
OVERVIEW_WINDOW_FRAMES: Final = 4096
"""Frames an overview of a long file reads for each column (about 0.1 s at 44.1 kHz)."""

Columns = NDArray[np.float32]
"""Shape ``(n, 2)``: each row is the ``(min, max)`` of the samples one column covers."""


@dataclass(frozen=True)
class Overview:
    """A sound file drawn as ``columns``; ``exact``: from every sample (else sampled)."""

    columns: Columns
    exact: bool
    frames: int
    samplerate: int


def to_mono(block: ArrayLike) -> NDArray[np.float32]:
    """``(frames,)`` or ``(frames, channels)`` samples as one channel (the channels' mean)."""
    samples = np.asarray(block, dtype=np.float32)
    if samples.ndim == 2:
        mono: NDArray[np.float32] = samples.mean(axis=1, dtype=np.float32)
        return mono
    return samples.reshape(-1)


def min_max_columns(samples: ArrayLike, columns: int) -> Columns:
    """Decimate ``samples`` to ``columns`` (min, max) pairs, each over an equal share.

    Fewer samples than columns gives one column per sample (min = max).
    """
    if columns < 1:
        raise ValueError("columns must be at least 1")
    mono = to_mono(samples)
    if mono.size == 0:
        return np.zeros((0, 2), dtype=np.float32)
    n = min(columns, mono.size)
    edges = np.linspace(0, mono.size, n + 1).astype(np.int64)
    starts = edges[:-1]
    result = np.empty((n, 2), dtype=np.float32)
    result[:, 0] = np.minimum.reduceat(mono, starts)
    result[:, 1] = np.maximum.reduceat(mono, starts)
    return result


def waveform_of_file(
    path: str | os.PathLike[str], columns: int, *, block_frames: int = FILE_BLOCK_FRAMES
) -> Columns:
    """:func:`min_max_columns` of a whole sound file, read a block at a time.

    The result equals ``min_max_columns`` of the file's samples, but memory stays at one
    block whatever the file's length (an hour-long recording is fine). Raises what
    :mod:`soundfile` raises for a file it cannot read.
    """
    if columns < 1:
        raise ValueError("columns must be at least 1")
    with sf.SoundFile(str(path)) as f:
        frames = int(f.frames)
        if frames == 0:
            return np.zeros((0, 2), dtype=np.float32)
        n = min(columns, frames)
        edges = np.linspace(0, frames, n + 1).astype(np.int64)
        result = np.empty((n, 2), dtype=np.float32)
        result[:, 0] = np.inf
        result[:, 1] = -np.inf
        offset = 0
        for block in f.blocks(blocksize=block_frames, dtype="float32", always_2d=True):
            mono = to_mono(block)
            if mono.size == 0:
                continue
            end = offset + mono.size
            first = int(np.searchsorted(edges, offset, side="right")) - 1
            last = int(np.searchsorted(edges, end - 1, side="right")) - 1
            cols = np.arange(first, last + 1)
            starts = np.maximum(edges[cols], offset) - offset
            result[cols, 0] = np.minimum(result[cols, 0], np.minimum.reduceat(mono, starts))
            result[cols, 1] = np.maximum(result[cols, 1], np.maximum.reduceat(mono, starts))
            offset = end
    if offset < frames:  # the header promised more than the file holds: what was there
        result = result[np.isfinite(result).all(axis=1)]
    return result


def overview_of_file(
    path: str | os.PathLike[str],
    columns: int,
    *,
    exact_up_to: int = OVERVIEW_EXACT_FRAMES,
    window_frames: int = OVERVIEW_WINDOW_FRAMES,
) -> Overview:
    """A file's waveform in ``columns`` (min, max) pairs, at a cost bounded by ``columns``.

    A file of up to ``exact_up_to`` frames is read whole, a block at a time
    (:func:`waveform_of_file`). A longer one (a cover can be gigabytes) is never read whole:
    each column is the min and max of ``window_frames`` frames read from its middle, so the
    cost is ``columns × window_frames`` frames whatever the file's length. Memory stays at one
    block or one window. Raises what :mod:`soundfile` raises for a file it cannot read.
    """
    if columns < 1 or window_frames < 1:
        raise ValueError("columns and window_frames must be at least 1")
    with sf.SoundFile(str(path)) as f:
        frames, rate = int(f.frames), int(f.samplerate)
        if frames <= max(exact_up_to, columns * window_frames):
            exact = True
        else:
            exact = False
            sampled = _sampled_columns(f, frames, columns, window_frames)
    if exact:
        return Overview(waveform_of_file(path, columns), True, frames, rate)
    return Overview(sampled, False, frames, rate)


def _sampled_columns(f: sf.SoundFile, frames: int, columns: int, window: int) -> Columns:
    edges = np.linspace(0, frames, columns + 1).astype(np.int64)
    result = np.zeros((columns, 2), dtype=np.float32)
    for i in range(columns):
        span = int(edges[i + 1] - edges[i])
        take = min(window, span)
        f.seek(int(edges[i]) + (span - take) // 2)
        mono = to_mono(f.read(take, dtype="float32", always_2d=True))
        if mono.size == 0:  # the header promised more than the file holds: what was there
            return result[:i].copy()
        result[i] = (mono.min(), mono.max())
    return result


class ScrollingWaveform:
    """The last ``columns`` (min, max) columns of a live signal, each over ``samples_per_column``.

    :meth:`push` takes blocks of any size; a column is closed once it has all its samples, so
    what is shown never changes after it scrolled in. Memory is fixed by ``columns``.
    """

    def __init__(self, columns: int = DEFAULT_COLUMNS, samples_per_column: int = 80) -> None:
        if columns < 1 or samples_per_column < 1:
            raise ValueError("columns and samples_per_column must be at least 1")
        self.columns_kept = columns
        self.samples_per_column = samples_per_column
        self._ring = np.zeros((columns, 2), dtype=np.float32)
        self._count = 0
        self._next = 0
        self._pending = np.zeros(0, dtype=np.float32)

    @classmethod
    def for_rate(
        cls, samplerate: float, *, seconds: float = DEFAULT_SECONDS, columns: int = DEFAULT_COLUMNS
    ) -> ScrollingWaveform:
        """A view of the last ``seconds`` of a signal at ``samplerate``."""
        return cls(columns, max(1, round(samplerate * seconds / columns)))

    def clear(self) -> None:
        self._count = 0
        self._next = 0
        self._pending = np.zeros(0, dtype=np.float32)

    def push(self, block: ArrayLike) -> None:
        mono = to_mono(block)
        if self._pending.size:
            mono = np.concatenate([self._pending, mono])
        whole = mono.size // self.samples_per_column
        if whole:
            shaped = mono[: whole * self.samples_per_column].reshape(whole, self.samples_per_column)
            new = np.stack([shaped.min(axis=1), shaped.max(axis=1)], axis=1)
            self._append(new[-self.columns_kept :])
        self._pending = mono[whole * self.samples_per_column :].copy()

    def _append(self, new: Columns) -> None:
        for row in new:
            self._ring[self._next] = row
            self._next = (self._next + 1) % self.columns_kept
        self._count = min(self.columns_kept, self._count + len(new))

    def columns(self) -> Columns:
        """The kept columns, oldest first."""
        if self._count < self.columns_kept:
            return self._ring[: self._count].copy()
        return np.concatenate([self._ring[self._next :], self._ring[: self._next]])

    def __len__(self) -> int:
        return self._count
