"""A fake sound system for tests and demos: devices that exist only in memory.

An input stream captures nothing by itself: call :meth:`FakeStream.feed` with blocks (from
any thread) and they reach the callback as PortAudio would pass them. An output stream plays
when :meth:`FakeStream.pull` is called, returning what the callback wrote.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from desktop.audio.backend import (
    DeviceFailed,
    DeviceInfo,
    InputCallback,
    OutputCallback,
)

__all__ = [
    "FAKE_MICROPHONE",
    "FAKE_SPEAKER",
    "FakeBackend",
    "FakePortAudioError",
    "FakeStatus",
    "FakeStream",
    "tone",
]


class FakePortAudioError(Exception):
    """What a real stream raises when it fails to start: not one of the app's errors."""


FAKE_MICROPHONE: Final = DeviceInfo(
    index=0,
    name="Fake microphone",
    host_api="Fake",
    max_input_channels=2,
    max_output_channels=0,
    default_samplerate=16_000,
    is_default_input=True,
)
FAKE_SPEAKER: Final = DeviceInfo(
    index=1,
    name="Fake speaker",
    host_api="Fake",
    max_input_channels=0,
    max_output_channels=2,
    default_samplerate=16_000,
    is_default_output=True,
)


@dataclass(frozen=True)
class FakeStatus:
    input_overflow: bool = False
    output_underflow: bool = False

    def __bool__(self) -> bool:
        return self.input_overflow or self.output_underflow


def tone(
    frequency: float,
    seconds: float,
    samplerate: int,
    *,
    amplitude: float = 0.5,
    channels: int = 1,
) -> NDArray[np.float32]:
    """A sine, ``(frames, channels)`` float32."""
    t = np.arange(round(seconds * samplerate)) / samplerate
    wave = (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)
    return np.repeat(wave[:, None], channels, axis=1)


class FakeStream:
    def __init__(
        self,
        *,
        kind: str,
        device: int | None,
        samplerate: float,
        channels: int,
        blocksize: int,
        callback: InputCallback | OutputCallback,
        fail_start: str | None = None,
    ) -> None:
        self.kind = kind
        self.fail_start = fail_start
        self.device = device
        self.samplerate = samplerate
        self.channels = channels
        self.blocksize = blocksize
        self.callback = callback
        self.started = False
        self.closed = False
        self.fed_frames = 0
        self._lock = threading.Lock()

    def start(self) -> None:
        if self.fail_start is not None:
            raise FakePortAudioError(self.fail_start)
        self.started = True

    def stop(self) -> None:
        self.started = False

    def close(self) -> None:
        self.started = False
        self.closed = True

    @property
    def active(self) -> bool:
        return self.started and not self.closed

    def feed(self, samples: ArrayLike, *, overflow: bool = False) -> None:
        """Deliver ``samples`` to an input callback in ``blocksize`` blocks."""
        data = np.asarray(samples, dtype=np.float32)
        if data.ndim == 1:
            data = data[:, None]
        if data.shape[1] != self.channels:
            data = np.repeat(data[:, :1], self.channels, axis=1)
        with self._lock:
            for start in range(0, len(data), self.blocksize):
                if not self.active:
                    return
                block = np.ascontiguousarray(data[start : start + self.blocksize])
                self.callback(block, len(block), None, FakeStatus(input_overflow=overflow))
                self.fed_frames += len(block)

    def pull(self, frames: int) -> NDArray[np.float32]:
        """Run an output callback for ``frames`` frames; returns what it wrote."""
        out = np.full((frames, self.channels), np.nan, dtype=np.float32)
        if self.active:
            self.callback(out, frames, None, FakeStatus())
        return out


class FakeBackend:
    """An :class:`~desktop.audio.backend.AudioBackend` with scripted devices."""

    def __init__(
        self,
        devices: list[DeviceInfo] | None = None,
        *,
        fail_open: str | None = None,
        fail_start: str | None = None,
    ) -> None:
        self._devices = list(devices) if devices is not None else [FAKE_MICROPHONE, FAKE_SPEAKER]
        self.fail_open = fail_open
        """A message: opening any stream fails with :class:`DeviceFailed` saying it."""
        self.fail_start = fail_start
        """A message: starting any stream raises :class:`FakePortAudioError` (a raw error, as
        PortAudio's would be)."""
        self.inputs: list[FakeStream] = []
        self.outputs: list[FakeStream] = []
        self.refreshes = 0

    def set_devices(self, devices: list[DeviceInfo]) -> None:
        """What the next :meth:`devices` call lists (as if plugged in or out)."""
        self._devices = list(devices)

    def devices(self) -> list[DeviceInfo]:
        return list(self._devices)

    def refresh(self) -> None:
        """Refused while a stream is open, as :class:`SoundDeviceBackend` refuses it."""
        if any(not s.closed for s in self.inputs + self.outputs):
            raise DeviceFailed("Stop playing or recording before looking for devices again.")
        self.refreshes += 1

    def _open(self, kind: str, **kwargs: Any) -> FakeStream:
        if self.fail_open is not None:
            raise DeviceFailed(self.fail_open)
        stream = FakeStream(kind=kind, fail_start=self.fail_start, **kwargs)
        (self.inputs if kind == "input" else self.outputs).append(stream)
        return stream

    def open_input(
        self,
        *,
        device: int | None,
        samplerate: float,
        channels: int,
        blocksize: int,
        callback: InputCallback,
    ) -> FakeStream:
        return self._open(
            "input",
            device=device,
            samplerate=samplerate,
            channels=channels,
            blocksize=blocksize,
            callback=callback,
        )

    def open_output(
        self,
        *,
        device: int | None,
        samplerate: float,
        channels: int,
        blocksize: int,
        callback: OutputCallback,
    ) -> FakeStream:
        return self._open(
            "output",
            device=device,
            samplerate=samplerate,
            channels=channels,
            blocksize=blocksize,
            callback=callback,
        )

    @property
    def last_input(self) -> FakeStream:
        return self.inputs[-1]

    @property
    def last_output(self) -> FakeStream:
        return self.outputs[-1]
