"""Signal levels of a block of samples, in dBFS, and meter ballistics (Qt-free)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "CLIP_THRESHOLD",
    "SILENCE_DBFS",
    "Level",
    "MeterBallistics",
    "amplitude_to_dbfs",
    "measure",
]

SILENCE_DBFS: Final = -120.0
"""What silence (or an empty block) reads as: the floor of every meter."""
CLIP_THRESHOLD: Final = 0.999
"""A float sample at or above this magnitude counts as clipped."""
PEAK_HOLD_SECONDS: Final = 1.5
PEAK_FALL_DB_PER_SECOND: Final = 20.0
RMS_FALL_DB_PER_SECOND: Final = 40.0


@dataclass(frozen=True)
class Level:
    rms_dbfs: float
    peak_dbfs: float
    clipped: bool = False


def amplitude_to_dbfs(amplitude: float) -> float:
    """A linear amplitude (1.0 = full scale) in dBFS, never below :data:`SILENCE_DBFS`."""
    if amplitude <= 0.0 or not math.isfinite(amplitude):
        return SILENCE_DBFS
    return max(SILENCE_DBFS, 20.0 * math.log10(amplitude))


def measure(block: ArrayLike) -> Level:
    """RMS and peak of a block of float samples in [-1, 1] (any shape: channels are pooled)."""
    samples = np.asarray(block, dtype=np.float64)
    if samples.size == 0:
        return Level(SILENCE_DBFS, SILENCE_DBFS)
    peak = float(np.max(np.abs(samples)))
    rms = math.sqrt(float(np.mean(np.square(samples))))
    return Level(amplitude_to_dbfs(rms), amplitude_to_dbfs(peak), peak >= CLIP_THRESHOLD)


class MeterBallistics:
    """Smooths levels for display: instant rise, steady fall, and a held peak marker."""

    def __init__(
        self,
        *,
        hold_seconds: float = PEAK_HOLD_SECONDS,
        peak_fall_db_per_second: float = PEAK_FALL_DB_PER_SECOND,
        rms_fall_db_per_second: float = RMS_FALL_DB_PER_SECOND,
    ) -> None:
        self._hold = hold_seconds
        self._peak_fall = peak_fall_db_per_second
        self._rms_fall = rms_fall_db_per_second
        self.reset()

    def reset(self) -> None:
        self.rms_dbfs = SILENCE_DBFS
        self.peak_dbfs = SILENCE_DBFS
        self.held_dbfs = SILENCE_DBFS
        self.clipped = False
        self._held_for = 0.0

    def update(self, level: Level | None, elapsed_seconds: float) -> None:
        """Advance by ``elapsed_seconds``, taking in ``level`` (``None``: nothing new)."""
        elapsed = max(0.0, elapsed_seconds)
        self.rms_dbfs = max(SILENCE_DBFS, self.rms_dbfs - self._rms_fall * elapsed)
        self.peak_dbfs = max(SILENCE_DBFS, self.peak_dbfs - self._peak_fall * elapsed)
        self._held_for += elapsed
        if self._held_for > self._hold:
            self.held_dbfs = max(SILENCE_DBFS, self.held_dbfs - self._peak_fall * elapsed)
        if level is None:
            return
        self.rms_dbfs = max(self.rms_dbfs, level.rms_dbfs)
        self.peak_dbfs = max(self.peak_dbfs, level.peak_dbfs)
        if level.peak_dbfs >= self.held_dbfs:
            self.held_dbfs = level.peak_dbfs
            self._held_for = 0.0
        self.clipped = self.clipped or level.clipped
