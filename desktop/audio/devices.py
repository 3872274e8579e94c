"""Microphones as a person knows them (Qt-free): names without PortAudio's host-API suffixes,
one entry per device, the system's default first.

PortAudio lists each device once per host API (on Windows: MME, DirectSound, WASAPI...) and,
on Linux, ALSA's plug-in names ("pulse", "default", "sysdefault", "dsnoop") beside the cards
("HDA Intel PCH: ALC3246 Analog (hw:0,0)"). Only the default input's host API is listed, the
plug-ins are named for what they are or left out, and hardware addresses are dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from desktop.audio.backend import DeviceInfo

__all__ = ["DEFAULT_INPUT_NAME", "DeviceChoice", "input_choices", "plain_name"]

DEFAULT_INPUT_NAME: Final = "System default microphone"
_ALSA_NAMES: Final = {
    "default": DEFAULT_INPUT_NAME,
    "pulse": "Sound server (PulseAudio / PipeWire)",
    "pipewire": "Sound server (PipeWire)",
    "jack": "JACK",
}
_HIDDEN: Final = frozenset(
    {
        "sysdefault",
        "dsnoop",
        "dmix",
        "front",
        "samplerate",
        "speexrate",
        "lavrate",
        "upmix",
        "vdownmix",
        "oss",
        "null",
        "spdif",
        "iec958",
        "hdmi",
    }
)
_HW_SUFFIX: Final = re.compile(r"\s*\((?:hw|plughw):[^)]*\)\s*$")


@dataclass(frozen=True)
class DeviceChoice:
    index: int
    name: str
    is_default: bool


def plain_name(device: DeviceInfo) -> str | None:
    """The name to show, or ``None`` for a plug-in nobody picks ("dsnoop")."""
    name = device.name.strip()
    if device.host_api.upper() == "ALSA" or name in _ALSA_NAMES:
        lower = name.lower()
        if lower in _ALSA_NAMES:
            return _ALSA_NAMES[lower]
        if lower in _HIDDEN or lower.split(":")[0] in _HIDDEN:
            return None
        name = _HW_SUFFIX.sub("", name)
    return name or None


def input_choices(devices: list[DeviceInfo]) -> list[DeviceChoice]:
    """The inputs worth offering, default first, each name once."""
    inputs = [d for d in devices if d.is_input]
    default = next((d for d in inputs if d.is_default_input), None)
    if default is not None:
        inputs = [d for d in inputs if d.host_api == default.host_api]
    choices: list[DeviceChoice] = []
    seen: set[str] = set()
    for device in inputs:
        name = plain_name(device)
        if name is None and device is default:
            name = DEFAULT_INPUT_NAME
        if name is None or name in seen:
            continue
        seen.add(name)
        choices.append(DeviceChoice(device.index, name, device is default))
    if not choices and inputs:  # only plug-ins: offer them rather than nothing
        choices = [DeviceChoice(d.index, d.name, d is default) for d in inputs]
    choices.sort(key=lambda c: not c.is_default)
    return choices
