"""What an encode changed in its cover: the stego file against the cover, sample by sample.

Both files are read side by side a block at a time (memory stays at two blocks whatever their
length). The result says how many samples changed and by how many steps of the least
significant bit, the difference signal's level against the cover's (the SNR), and where along
the file the changes lie (min/max columns of the difference, in steps).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Final

import numpy as np
import soundfile as sf
from numpy.typing import NDArray

from desktop.audio.waveform import Columns
from subtone.errors import SubtoneError

__all__ = ["SILENCE_DBFS", "Difference", "compare_files"]

BLOCK_FRAMES: Final = 65_536
SILENCE_DBFS: Final = -200.0
"""The level of an all-zero signal (instead of minus infinity)."""
_BITS: Final = {"PCM_U8": 8, "PCM_S8": 8, "PCM_16": 16, "PCM_24": 24, "PCM_32": 32}


@dataclass(frozen=True)
class Difference:
    frames: int
    samples: int
    """Frames × channels."""
    changed: int
    """Samples whose value differs."""
    max_step: int
    """The largest change of one sample, in steps of its least significant bit."""
    cover_dbfs: float
    """The cover's RMS level (dB full scale)."""
    difference_dbfs: float
    """The difference signal's RMS level (dB full scale)."""
    columns: Columns
    """Where the changes lie: (min, max) of the difference in each column, in steps."""

    @property
    def snr_db(self) -> float:
        """How far the difference lies below the cover (signal-to-noise ratio, dB)."""
        return self.cover_dbfs - self.difference_dbfs

    @property
    def changed_fraction(self) -> float:
        return self.changed / self.samples if self.samples else 0.0


def _dbfs(sum_of_squares: float, count: int) -> float:
    if count == 0 or sum_of_squares <= 0:
        return SILENCE_DBFS
    return max(SILENCE_DBFS, 10 * math.log10(sum_of_squares / count))


def _not_comparable(why: str) -> SubtoneError:
    return SubtoneError(
        f"The stego file cannot be set against its cover: {why}.", code="not_comparable"
    )


def compare_files(
    cover: str | os.PathLike[str],
    stego: str | os.PathLike[str],
    columns: int,
    *,
    block_frames: int = BLOCK_FRAMES,
) -> Difference:
    """The stego file against its cover, in ``columns`` columns. Raises ``SubtoneError``
    (``not_comparable``) when either cannot be read, or they differ in length, channels or
    sample format."""
    if columns < 1:
        raise ValueError("columns must be at least 1")
    try:
        return _compare(cover, stego, columns, block_frames)
    except (OSError, RuntimeError, sf.SoundFileError) as e:
        raise _not_comparable(str(e)) from e


def _compare(
    cover: str | os.PathLike[str], stego: str | os.PathLike[str], columns: int, block_frames: int
) -> Difference:
    with sf.SoundFile(str(cover)) as a, sf.SoundFile(str(stego)) as b:
        if (a.frames, a.channels, a.samplerate) != (b.frames, b.channels, b.samplerate):
            raise _not_comparable("they differ in length, channels or sample rate")
        bits = _BITS.get(a.subtype)
        if bits is None or a.subtype != b.subtype:
            raise _not_comparable(f"sample formats {a.subtype} and {b.subtype}")
        shift = 32 - bits  # soundfile's int32 holds a sample in its top bits
        full_scale = float(2**31)
        frames, channels = int(a.frames), int(a.channels)
        n = max(1, min(columns, frames))
        edges = np.linspace(0, frames, n + 1).astype(np.int64)
        lows = np.zeros(n, dtype=np.int64)
        highs = np.zeros(n, dtype=np.int64)
        changed = max_step = 0
        cover_power = difference_power = 0.0
        offset = 0
        while offset < frames:
            x = a.read(block_frames, dtype="int32", always_2d=True)
            y = b.read(block_frames, dtype="int32", always_2d=True)
            if len(x) == 0 or len(x) != len(y):
                break
            steps: NDArray[np.int64] = (y.astype(np.int64) - x) >> shift
            changed += int(np.count_nonzero(steps))
            max_step = max(max_step, int(np.abs(steps).max(initial=0)))
            cover_power += float(np.square(x / full_scale).sum())
            difference_power += float(np.square(steps * (2.0**shift / full_scale)).sum())
            end = offset + len(x)
            first = int(np.searchsorted(edges, offset, side="right")) - 1
            last = int(np.searchsorted(edges, end - 1, side="right")) - 1
            cols = np.arange(first, last + 1)
            starts = np.maximum(edges[cols], offset) - offset
            lows[cols] = np.minimum(lows[cols], np.minimum.reduceat(steps.min(axis=1), starts))
            highs[cols] = np.maximum(highs[cols], np.maximum.reduceat(steps.max(axis=1), starts))
            offset = end
    samples = offset * channels
    return Difference(
        frames=offset,
        samples=samples,
        changed=changed,
        max_step=max_step,
        cover_dbfs=_dbfs(cover_power, samples),
        difference_dbfs=_dbfs(difference_power, samples),
        columns=np.stack([lows, highs], axis=1).astype(np.float32),
    )
