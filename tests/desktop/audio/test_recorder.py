"""The recorder's logic against a fake input device: the callback only queues, drain writes."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from desktop.audio.backend import DeviceFailed, DeviceInfo, NoInputDevice, default_device
from desktop.audio.fake import FAKE_MICROPHONE, FAKE_SPEAKER, FakeBackend, tone
from desktop.audio.recorder import Recorder, list_recordings, recover_wav, wait_for_frames

RATE = 16_000


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
def recorder(backend: FakeBackend, tmp_path: Path) -> Recorder:
    return Recorder(backend, tmp_path / "recordings", blocksize=256)


def test_records_what_the_device_captures_to_a_lossless_wav(recorder, backend):
    path = recorder.start()
    assert path.parent == recorder.folder and path.suffix == ".wav"
    stream = backend.last_input
    assert stream.started and stream.samplerate == RATE and stream.channels == 1
    signal = tone(1000, 0.5, RATE, amplitude=0.5)
    stream.feed(signal)
    assert recorder.frames == 0  # the callback only queued the blocks
    blocks = recorder.drain()
    assert sum(len(b) for b in blocks) == len(signal)
    assert recorder.elapsed_seconds == pytest.approx(0.5)
    recording = recorder.stop()
    assert stream.closed
    assert recording.frames == len(signal) and recording.duration_seconds == pytest.approx(0.5)
    data, rate = sf.read(path, dtype="float32")
    assert rate == RATE
    assert sf.info(str(path)).subtype == "PCM_16"
    np.testing.assert_allclose(data, signal[:, 0], atol=1 / 32768 + 1e-6)


def test_the_file_holds_each_drain_at_once_so_a_crash_keeps_it(recorder, backend, tmp_path):
    path = recorder.start()
    backend.last_input.feed(tone(440, 0.25, RATE))
    recorder.drain()
    crashed = tmp_path / "crashed.wav"
    shutil.copyfile(path, crashed)  # what the disk holds if the app died now
    recorder.stop()
    with crashed.open("rb") as f:
        header = f.read(44)
    assert struct.unpack_from("<I", header, 40)[0] == 0  # libsndfile writes sizes at close
    assert recover_wav(crashed)
    assert struct.unpack_from("<I", crashed.read_bytes(), 40)[0] == 4000 * 2
    assert sf.info(str(crashed)).frames == 4000
    assert not recover_wav(crashed)  # nothing left to repair


def test_list_recordings_repairs_and_finds_leftovers(recorder, backend):
    path = recorder.start()
    backend.last_input.feed(tone(440, 0.1, RATE))
    recorder.stop()
    (recorder.folder / "recording-broken.wav").write_bytes(b"RIFF junk")
    (recorder.folder / "notes.txt").write_text("not a recording")
    found = list_recordings(recorder.folder)
    assert [r.path for r in found] == [path]
    assert found[0].frames == 1600
    assert list_recordings(recorder.folder / "missing") == []


def test_picks_the_chosen_device_and_its_rate(backend, tmp_path):
    mic48 = DeviceInfo(5, "USB mic", "ALSA", 1, 0, 48_000)
    backend.set_devices([FAKE_MICROPHONE, mic48, FAKE_SPEAKER])
    recorder = Recorder(backend, tmp_path)
    recorder.start(5, channels=2)
    stream = backend.last_input
    assert (stream.device, stream.samplerate, stream.channels) == (5, 48_000, 1)
    recorder.discard()
    assert not list(tmp_path.iterdir())


def test_no_input_device_is_a_clear_error_not_a_crash(tmp_path):
    recorder = Recorder(FakeBackend([FAKE_SPEAKER]), tmp_path)
    with pytest.raises(NoInputDevice, match="No microphone"):
        recorder.input_devices()
    with pytest.raises(NoInputDevice):
        recorder.start()
    assert not recorder.recording


def test_a_vanished_device_is_reported(recorder):
    with pytest.raises(NoInputDevice, match="no longer there"):
        recorder.start(42)


def test_a_device_that_fails_to_open_leaves_no_file(tmp_path):
    backend = FakeBackend(fail_open="Device unavailable")
    recorder = Recorder(backend, tmp_path)
    with pytest.raises(DeviceFailed, match="Device unavailable"):
        recorder.start()
    assert not recorder.recording
    assert list(tmp_path.iterdir()) == []


def test_a_device_that_fails_to_start_is_a_plain_error_and_leaves_no_file(tmp_path):
    backend = FakeBackend(fail_start="Error starting stream [PaErrorCode -9985]")
    recorder = Recorder(backend, tmp_path)
    with pytest.raises(DeviceFailed, match="The microphone could not be started: Error starting"):
        recorder.start()
    assert not recorder.recording
    assert backend.last_input.closed
    assert list(tmp_path.iterdir()) == []


def test_overflows_and_a_full_queue_are_counted_not_raised(backend, tmp_path):
    recorder = Recorder(backend, tmp_path, blocksize=100, queue_blocks=3)
    recorder.start()
    backend.last_input.feed(np.zeros(500, dtype=np.float32), overflow=True)
    assert recorder.overflows == 5
    assert recorder.dropped == 2
    assert sum(len(b) for b in recorder.drain()) == 300


def test_stop_twice_and_start_twice_are_refused(recorder):
    with pytest.raises(RuntimeError):
        recorder.stop()
    recorder.start()
    with pytest.raises(RuntimeError):
        recorder.start()
    recorder.stop()


def test_wait_for_frames_times_out(recorder, backend):
    recorder.start()
    backend.last_input.feed(np.zeros(1000, dtype=np.float32))
    assert wait_for_frames(recorder, 1000, timeout=1.0)
    assert not wait_for_frames(recorder, 5000, timeout=0.05)
    recorder.stop()


def test_default_device_prefers_the_system_default():
    other = DeviceInfo(3, "Line in", "ALSA", 2, 0, 44_100)
    assert default_device([other, FAKE_MICROPHONE]) == FAKE_MICROPHONE
    assert default_device([other]) == other
    assert default_device([FAKE_SPEAKER, FAKE_MICROPHONE], output=True) == FAKE_SPEAKER
