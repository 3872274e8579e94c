"""Sound for the desktop app, without Qt: recording, playback, levels and waveforms."""

from desktop.audio.backend import (
    AudioBackend,
    AudioError,
    AudioUnavailable,
    DeviceFailed,
    DeviceInfo,
    NoInputDevice,
    NoOutputDevice,
    SoundDeviceBackend,
    default_device,
)
from desktop.audio.levels import Level, MeterBallistics, amplitude_to_dbfs, measure
from desktop.audio.player import Player
from desktop.audio.recorder import Recorder, Recording, list_recordings, recover_wav
from desktop.audio.waveform import ScrollingWaveform, min_max_columns

__all__ = [
    "AudioBackend",
    "AudioError",
    "AudioUnavailable",
    "DeviceFailed",
    "DeviceInfo",
    "Level",
    "MeterBallistics",
    "NoInputDevice",
    "NoOutputDevice",
    "Player",
    "Recorder",
    "Recording",
    "ScrollingWaveform",
    "SoundDeviceBackend",
    "amplitude_to_dbfs",
    "default_device",
    "list_recordings",
    "measure",
    "min_max_columns",
    "recover_wav",
]
