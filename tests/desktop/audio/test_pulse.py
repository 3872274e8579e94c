"""The recorder against a real PortAudio input: a virtual PulseAudio microphone fed a known tone.

A private PulseAudio daemon (its own XDG_RUNTIME_DIR) gets a pipe source as its default
source; a thread writes a 1 kHz sine at a known amplitude into the pipe, and the recorder
records it through sounddevice exactly as it records a real microphone. Skips, saying why,
where PulseAudio is missing or cannot start; the daemon is always stopped afterwards.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from desktop.audio.backend import SoundDeviceBackend
from desktop.audio.recorder import Recorder
from tests.desktop.pulse import PulseAudio, PulseUnavailable, portaudio_on

TONE_HZ = 1000.0
TONE_AMPLITUDE = 0.25
FIFO_RATE = 16_000
CHUNK_SECONDS = 0.05
RECORD_SECONDS = 1.5


@dataclass
class VirtualMicrophone:
    fifo: Path
    server: str
    stop: threading.Event


def _feed(fifo: Path, stop: threading.Event) -> None:
    """Write the tone into the pipe in real time until told to stop."""
    chunk = round(FIFO_RATE * CHUNK_SECONDS)
    n = 0
    with contextlib.suppress(OSError), fifo.open("wb", buffering=0) as pipe:
        start = time.monotonic()
        while not stop.is_set():
            t = (np.arange(n, n + chunk)) / FIFO_RATE
            wave = TONE_AMPLITUDE * np.sin(2 * np.pi * TONE_HZ * t)
            pipe.write((wave * 32767).astype("<i2").tobytes())
            n += chunk
            ahead = n / FIFO_RATE - (time.monotonic() - start) - 0.2  # keep 0.2 s queued
            if ahead > 0:
                stop.wait(ahead)


@pytest.fixture
def virtual_microphone(monkeypatch: pytest.MonkeyPatch) -> Iterator[VirtualMicrophone]:
    sd = pytest.importorskip("sounddevice", reason="sounddevice needs PortAudio (libportaudio2)")
    pulse = PulseAudio()
    stop = threading.Event()
    feeder: threading.Thread | None = None
    try:
        try:
            pulse.start()
        except PulseUnavailable as e:
            pytest.skip(str(e))
        assert pulse.runtime is not None
        fifo = pulse.runtime / "mic.fifo"  # the module creates it
        pulse.pactl("load-module", "module-null-sink", "sink_name=vsink")
        pulse.pactl(
            "load-module",
            "module-pipe-source",
            "source_name=filemic",
            f"file={fifo}",
            "format=s16le",
            f"rate={FIFO_RATE}",
            "channels=1",
        )
        pulse.pactl("set-default-source", "filemic")
        feeder = threading.Thread(target=_feed, args=(fifo, stop), daemon=True)
        feeder.start()
        with portaudio_on(pulse, sd, monkeypatch):
            yield VirtualMicrophone(fifo, pulse.server, stop)
    finally:
        stop.set()
        pulse.stop()
        if feeder is not None:
            feeder.join(timeout=5)
    assert pulse.stopped, "pulseaudio is still running"


def _dominant_frequency(samples: np.ndarray, rate: int) -> float:
    window = samples * np.hanning(len(samples))
    spectrum = np.abs(np.fft.rfft(window))
    peak = int(np.argmax(spectrum[1:])) + 1
    return peak * rate / len(samples)


def test_records_the_virtual_microphone_at_the_right_pitch_and_level(
    virtual_microphone: VirtualMicrophone, tmp_path: Path
):
    recorder = Recorder(SoundDeviceBackend(), tmp_path / "recordings")
    devices = recorder.input_devices()
    assert any(d.is_default_input for d in devices)
    path = recorder.start()  # the default input: the pipe source
    try:
        deadline = time.monotonic() + 15
        while recorder.frames < RECORD_SECONDS * recorder.samplerate:
            assert time.monotonic() < deadline, "no audio arrived from the virtual microphone"
            recorder.drain()
            time.sleep(0.02)
    finally:
        recording = recorder.stop()
    assert recording.path == path and recording.frames >= RECORD_SECONDS * recording.samplerate
    data, rate = sf.read(path, dtype="float64", always_2d=True)
    steady = data[len(data) // 3 :, 0]  # skip the stream's start-up
    assert _dominant_frequency(steady, rate) == pytest.approx(TONE_HZ, abs=5.0)
    rms_db = 20 * np.log10(np.sqrt(np.mean(steady**2)))
    expected_db = 20 * np.log10(TONE_AMPLITUDE / np.sqrt(2))
    assert rms_db == pytest.approx(expected_db, abs=2.0)
