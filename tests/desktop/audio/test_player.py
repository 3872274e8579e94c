"""Playback through a fake output device."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from desktop.audio.backend import AudioError, DeviceFailed, NoOutputDevice
from desktop.audio.fake import FAKE_MICROPHONE, FAKE_SPEAKER, FakeBackend, tone
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


def test_a_device_that_fails_to_start_is_a_plain_error_and_closes(tmp_path: Path):
    path = tmp_path / "a.wav"
    sf.write(path, np.zeros(800, dtype=np.float32), 8000)
    backend = FakeBackend(fail_start="Error starting stream [PaErrorCode -9985]")
    player = Player(backend)
    with pytest.raises(DeviceFailed, match="The speaker could not be started: Error starting"):
        player.play(path)
    assert backend.last_output.closed and not player.playing


def test_loading_and_starting_are_separate_steps(tmp_path: Path):
    path = tmp_path / "stereo.wav"
    stereo = np.stack([tone(300, 0.05, 8000)[:, 0], np.zeros(400, dtype=np.float32)], axis=1)
    sf.write(path, stereo, 8000, subtype="FLOAT")
    mono_out = FakeBackend([FAKE_MICROPHONE, replace(FAKE_SPEAKER, max_output_channels=1)])
    player = Player(mono_out)
    sound = player.load(path)  # what a worker thread does: no device is opened
    assert mono_out.outputs == []
    assert sound.channels == 1 and sound.duration_seconds == pytest.approx(0.05)
    np.testing.assert_allclose(sound.data[:, 0], stereo.mean(axis=1), atol=1e-6)
    player.play_sound(sound)
    assert player.playing and mono_out.last_output.channels == 1


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_stalled_device_still_shows_time_passing_and_stops_after_the_end(tmp_path: Path):
    """Issue 14.9: on a device that stops asking for samples (ALSA underruns), the clock
    stood at 0:00.2 and the playback never ended."""
    path = tmp_path / "six-seconds.wav"
    sf.write(path, np.zeros(6 * 8000, dtype=np.float32), 8000)
    backend, clock = FakeBackend(), FakeClock()
    player = Player(backend, clock=clock)
    player.play(path)
    stream = backend.last_output
    for _ in range(3):
        stream.pull(512)  # PortAudio's first blocks, then the device stalls
    clock.now += 1.5
    assert player.poll()
    assert player.position_seconds == pytest.approx(1.5)
    clock.now += 4.5  # the sound's end
    assert player.poll() and player.position_seconds == pytest.approx(6.0)
    clock.now += 1.1  # well past it: stalled, closed
    assert not player.poll()
    assert stream.closed and not player.playing


def test_a_stream_that_ends_by_itself_ends_playing(tmp_path: Path):
    path = tmp_path / "a.wav"
    sf.write(path, np.zeros(8000, dtype=np.float32), 8000)
    backend = FakeBackend()
    player = Player(backend, clock=FakeClock())
    player.play(path)
    backend.last_output.started = False  # PortAudio ended it (the callback failed)
    assert not player.poll()
    assert backend.last_output.closed
