"""The audio device behind a small interface: PortAudio (sounddevice) in real use, a fake in tests.

Only this module imports :mod:`sounddevice`, and only when a device is first asked for: a
machine without PortAudio gets :class:`AudioUnavailable` with a plain message, never an
import error. Callbacks keep sounddevice's signature ``(data, frames, time, status)`` and run
on the audio thread: they must only copy frames.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol

import numpy as np
from numpy.typing import NDArray

from subtone.errors import SubtoneError

__all__ = [
    "DEFAULT_SAMPLERATE",
    "AudioBackend",
    "AudioError",
    "AudioUnavailable",
    "DeviceFailed",
    "DeviceInfo",
    "InputCallback",
    "NoInputDevice",
    "NoOutputDevice",
    "OutputCallback",
    "SoundDeviceBackend",
    "Stream",
    "default_device",
]

log = logging.getLogger(__name__)

DEFAULT_SAMPLERATE: Final = 48_000
"""Used when a device reports no default rate of its own."""
SAMPLE_DTYPE: Final = "float32"

Block = NDArray[np.float32]
InputCallback = Callable[[Block, int, Any, Any], None]
"""``(indata, frames, time, status)``: called on the audio thread with each captured block."""
OutputCallback = Callable[[Block, int, Any, Any], None]
"""``(outdata, frames, time, status)``: fills ``outdata`` in place on the audio thread."""


class AudioError(SubtoneError):
    """Something about the sound device: a message a person can act on."""

    code = "audio_error"


class AudioUnavailable(AudioError):
    code = "audio_unavailable"


class NoInputDevice(AudioError):
    code = "no_input_device"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(
            message
            or "No microphone was found. Connect one (or enable it in the system's sound "
            "settings) and refresh the list; any file can also be chosen as the secret."
        )


class NoOutputDevice(AudioError):
    code = "no_output_device"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(
            message
            or "No speaker or headphones were found, so nothing can be played. The file can "
            "still be saved and opened in another player."
        )


class DeviceFailed(AudioError):
    code = "device_failed"


@dataclass(frozen=True)
class DeviceInfo:
    """One sound device as the picker shows it."""

    index: int
    name: str
    host_api: str
    max_input_channels: int
    max_output_channels: int
    default_samplerate: float
    is_default_input: bool = False
    is_default_output: bool = False

    @property
    def is_input(self) -> bool:
        return self.max_input_channels > 0

    @property
    def is_output(self) -> bool:
        return self.max_output_channels > 0

    @property
    def label(self) -> str:
        api = f" ({self.host_api})" if self.host_api else ""
        return f"{self.name}{api}"


class Stream(Protocol):
    """An open stream: started, stopped and closed by its owner."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def close(self) -> None: ...


class AudioBackend(Protocol):
    """Lists devices and opens streams on them."""

    def devices(self) -> list[DeviceInfo]: ...

    def refresh(self) -> None:
        """Look for devices again (plugged in or out since the last look)."""

    def open_input(
        self,
        *,
        device: int | None,
        samplerate: float,
        channels: int,
        blocksize: int,
        callback: InputCallback,
    ) -> Stream: ...

    def open_output(
        self,
        *,
        device: int | None,
        samplerate: float,
        channels: int,
        blocksize: int,
        callback: OutputCallback,
    ) -> Stream: ...


def _sounddevice() -> Any:
    try:
        import sounddevice  # PortAudio is loaded on first use only
    except OSError as e:
        raise AudioUnavailable(
            "Sound is unavailable: the PortAudio library is not installed "
            f"(on Debian or Ubuntu: apt install libportaudio2). ({e})"
        ) from e
    return sounddevice


class _PortAudioStream:
    """A sounddevice stream whose PortAudio errors become :class:`DeviceFailed`, and which
    tells its backend when it is closed (PortAudio cannot rescan with a stream open)."""

    def __init__(self, sd: Any, stream: Any, what: str, closed: Callable[[Any], None]) -> None:
        self._sd = sd
        self._stream = stream
        self._what = what
        self._closed = closed

    def _call(self, action: str, fn: Callable[[], None]) -> None:
        try:
            fn()
        except self._sd.PortAudioError as e:
            raise DeviceFailed(f"The {self._what} could not be {action}: {e}.") from e

    @property
    def active(self) -> bool:
        """Still running (PortAudio ends a stream whose callback failed or stopped it)."""
        return bool(getattr(self._stream, "active", True))

    def start(self) -> None:
        self._call("started", self._stream.start)

    def stop(self) -> None:
        self._call("stopped", self._stream.stop)

    def close(self) -> None:
        try:
            self._call("closed", self._stream.close)
        finally:
            self._closed(self)


class SoundDeviceBackend:
    """:class:`AudioBackend` over PortAudio through :mod:`sounddevice`."""

    def __init__(self, module: Any = None) -> None:
        """``module``: what stands for :mod:`sounddevice` (tests); ``None``: the real one,
        imported on first use."""
        self._module = module
        self._open: set[Any] = set()
        """Streams opened and not yet closed."""

    def _sd(self) -> Any:
        return self._module if self._module is not None else _sounddevice()

    def _track(self, sd: Any, stream: Any, what: str) -> Stream:
        wrapped = _PortAudioStream(sd, stream, what, self._open.discard)
        self._open.add(wrapped)
        return wrapped

    def devices(self) -> list[DeviceInfo]:
        sd = self._sd()
        try:
            raw = list(sd.query_devices())
            apis = [api["name"] for api in sd.query_hostapis()]
            default_in, default_out = (int(i) for i in sd.default.device)
        except sd.PortAudioError as e:
            raise DeviceFailed(f"The sound system could not list its devices: {e}.") from e
        if default_in < 0 or default_out < 0:
            default_in, default_out = self._host_defaults(sd, default_in, default_out)
        return [
            DeviceInfo(
                index=int(d["index"]),
                name=str(d["name"]),
                host_api=apis[d["hostapi"]] if 0 <= d["hostapi"] < len(apis) else "",
                max_input_channels=int(d["max_input_channels"]),
                max_output_channels=int(d["max_output_channels"]),
                default_samplerate=float(d["default_samplerate"] or DEFAULT_SAMPLERATE),
                is_default_input=int(d["index"]) == default_in,
                is_default_output=int(d["index"]) == default_out,
            )
            for d in raw
        ]

    @staticmethod
    def _host_defaults(sd: Any, default_in: int, default_out: int) -> tuple[int, int]:
        """PortAudio's own defaults when sounddevice's are unset (-1)."""
        for kind in ("input", "output"):
            try:
                index = int(sd.query_devices(kind=kind)["index"])
            except (sd.PortAudioError, ValueError, KeyError, TypeError):
                continue
            if kind == "input" and default_in < 0:
                default_in = index
            if kind == "output" and default_out < 0:
                default_out = index
        return default_in, default_out

    def refresh(self) -> None:
        """Restart PortAudio so it scans for devices again (refused while a stream is open)."""
        if self._open:
            raise DeviceFailed("Stop playing or recording before looking for devices again.")
        sd = self._sd()
        sd._terminate()
        sd._initialize()

    def open_input(
        self,
        *,
        device: int | None,
        samplerate: float,
        channels: int,
        blocksize: int,
        callback: InputCallback,
    ) -> Stream:
        sd = self._sd()
        try:
            stream = sd.InputStream(
                device=device,
                samplerate=samplerate,
                channels=channels,
                dtype=SAMPLE_DTYPE,
                blocksize=blocksize,
                callback=callback,
            )
        except (sd.PortAudioError, ValueError) as e:
            raise DeviceFailed(f"The microphone could not be opened: {e}.") from e
        return self._track(sd, stream, "microphone")

    def open_output(
        self,
        *,
        device: int | None,
        samplerate: float,
        channels: int,
        blocksize: int,
        callback: OutputCallback,
    ) -> Stream:
        sd = self._sd()
        try:
            stream = sd.OutputStream(
                device=device,
                samplerate=samplerate,
                channels=channels,
                dtype=SAMPLE_DTYPE,
                blocksize=blocksize,
                callback=callback,
            )
        except (sd.PortAudioError, ValueError) as e:
            raise DeviceFailed(f"The speaker could not be opened: {e}.") from e
        return self._track(sd, stream, "speaker")


def default_device(devices: list[DeviceInfo], *, output: bool = False) -> DeviceInfo:
    """The system's default input (or output) device, else the first one there is."""
    usable = [d for d in devices if (d.is_output if output else d.is_input)]
    if not usable:
        raise NoOutputDevice() if output else NoInputDevice()
    for d in usable:
        if d.is_default_output if output else d.is_default_input:
            return d
    return usable[0]
