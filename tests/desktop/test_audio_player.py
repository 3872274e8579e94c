"""Playback through a fake output device."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from desktop.audio.backend import AudioError, NoOutputDevice
from desktop.audio.fake import FAKE_MICROPHONE, FakeBackend, tone
from desktop.audio.player import Player


def test_plays_the_file_then_closes_the_stream(tmp_path: Path):
    path = tmp_path / "message.wav"
    signal = tone(500, 0.1, 8000, amplitude=0.25)[:, 0]
    sf.write(path, signal, 8000, subtype="FLOAT")
    backend = FakeBackend()
    player = Player(backend)
    player.play(path)
    stream = backend.last_output
    assert player.playing and stream.samplerate == 8000
    assert player.duration_seconds == pytest.approx(0.1)
    played = np.concatenate([stream.pull(300) for _ in range(3)])
    np.testing.assert_allclose(played[: len(signal), 0], signal, atol=1e-6)
    assert not played[len(signal) :].any()  # silence after the end
    assert player.position_seconds == pytest.approx(0.1)
    assert not player.poll()
    assert stream.closed


def test_stop_closes_at_once(tmp_path: Path):
    path = tmp_path / "a.wav"
    sf.write(path, np.zeros(8000, dtype=np.float32), 8000)
    backend = FakeBackend()
    player = Player(backend)
    player.play(path)
    assert player.poll()
    player.stop()
    assert backend.last_output.closed and not player.playing


def test_no_output_device_says_so(tmp_path: Path):
    path = tmp_path / "a.wav"
    sf.write(path, np.zeros(10, dtype=np.float32), 8000)
    with pytest.raises(NoOutputDevice, match="No speaker"):
        Player(FakeBackend([FAKE_MICROPHONE])).play(path)


def test_a_file_that_is_not_audio_is_refused_plainly(tmp_path: Path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(AudioError, match="cannot be played"):
        Player(FakeBackend()).play(path)
    with pytest.raises(AudioError, match="cannot be"):
        Player(FakeBackend()).play(tmp_path / "missing.wav")
