"""Levels (dBFS) and meter ballistics, and the audio package's public names."""

from __future__ import annotations

import math

import numpy as np
import pytest

import desktop.audio
from desktop.audio.fake import tone
from desktop.audio.levels import (
    SILENCE_DBFS,
    Level,
    MeterBallistics,
    amplitude_to_dbfs,
    measure,
)


def test_public_names_are_importable():
    for name in desktop.audio.__all__:
        assert getattr(desktop.audio, name) is not None
    assert sorted(desktop.audio.__all__) == desktop.audio.__all__


def test_full_scale_sine_reads_minus_3_dbfs_rms_and_0_peak():
    level = measure(tone(1000, 0.5, 48_000, amplitude=1.0))
    assert level.rms_dbfs == pytest.approx(-3.01, abs=0.02)
    assert level.peak_dbfs == pytest.approx(0.0, abs=0.01)
    assert level.clipped


def test_quiet_sine_levels():
    level = measure(tone(440, 1.0, 16_000, amplitude=0.1))
    assert level.rms_dbfs == pytest.approx(20 * math.log10(0.1 / math.sqrt(2)), abs=0.02)
    assert level.peak_dbfs == pytest.approx(-20.0, abs=0.05)
    assert not level.clipped


def test_silence_and_empty_blocks_read_the_floor():
    assert measure(np.zeros((256, 2), dtype=np.float32)) == Level(SILENCE_DBFS, SILENCE_DBFS)
    assert measure(np.zeros(0, dtype=np.float32)).rms_dbfs == SILENCE_DBFS
    assert amplitude_to_dbfs(0.0) == SILENCE_DBFS
    assert amplitude_to_dbfs(float("nan")) == SILENCE_DBFS
    assert amplitude_to_dbfs(1e-12) == SILENCE_DBFS


def test_ballistics_rise_at_once_fall_steadily_and_hold_the_peak():
    meter = MeterBallistics(hold_seconds=1.0, peak_fall_db_per_second=20, rms_fall_db_per_second=40)
    meter.update(Level(-10.0, -3.0), 0.0)
    assert (meter.rms_dbfs, meter.peak_dbfs, meter.held_dbfs) == (-10.0, -3.0, -3.0)
    meter.update(None, 0.5)
    assert meter.rms_dbfs == pytest.approx(-30.0)
    assert meter.peak_dbfs == pytest.approx(-13.0)
    assert meter.held_dbfs == -3.0  # still held
    meter.update(None, 0.6)
    assert meter.held_dbfs < -3.0  # released after the hold time
    meter.update(Level(-60.0, -50.0, clipped=True), 0.0)
    assert meter.clipped
    meter.reset()
    assert meter.peak_dbfs == SILENCE_DBFS and not meter.clipped
