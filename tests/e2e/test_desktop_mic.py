"""A spoken message recorded from a microphone, hidden in a cover and recovered, through the
app's window on the real stack, with the app's real sound path (PortAudio via sounddevice).

The microphone is virtual: a private PulseAudio daemon (``tests/desktop/pulse.py``) whose
default sink is a null sink and whose default source is that sink's monitor, so what is
played into the sink is what the "System default microphone" hears. ``espeak-ng`` speaks a
sentence into a WAV and ``paplay`` plays it into the sink while the Record screen records.
The recording is used as the secret on Encode (the app compresses it to Opus and seals it),
the stego file is decoded on Decode, and the recovered audio is compared with the recording
by its loudness envelope (RMS per 20 ms frame, aligned by cross-correlation: Opus has a codec
delay). Skips only where PulseAudio cannot run; the daemon and ``paplay`` are always stopped.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from numpy.typing import NDArray
from PySide6.QtWidgets import QComboBox

from desktop.app.main_window import MainWindow
from desktop.app.record_view import RecordView
from desktop.app.state import ConnectionStatus, RecordPhase
from desktop.audio.devices import DEFAULT_INPUT_NAME
from desktop.core.orchestration import TaskStatus
from tests.desktop.pulse import PulseAudio, PulseUnavailable, portaudio_on
from tests.e2e.app_driver import (
    JOB_MS,
    PASSPHRASE,
    child,
    click,
    decode_through_the_window,
    finished,
    label,
    make_cover,
    stack_context,
    type_into,
)

pytestmark = pytest.mark.integration

SENTENCE = (
    "Meet me at the old stone bridge at nine tonight. Bring the blue notebook, "
    "and tell nobody where we are going."
)
SINK = "vsink"
FRAME_SECONDS = 0.020
"""The loudness envelope's frame: 20 ms."""
MIN_CORRELATION = 0.9
SPEECH_SECONDS = 3.0
"""The spoken clip is at least this long (espeak-ng speaks the sentence in about 7 s)."""
MAX_LAG_SECONDS = 1.0
"""How far apart two envelopes may be shifted to align them."""
TAIL_MS = 600
"""Recorded after paplay ends: the sink's last buffer reaches the monitor."""


@pytest.fixture
def spoken_clip(tmp_path: Path) -> Path:
    """A sentence spoken by espeak-ng (``scripts/setup.sh`` installs it)."""
    espeak = shutil.which("espeak-ng")
    assert espeak is not None, "espeak-ng is not installed: run scripts/setup.sh"
    clip = tmp_path / "spoken.wav"
    subprocess.run([espeak, "-s", "150", "-w", str(clip), SENTENCE], check=True, timeout=60)
    info = sf.info(str(clip))
    assert info.frames / info.samplerate >= SPEECH_SECONDS, info
    return clip


@pytest.fixture
def speaker_into_microphone(monkeypatch: pytest.MonkeyPatch) -> Iterator[PulseAudio]:
    """PulseAudio with a null sink as the speaker and its monitor as the default microphone;
    this process's PortAudio sees it. Stopped (with every client) afterwards."""
    import sounddevice as sd  # the app's own backend, as it runs for a user

    pulse = PulseAudio()
    try:
        try:
            pulse.start()
        except PulseUnavailable as e:
            pytest.skip(str(e))
        pulse.pactl("load-module", "module-null-sink", f"sink_name={SINK}")
        pulse.pactl("set-default-sink", SINK)
        pulse.pactl("set-default-source", f"{SINK}.monitor")
        with portaudio_on(pulse, sd, monkeypatch):
            yield pulse
    finally:
        pulse.stop()
    assert pulse.stopped, "pulseaudio or paplay is still running"


# Loudness envelopes ----------------------------------------------------------------------


def read_mono(path: Path) -> tuple[NDArray[np.float64], int]:
    data, rate = sf.read(str(path), dtype="float64", always_2d=True)
    return data.mean(axis=1), int(rate)


def envelope(samples: NDArray[np.float64], rate: int) -> NDArray[np.float64]:
    """RMS per :data:`FRAME_SECONDS` frame."""
    n = round(rate * FRAME_SECONDS)
    frames = len(samples) // n
    blocks = samples[: frames * n].reshape(frames, n)
    rms: NDArray[np.float64] = np.sqrt(np.mean(blocks**2, axis=1))
    return rms


def aligned_correlation(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
    """Pearson correlation of two envelopes over their overlap, ``b`` shifted (within
    :data:`MAX_LAG_SECONDS`) to where it matches ``a`` best."""
    max_lag = round(MAX_LAG_SECONDS / FRAME_SECONDS)
    best = -1.0
    for lag in range(-max_lag, max_lag + 1):
        x, y = (a[lag:], b) if lag >= 0 else (a, b[-lag:])
        n = min(len(x), len(y))
        if n < len(a) // 2 or np.std(x[:n]) == 0 or np.std(y[:n]) == 0:
            continue
        best = max(best, float(np.corrcoef(x[:n], y[:n])[0, 1]))
    return best


# The test ---------------------------------------------------------------------------------


def phase(view: RecordView) -> RecordPhase:
    return view.state.phase


def record_clip(qtbot, window: MainWindow, pulse: PulseAudio, clip: Path) -> Path:
    """Record ``clip`` played into the sink on the Record screen; returns the recording."""
    view = window.record_view
    window.show_screen("record")
    assert view.has_device, label(window, "record.message")
    assert child(window, QComboBox, "record.device").currentText() == DEFAULT_INPUT_NAME
    click(qtbot, window, "record.start")
    assert phase(view) is RecordPhase.RECORDING, label(window, "record.message")
    # The microphone delivers (silence so far) before anything is played.
    qtbot.waitUntil(lambda: view.recorder.frames > 0.2 * view.recorder.samplerate, timeout=15_000)
    player = pulse.spawn(["paplay", f"--device={SINK}", str(clip)])
    qtbot.waitUntil(lambda: player.poll() is not None, timeout=60_000)
    assert player.returncode == 0, player.stderr.read() if player.stderr else ""
    qtbot.wait(TAIL_MS)
    click(qtbot, window, "record.stop")
    assert phase(view) is RecordPhase.RECORDED, label(window, "record.message")
    assert view.recording is not None
    return view.recording.path


def test_a_recorded_message_survives_encode_and_decode(
    qtbot, open_window, dialogs, stack, speaker_into_microphone, spoken_clip, tmp_path
):
    window = open_window(stack_context(tmp_path / "app", stack, real_audio=True))
    assert window.connection.status is ConnectionStatus.ONLINE

    recording_path = record_clip(qtbot, window, speaker_into_microphone, spoken_clip)
    recorded = tmp_path / "recorded.wav"  # the app deletes its recording once it is sent
    shutil.copyfile(recording_path, recorded)
    heard, heard_rate = read_mono(recorded)
    spoken, spoken_rate = read_mono(spoken_clip)
    assert len(heard) / heard_rate >= len(spoken) / spoken_rate
    # The microphone heard the clip (not silence, not noise).
    assert (
        aligned_correlation(envelope(spoken, spoken_rate), envelope(heard, heard_rate))
        >= MIN_CORRELATION
    )

    click(qtbot, window, "record.use")
    assert window.current_screen == "encode"
    cover = make_cover(tmp_path / "cover.wav", 20.0)
    dialogs.open_answers.append(cover)
    click(qtbot, window, "encode.cover.browse")
    type_into(qtbot, window, "encode.passphrase.first", PASSPHRASE)
    type_into(qtbot, window, "encode.passphrase.confirm", PASSPHRASE)
    view = window.encode_view
    qtbot.waitUntil(lambda: view.secret_info is not None, timeout=60_000)
    assert view.secret_info.compressed, view.secret_info.summary  # sent as Opus
    assert "Fits" in label(window, "encode.fit")
    click(qtbot, window, "encode.start")
    qtbot.waitUntil(lambda: finished(view), timeout=JOB_MS)
    task = view.follower.task
    assert task.status is TaskStatus.SUCCEEDED, label(window, "encode.error")
    assert task.secret_is_recording
    assert not recording_path.exists()  # sent, so deleted from this computer
    assert task.output.stat().st_size == cover.stat().st_size

    recovered = decode_through_the_window(qtbot, window, dialogs, task.output)
    info = sf.info(str(recovered))
    assert (info.format, info.subtype) == ("OGG", "OPUS"), info
    got, got_rate = read_mono(recovered)
    correlation = aligned_correlation(envelope(heard, heard_rate), envelope(got, got_rate))
    assert correlation >= MIN_CORRELATION, f"loudness envelopes correlate at {correlation:.3f}"
