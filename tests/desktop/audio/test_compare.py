"""The stego file against its cover: what changed, by how much, and where."""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf

from desktop.audio.compare import SILENCE_DBFS, compare_files
from subtone.errors import SubtoneError

RATE = 8000


def cover_samples(frames: int, channels: int = 1) -> np.ndarray:
    rng = np.random.default_rng(5)
    return rng.integers(-8000, 8000, (frames, channels)).astype(np.int32)


def write(path, samples: np.ndarray, subtype: str = "PCM_16") -> None:
    sf.write(path, samples.astype(np.int16) if subtype == "PCM_16" else samples, RATE, subtype)


def test_identical_files_differ_nowhere(tmp_path):
    samples = cover_samples(20_000)
    write(tmp_path / "a.wav", samples)
    write(tmp_path / "b.wav", samples)
    diff = compare_files(tmp_path / "a.wav", tmp_path / "b.wav", 100)
    assert (diff.frames, diff.samples, diff.changed, diff.max_step) == (20_000, 20_000, 0, 0)
    assert diff.difference_dbfs == SILENCE_DBFS
    assert not diff.columns.any()


def test_one_step_changes_are_counted_measured_and_placed(tmp_path):
    frames = 100_000
    samples = cover_samples(frames)
    changed = np.arange(0, frames // 2, 10)  # every tenth sample of the first half
    stego = samples.copy()
    stego[changed, 0] += np.where(changed % 20 == 0, 1, -1)
    write(tmp_path / "cover.wav", samples)
    write(tmp_path / "stego.wav", stego)
    diff = compare_files(tmp_path / "cover.wav", tmp_path / "stego.wav", 50, block_frames=4096)
    assert diff.changed == len(changed) and diff.max_step == 1
    assert diff.changed_fraction == pytest.approx(0.05)
    lsb = 1 / 32768
    assert diff.difference_dbfs == pytest.approx(10 * math.log10(0.05 * lsb**2), abs=0.01)
    cover_rms = np.sqrt(np.mean((samples / 32768.0) ** 2))
    assert diff.cover_dbfs == pytest.approx(20 * math.log10(cover_rms), abs=0.01)
    assert diff.snr_db == pytest.approx(diff.cover_dbfs - diff.difference_dbfs)
    assert diff.columns[:25].tolist() == [[-1.0, 1.0]] * 25  # changes in the first half only
    assert not diff.columns[25:].any()


def test_24_bit_stereo_steps_are_its_own_lsb(tmp_path):
    samples = cover_samples(10_000, channels=2) * 256  # 24-bit values
    stego = samples.copy()
    stego[5000, 1] += 3
    sf.write(tmp_path / "cover.wav", samples * 256, RATE, "PCM_24")  # int32: top 24 bits
    sf.write(tmp_path / "stego.wav", stego * 256, RATE, "PCM_24")
    diff = compare_files(tmp_path / "cover.wav", tmp_path / "stego.wav", 10)
    assert (diff.samples, diff.changed, diff.max_step) == (20_000, 1, 3)
    assert diff.columns[5].tolist() == [0.0, 3.0]


def test_files_of_other_lengths_cannot_be_compared(tmp_path):
    write(tmp_path / "a.wav", cover_samples(1000))
    write(tmp_path / "b.wav", cover_samples(999))
    with pytest.raises(SubtoneError) as caught:
        compare_files(tmp_path / "a.wav", tmp_path / "b.wav", 10)
    assert caught.value.code == "not_comparable"


def test_a_file_that_is_gone_cannot_be_compared(tmp_path):
    write(tmp_path / "a.wav", cover_samples(1000))
    with pytest.raises(SubtoneError) as caught:
        compare_files(tmp_path / "a.wav", tmp_path / "gone.wav", 10)
    assert caught.value.code == "not_comparable"
