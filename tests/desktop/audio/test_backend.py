"""The PortAudio backend's own guards, on a stand-in for the sounddevice module."""

from __future__ import annotations

import pytest

from desktop.audio.backend import DeviceFailed, SoundDeviceBackend


class PortAudioError(Exception):
    pass


class RawStream:
    """A sounddevice stream that fails where told to, with PortAudio's own error."""

    def __init__(self, fail: str = "", **kwargs) -> None:
        self.fail = fail
        self.closed = False

    def start(self) -> None:
        if self.fail == "start":
            raise PortAudioError("Error starting stream [PaErrorCode -9985]")

    def stop(self) -> None:
        if self.fail == "stop":
            raise PortAudioError("Error stopping stream [PaErrorCode -9999]")

    def close(self) -> None:
        self.closed = True


class FakeSoundDevice:
    """What SoundDeviceBackend uses of the sounddevice module."""

    PortAudioError = PortAudioError

    def __init__(self, fail: str = "") -> None:
        self.fail = fail
        self.terminated = 0
        self.streams: list[RawStream] = []

    def _stream(self, **kwargs) -> RawStream:
        stream = RawStream(self.fail, **kwargs)
        self.streams.append(stream)
        return stream

    InputStream = OutputStream = _stream

    def _terminate(self) -> None:
        self.terminated += 1

    def _initialize(self) -> None:
        pass


def _open(backend: SoundDeviceBackend, kind: str):
    opener = backend.open_input if kind == "input" else backend.open_output
    return opener(device=None, samplerate=16_000, channels=1, blocksize=256, callback=print)


@pytest.mark.parametrize(("kind", "what"), [("input", "microphone"), ("output", "speaker")])
def test_a_stream_that_fails_to_start_raises_a_plain_error(kind, what):
    backend = SoundDeviceBackend(FakeSoundDevice(fail="start"))
    stream = _open(backend, kind)
    with pytest.raises(DeviceFailed, match=f"The {what} could not be started: Error starting"):
        stream.start()


def test_a_stream_that_fails_to_stop_raises_a_plain_error():
    backend = SoundDeviceBackend(FakeSoundDevice(fail="stop"))
    stream = _open(backend, "output")
    with pytest.raises(DeviceFailed, match="could not be stopped"):
        stream.stop()


def test_refresh_is_refused_while_a_stream_is_open():
    sd = FakeSoundDevice()
    backend = SoundDeviceBackend(sd)
    stream = _open(backend, "output")
    stream.start()
    with pytest.raises(DeviceFailed, match="Stop playing or recording"):
        backend.refresh()
    assert sd.terminated == 0  # PortAudio was not restarted under an open stream
    stream.close()
    assert sd.streams[0].closed
    backend.refresh()
    assert sd.terminated == 1
