"""Microphones named as a person knows them (issue 14.8)."""

from __future__ import annotations

from dataclasses import replace

from desktop.audio.backend import DeviceInfo
from desktop.audio.devices import DEFAULT_INPUT_NAME, input_choices

MIC = DeviceInfo(0, "", "ALSA", 2, 0, 48_000.0)


def alsa(index: int, name: str, *, default: bool = False, api: str = "ALSA") -> DeviceInfo:
    return replace(MIC, index=index, name=name, host_api=api, is_default_input=default)


def test_alsa_names_lose_host_api_and_hardware_address_default_first():
    devices = [
        alsa(0, "HDA Intel PCH: ALC3246 Analog (hw:0,0)"),
        alsa(1, "sysdefault"),
        alsa(2, "pulse"),
        alsa(3, "dsnoop"),
        alsa(4, "default", default=True),
    ]
    names = [(c.index, c.name, c.is_default) for c in input_choices(devices)]
    assert names == [
        (4, DEFAULT_INPUT_NAME, True),
        (0, "HDA Intel PCH: ALC3246 Analog", False),
        (2, "Sound server (PulseAudio / PipeWire)", False),
    ]
    assert all("(ALSA)" not in name for _, name, _ in names)


def test_one_entry_per_device_from_the_default_inputs_host_api():
    devices = [
        alsa(0, "Microphone (USB Audio)", api="MME", default=True),
        alsa(1, "Microphone (USB Audio)", api="Windows WASAPI"),
        alsa(2, "Microphone (USB Audio)", api="Windows DirectSound"),
        alsa(3, "Line In (Realtek)", api="MME"),
        alsa(4, "Line In (Realtek)", api="MME"),
        replace(alsa(5, "Speakers", api="MME"), max_input_channels=0),
    ]
    assert [c.name for c in input_choices(devices)] == [
        "Microphone (USB Audio)",
        "Line In (Realtek)",
    ]


def test_only_plugins_are_still_offered():
    assert [c.name for c in input_choices([alsa(1, "dsnoop")])] == ["dsnoop"]
