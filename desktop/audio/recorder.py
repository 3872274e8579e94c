"""Record the microphone to a lossless WAV file, safely, without blocking anything.

The audio callback (on PortAudio's thread) only copies each block into a queue. The owner
calls :meth:`Recorder.drain` from its own thread (a GUI timer): that writes the queued blocks
to the file, flushes it, and returns them for the meters. The file lives under
``platformdirs.user_data_dir("subtone")/recordings`` until the secret is sent, so a crash loses
at most what was still queued; :func:`recover_wav` repairs the header of a file whose writer
died, and :func:`list_recordings` finds what earlier runs left.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import struct
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
import platformdirs
import soundfile as sf
from numpy.typing import NDArray

from desktop.audio.backend import (
    DEFAULT_SAMPLERATE,
    AudioBackend,
    AudioError,
    DeviceFailed,
    DeviceInfo,
    NoInputDevice,
    SoundDeviceBackend,
    Stream,
    default_device,
)

__all__ = [
    "DEFAULT_BLOCK_FRAMES",
    "DEFAULT_CHANNELS",
    "RECORDING_SUBTYPE",
    "Recorder",
    "Recording",
    "default_recordings_dir",
    "list_recordings",
    "recording_files",
    "recover_wav",
    "wait_for_frames",
]

log = logging.getLogger(__name__)

APP_NAME: Final = "subtone"
RECORDINGS_FOLDER: Final = "recordings"
RECORDING_PREFIX: Final = "recording-"
RECORDING_SUFFIX: Final = ".wav"
RECORDING_FORMAT: Final = "WAV"
RECORDING_SUBTYPE: Final = "PCM_16"
DEFAULT_CHANNELS: Final = 1
DEFAULT_BLOCK_FRAMES: Final = 1024
QUEUE_MAX_BLOCKS: Final = 4096
"""About 90 s of 1024-frame blocks at 48 kHz: the GUI would have to freeze that long to lose any."""
_FOLDER_MODE: Final = 0o700
_RIFF_HEADER: Final = struct.Struct("<4sI4s")
_CHUNK_HEADER: Final = struct.Struct("<4sI")


def default_recordings_dir() -> Path:
    """``<user data dir>/subtone/recordings``."""
    return Path(platformdirs.user_data_dir(APP_NAME)) / RECORDINGS_FOLDER


@dataclass(frozen=True)
class Recording:
    path: Path
    samplerate: int
    channels: int
    frames: int

    @property
    def duration_seconds(self) -> float:
        return self.frames / self.samplerate if self.samplerate else 0.0

    @classmethod
    def from_file(cls, path: Path) -> Recording:
        info = sf.info(str(path))
        return cls(path, int(info.samplerate), int(info.channels), int(info.frames))


def recover_wav(path: Path) -> bool:
    """Fix the RIFF and ``data`` sizes of a WAV whose writer died before closing it.

    libsndfile writes the sizes only when it closes a file; other players need them. The data
    size becomes what the file really holds (whole frames). Returns whether anything changed.
    """
    with path.open("r+b") as f:
        head = f.read(_RIFF_HEADER.size)
        if len(head) < _RIFF_HEADER.size:
            return False
        riff, _, wave = _RIFF_HEADER.unpack(head)
        if riff != b"RIFF" or wave != b"WAVE":
            return False
        size = f.seek(0, 2)
        offset = _RIFF_HEADER.size
        block_align = 0
        while offset + _CHUNK_HEADER.size <= size:
            f.seek(offset)
            chunk_id, chunk_size = _CHUNK_HEADER.unpack(f.read(_CHUNK_HEADER.size))
            body = offset + _CHUNK_HEADER.size
            if chunk_id == b"fmt ":
                fmt = f.read(min(chunk_size, 16))
                if len(fmt) >= 14:
                    block_align = struct.unpack_from("<H", fmt, 12)[0]
            elif chunk_id == b"data":
                room = size - body
                if block_align:
                    room -= room % block_align
                if chunk_size == room and _riff_size_ok(f, size):
                    return False
                f.seek(offset + 4)
                f.write(struct.pack("<I", room))
                f.seek(4)
                f.write(struct.pack("<I", min(size - 8, 0xFFFFFFFF)))
                return True
            offset = body + chunk_size + (chunk_size & 1)
    return False


def _riff_size_ok(f: Any, size: int) -> bool:
    f.seek(4)
    return bool(struct.unpack("<I", f.read(4))[0] == size - 8)


def recording_files(folder: Path) -> list[Path]:
    """The recording files in ``folder`` now (a quick listing; nothing is read)."""
    if not folder.is_dir():
        return []
    return sorted(folder.glob(f"{RECORDING_PREFIX}*{RECORDING_SUFFIX}"))


def list_recordings(folder: Path, paths: list[Path] | None = None) -> list[Recording]:
    """Recordings left in ``folder`` (newest first), their headers repaired where needed.

    ``paths``: only these files (listed earlier with :func:`recording_files`), so that a
    recording started since is not touched.
    """
    found: list[Recording] = []
    for path in recording_files(folder) if paths is None else paths:
        try:
            recover_wav(path)
            recording = Recording.from_file(path)
        except (OSError, sf.SoundFileError, RuntimeError) as e:
            log.warning("skipping unreadable recording %s: %s", path, e)
            continue
        if recording.frames:
            found.append(recording)
    found.sort(key=lambda r: r.path.stat().st_mtime, reverse=True)
    return found


class Recorder:
    """One recording at a time, from one input device, into one WAV file."""

    def __init__(
        self,
        backend: AudioBackend | None = None,
        folder: Path | None = None,
        *,
        blocksize: int = DEFAULT_BLOCK_FRAMES,
        queue_blocks: int = QUEUE_MAX_BLOCKS,
    ) -> None:
        self.backend: AudioBackend = backend if backend is not None else SoundDeviceBackend()
        self.folder = folder if folder is not None else default_recordings_dir()
        self.blocksize = blocksize
        self._queue: queue.Queue[NDArray[np.float32]] = queue.Queue(maxsize=queue_blocks)
        self._stream: Stream | None = None
        self._file: sf.SoundFile | None = None
        self._lock = threading.Lock()
        self.path: Path | None = None
        self.samplerate = 0
        self.channels = 0
        self.frames = 0
        self.overflows = 0
        """Blocks PortAudio reported as overflowed (the device dropped input)."""
        self.dropped = 0
        """Blocks lost because the queue was full (the owner did not drain in time)."""

    # Devices ---------------------------------------------------------------------------

    def input_devices(self) -> list[DeviceInfo]:
        """The devices that can record; raises :class:`NoInputDevice` when there are none."""
        inputs = [d for d in self.backend.devices() if d.is_input]
        if not inputs:
            raise NoInputDevice()
        return inputs

    # Recording -------------------------------------------------------------------------

    @property
    def recording(self) -> bool:
        return self._stream is not None

    @property
    def elapsed_seconds(self) -> float:
        """Seconds written to the file so far (the audio clock, not the wall clock)."""
        return self.frames / self.samplerate if self.samplerate else 0.0

    def start(
        self,
        device: int | None = None,
        *,
        samplerate: int | None = None,
        channels: int = DEFAULT_CHANNELS,
    ) -> Path:
        """Open the device (``None``: the default input) and start recording to a new file."""
        if self._stream is not None:
            raise RuntimeError("already recording")
        devices = self.input_devices()
        chosen = (
            default_device(devices)
            if device is None
            else next((d for d in devices if d.index == device), None)
        )
        if chosen is None:
            raise NoInputDevice("The chosen microphone is no longer there; refresh the list.")
        rate = int(samplerate or chosen.default_samplerate or DEFAULT_SAMPLERATE)
        channels = max(1, min(channels, chosen.max_input_channels))
        self.folder.mkdir(parents=True, exist_ok=True, mode=_FOLDER_MODE)
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        path = self.folder / f"{RECORDING_PREFIX}{stamp}-{uuid.uuid4().hex[:6]}{RECORDING_SUFFIX}"
        self._drop_queued()
        sound = sf.SoundFile(
            str(path),
            mode="w",
            samplerate=rate,
            channels=channels,
            format=RECORDING_FORMAT,
            subtype=RECORDING_SUBTYPE,
        )
        stream: Stream | None = None
        try:
            stream = self.backend.open_input(
                device=chosen.index if device is not None else None,
                samplerate=rate,
                channels=channels,
                blocksize=self.blocksize,
                callback=self._callback,
            )
            stream.start()
        except BaseException as e:
            if stream is not None:
                with contextlib.suppress(Exception):
                    stream.close()
            sound.close()
            path.unlink(missing_ok=True)
            if isinstance(e, AudioError) or not isinstance(e, Exception):
                raise
            raise DeviceFailed(f"The microphone could not be started: {e}.") from e
        self._file, self._stream, self.path = sound, stream, path
        self.samplerate, self.channels = rate, channels
        self.frames = self.overflows = self.dropped = 0
        return path

    def _callback(
        self, indata: NDArray[np.float32], frames: int, time_info: Any, status: Any
    ) -> None:
        """On the audio thread: copy the block, nothing else."""
        if status and getattr(status, "input_overflow", False):
            self.overflows += 1
        try:
            self._queue.put_nowait(indata.copy())
        except queue.Full:
            self.dropped += 1

    def drain(self) -> list[NDArray[np.float32]]:
        """Write what was captured since the last call to the file; returns those blocks."""
        blocks: list[NDArray[np.float32]] = []
        while True:
            try:
                blocks.append(self._queue.get_nowait())
            except queue.Empty:
                break
        with self._lock:
            if self._file is None or not blocks:
                return blocks
            data = np.concatenate(blocks)
            self._file.write(data)
            self._file.flush()
            self.frames += len(data)
        return blocks

    def stop(self) -> Recording:
        """Stop the device, write the rest, close the file; returns the recording."""
        stream, self._stream = self._stream, None
        if stream is None or self.path is None:
            raise RuntimeError("not recording")
        try:
            stream.stop()
        finally:
            with contextlib.suppress(Exception):
                stream.close()
        self.drain()
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
        return Recording(self.path, self.samplerate, self.channels, self.frames)

    def discard(self) -> None:
        """Stop (if recording) and delete the file."""
        if self._stream is not None:
            with contextlib.suppress(Exception):
                self.stop()
        if self.path is not None:
            self.path.unlink(missing_ok=True)
        self.path = None
        self.frames = 0

    def _drop_queued(self) -> None:
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                return


def wait_for_frames(recorder: Recorder, frames: int, timeout: float) -> bool:
    """Drain until the file holds ``frames`` frames (for scripts and tests); False on timeout."""
    deadline = time.monotonic() + timeout
    while recorder.frames < frames:
        if time.monotonic() > deadline:
            return False
        recorder.drain()
        time.sleep(0.01)
    return True
