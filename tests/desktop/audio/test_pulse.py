"""The recorder against a real PortAudio input: a virtual PulseAudio microphone fed a known tone.

A private PulseAudio daemon (its own XDG_RUNTIME_DIR) gets a pipe source as its default
source; a thread writes a 1 kHz sine at a known amplitude into the pipe, and the recorder
records it through sounddevice exactly as it records a real microphone. Skips, saying why,
where PulseAudio is missing or cannot start; the daemon is always stopped afterwards.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
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

TONE_HZ = 1000.0
TONE_AMPLITUDE = 0.25
FIFO_RATE = 16_000
CHUNK_SECONDS = 0.05
RECORD_SECONDS = 1.5
START_TIMEOUT_SECONDS = 15.0


@dataclass
class VirtualMicrophone:
    fifo: Path
    server: str
    stop: threading.Event


def _alive(pid: int) -> bool:
    """Running (a zombie left for init to reap counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _stop_daemon(pid: int) -> None:
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _alive(pid):
                return
            time.sleep(0.05)


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=20, check=False)


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
    if shutil.which("pulseaudio") is None or shutil.which("pactl") is None:
        pytest.skip("PulseAudio is not installed (apt-get install pulseaudio pulseaudio-utils)")
    sd = pytest.importorskip("sounddevice", reason="sounddevice needs PortAudio (libportaudio2)")
    runtime = Path(tempfile.mkdtemp(prefix="subtone-pa-"))  # short: a socket path has a limit
    runtime.chmod(0o700)
    env = os.environ | {"XDG_RUNTIME_DIR": str(runtime), "HOME": str(runtime)}
    env.pop("PULSE_SERVER", None)
    pid: int | None = None
    stop = threading.Event()
    feeder: threading.Thread | None = None
    switched = False
    try:
        started = _run(
            [
                "pulseaudio",
                "-D",
                "--exit-idle-time=-1",
                "-n",
                "--load=module-native-protocol-unix",
                f"--log-target=file:{runtime / 'pulse.log'}",
            ],
            env,
        )
        pid_file = runtime / "pulse" / "pid"
        if pid_file.exists():
            pid = int(pid_file.read_text().split()[0])
        if started.returncode != 0 or pid is None:
            pytest.skip(f"PulseAudio could not start: {started.stderr.strip() or started.stdout}")
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while _run(["pactl", "info"], env).returncode != 0:
            if time.monotonic() > deadline:
                pytest.skip("PulseAudio started but does not answer pactl")
            time.sleep(0.1)
        fifo = runtime / "mic.fifo"  # the module creates it
        for args in (
            ["load-module", "module-null-sink", "sink_name=vsink"],
            [
                "load-module",
                "module-pipe-source",
                "source_name=filemic",
                f"file={fifo}",
                "format=s16le",
                f"rate={FIFO_RATE}",
                "channels=1",
            ],
            ["set-default-source", "filemic"],
        ):
            done = _run(["pactl", *args], env)
            if done.returncode != 0:
                pytest.skip(f"pactl {' '.join(args[:2])} failed: {done.stderr.strip()}")
        feeder = threading.Thread(target=_feed, args=(fifo, stop), daemon=True)
        feeder.start()
        server = f"unix:{runtime / 'pulse' / 'native'}"
        monkeypatch.setenv("PULSE_SERVER", server)
        switched = True
        sd._terminate()
        sd._initialize()  # PortAudio scans devices again, now seeing the daemon
        yield VirtualMicrophone(fifo, server, stop)
    finally:
        stop.set()
        if pid is not None:
            _stop_daemon(pid)
        if feeder is not None:
            feeder.join(timeout=5)
        if switched:  # forget the daemon's devices; PULSE_SERVER still names the dead socket,
            with contextlib.suppress(Exception):  # so libpulse cannot autospawn another
                sd._terminate()
                sd._initialize()
        monkeypatch.delenv("PULSE_SERVER", raising=False)
        shutil.rmtree(runtime, ignore_errors=True)
    assert pid is None or not _alive(pid), "pulseaudio is still running"


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
