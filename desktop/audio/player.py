"""Play a sound file through an output device (Qt-free).

Playing is two steps, so a GUI never reads a file on its own thread: :meth:`Player.load`
reads the file into memory (call it from a worker thread), :meth:`Player.play_sound` opens the
device and starts (quick, on the owner's thread). The output callback only copies a slice;
the owner polls :meth:`Player.poll` from its own thread (a GUI timer) to learn the position
and to close the stream once the end was played. :meth:`Player.play` does both at once.

The position follows the clock, not the callback alone: PortAudio asks for a few blocks ahead,
and a device that stalls (ALSA underruns on a virtual sink) may stop asking altogether. A
stream that stopped by itself, or that is still open well after the sound's end, is closed.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import soundfile as sf
from numpy.typing import NDArray

from desktop.audio.backend import (
    AudioBackend,
    AudioError,
    DeviceFailed,
    NoOutputDevice,
    SoundDeviceBackend,
    Stream,
    default_device,
)

__all__ = ["MAX_PLAY_SECONDS", "Player", "Sound", "load_sound"]

MAX_PLAY_SECONDS: Final = 3 * 3600
"""Longer files are refused (they would be held in memory)."""
PLAY_BLOCK_FRAMES: Final = 1024
STALL_GRACE_SECONDS: Final = 1.0
"""How long past a sound's end a stream may stay open before it counts as stalled."""


@dataclass(frozen=True)
class Sound:
    """A file's samples, ready to play: ``(frames, channels)`` float32."""

    path: Path
    data: NDArray[np.float32]
    samplerate: int

    @property
    def channels(self) -> int:
        return int(self.data.shape[1])

    @property
    def duration_seconds(self) -> float:
        return len(self.data) / self.samplerate if self.samplerate else 0.0


def load_sound(path: Path, max_channels: int = 2) -> Sound:
    """Read ``path`` for playing on a device of ``max_channels`` (more are mixed down to one).

    Raises :class:`AudioError` with a plain message for a file that is not sound, is gone, or
    is too long to hold in memory.
    """
    try:
        info = sf.info(str(path))
        if info.frames > MAX_PLAY_SECONDS * info.samplerate:
            raise AudioError(f"{path.name} is too long to play here; open it in a player.")
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError) as e:
        raise AudioError(
            f"{path.name} cannot be played: it is not a sound file this app reads."
        ) from e
    except OSError as e:
        raise AudioError(f"{path.name} cannot be read: {e.strerror}.") from e
    if data.shape[1] > max(1, max_channels):
        data = data.mean(axis=1, keepdims=True, dtype=np.float32)
    return Sound(path, np.ascontiguousarray(data), int(rate))


class Player:
    """Plays one sound at a time."""

    def __init__(
        self,
        backend: AudioBackend | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.backend: AudioBackend = backend if backend is not None else SoundDeviceBackend()
        self._clock = clock
        self._started_at = 0.0
        self._stream: Stream | None = None
        self._data: NDArray[np.float32] = np.zeros((0, 1), dtype=np.float32)
        self._position = 0
        self._done = threading.Event()
        self.samplerate = 0
        self.path: Path | None = None

    @property
    def playing(self) -> bool:
        return self._stream is not None

    @property
    def position_seconds(self) -> float:
        """Where the listener is: the time since the start (the callback runs ahead of what
        is heard, and stops being called on a stalled device), never past the end."""
        if not self.samplerate:
            return 0.0
        if self._done.is_set() or self._stream is None:
            return min(self._position / self.samplerate, self.duration_seconds)
        return min(max(0.0, self._clock() - self._started_at), self.duration_seconds)

    @property
    def duration_seconds(self) -> float:
        return len(self._data) / self.samplerate if self.samplerate else 0.0

    def output_channels(self) -> int:
        """How many channels the default output takes; :class:`NoOutputDevice` if none."""
        outputs = [d for d in self.backend.devices() if d.is_output]
        if not outputs:
            raise NoOutputDevice()
        return max(1, default_device(outputs, output=True).max_output_channels)

    def load(self, path: Path) -> Sound:
        """Read ``path`` for the default output (slow for a long file: not on a GUI thread)."""
        return load_sound(path, self.output_channels())

    def play(self, path: Path, device: int | None = None) -> None:
        """Start playing ``path`` from the beginning (stopping whatever was playing)."""
        self.play_sound(self.load(path), device)

    def play_sound(self, sound: Sound, device: int | None = None) -> None:
        """Start playing ``sound`` from the beginning (stopping whatever was playing)."""
        self.stop()
        self._data = sound.data
        self._position = 0
        self._done.clear()
        self.samplerate = sound.samplerate
        self.path = sound.path
        stream = self.backend.open_output(
            device=device,
            samplerate=self.samplerate,
            channels=sound.channels,
            blocksize=PLAY_BLOCK_FRAMES,
            callback=self._callback,
        )
        try:
            stream.start()
        except BaseException as e:
            with contextlib.suppress(Exception):
                stream.close()
            if isinstance(e, AudioError) or not isinstance(e, Exception):
                raise
            raise DeviceFailed(f"The speaker could not be started: {e}.") from e
        self._stream = stream
        self._started_at = self._clock()

    def _callback(
        self, outdata: NDArray[np.float32], frames: int, time_info: Any, status: Any
    ) -> None:
        """On the audio thread: copy the next slice (silence after the end)."""
        start = self._position
        chunk = self._data[start : start + frames]
        outdata[: len(chunk)] = chunk
        outdata[len(chunk) :] = 0.0
        self._position = start + len(chunk)
        if self._position >= len(self._data):
            self._done.set()

    def poll(self) -> bool:
        """Whether it is still playing; closes the stream once the end has been played, once
        it stopped by itself, or once it is stalled well past the end."""
        stream = self._stream
        if stream is None:
            return False
        overdue = self._clock() - self._started_at > self.duration_seconds + STALL_GRACE_SECONDS
        if self._done.is_set() or overdue or not getattr(stream, "active", True):
            self.stop()
        return self.playing

    def stop(self) -> None:
        stream, self._stream = self._stream, None
        if stream is None:
            return
        with contextlib.suppress(Exception):
            stream.stop()
        with contextlib.suppress(Exception):
            stream.close()
