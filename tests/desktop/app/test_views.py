"""The desktop app driven through its window with pytest-qt (offscreen), against the fake API.

Every flow goes through the widgets a person uses (buttons found by object name, text typed
into fields, files given through scripted dialogs or dropped), and every screen is saved as a
screenshot under tests/artifacts/.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import tomllib
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
)

from desktop.app.state import ConnectionStatus, RecordPhase
from desktop.audio.fake import FAKE_SPEAKER, FakeBackend, tone
from desktop.core.orchestration import TaskKind, TaskStatus
from desktop.core.uploader import PartBody
from tests.desktop.app_support import (
    MemoryKeyring,
    Switchboard,
    SwitchedParts,
    make_context,
    screenshot,
    write_wav,
)
from tests.desktop.fake_server import API, TOKEN, FakeServer

PASSPHRASE = "correct horse battery staple"
SECRET = b"Meet me by the old mill at noon. Bring the map. " * 5
WAIT_MS = 20_000
ROOT = Path(__file__).resolve().parents[3]


# Helpers ---------------------------------------------------------------------------------


def child(window, cls, name):
    widget = window.findChild(cls, name)
    assert widget is not None, f"no {cls.__name__} named {name}"
    return widget


def click(qtbot, window, name: str) -> None:
    button = child(window, QPushButton, name)
    assert button.isVisible() and button.isEnabled(), f"{name} cannot be clicked"
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def type_into(qtbot, window, name: str, text: str) -> None:
    edit = child(window, QLineEdit, name)
    edit.clear()
    qtbot.keyClicks(edit, text)


def label(window, name: str) -> str:
    return child(window, QLabel, name).text()


def choose(qtbot, window, dialogs, field: str, path: Path) -> None:
    dialogs.open_answers.append(path)
    click(qtbot, window, f"{field}.browse")


def voice_like(seconds: float, rate: int) -> np.ndarray:
    """A 1 kHz tone in syllable-like bursts (so the waveform looks like speech)."""
    t = np.arange(round(seconds * rate)) / rate
    envelope = 0.15 + 0.85 * np.abs(np.sin(2 * np.pi * 1.7 * t)) ** 2
    return (tone(1000, seconds, rate, amplitude=0.6)[:, 0] * envelope).astype(np.float32)


def encode(qtbot, window, dialogs, cover: Path, secret: Path | None, passphrase=PASSPHRASE):
    """Fill the Encode screen and press Encode; returns the view."""
    window.show_screen("encode")
    choose(qtbot, window, dialogs, "encode.cover", cover)
    if secret is not None:
        choose(qtbot, window, dialogs, "encode.secret", secret)
    type_into(qtbot, window, "encode.passphrase.first", passphrase)
    type_into(qtbot, window, "encode.passphrase.confirm", passphrase)
    start = child(window, QPushButton, "encode.start")
    qtbot.waitUntil(start.isEnabled, timeout=WAIT_MS)
    click(qtbot, window, "encode.start")
    return window.encode_view


def finished(view):
    task = view.follower.task
    return task is not None and task.status.finished


def decode(qtbot, window, dialogs, stego: Path, passphrase=PASSPHRASE):
    window.show_screen("decode")
    choose(qtbot, window, dialogs, "decode.stego", stego)
    type_into(qtbot, window, "decode.passphrase.first", passphrase)
    click(qtbot, window, "decode.start")
    view = window.decode_view
    qtbot.waitUntil(lambda: finished(view) or bool(label(window, "decode.error")), timeout=WAIT_MS)
    return view


def dominant_frequency(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return (int(np.argmax(spectrum[1:])) + 1) * rate / len(samples)


@pytest.fixture
def cover(tmp_path: Path) -> Path:
    return write_wav(tmp_path / "holiday.wav", 8000 * 30)  # 30 s at 8 kHz: ~30 KB of room


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "plan.txt"
    path.write_bytes(SECRET)
    return path


# Record -------------------------------------------------------------------------------


def test_record_play_and_use_the_recording(qtbot, window, desktop_audio, desktop_dialogs):
    window.show_screen("record")
    view = window.record_view
    assert child(window, QLabel, "record.message").text() == ""
    click(qtbot, window, "record.start")
    assert view.state.phase is RecordPhase.RECORDING
    stream = desktop_audio.last_input
    stream.feed(voice_like(2.0, 16_000))
    qtbot.waitUntil(lambda: view.recorder.frames >= 32_000, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: view.waveform.column_count > 100, timeout=WAIT_MS)
    assert view.meter.peak_dbfs > -12
    assert label(window, "record.elapsed") == "0:02.0"
    screenshot(window, "record-live")
    click(qtbot, window, "record.stop")
    assert view.state.phase is RecordPhase.RECORDED and stream.closed
    path = view.recording.path
    data, rate = sf.read(path, dtype="float32")
    assert (len(data), rate) == (32_000, 16_000)
    assert path.parent == window.ctx.recordings_dir
    screenshot(window, "record")

    click(qtbot, window, "record.play")  # the file is read off the GUI thread, then played
    qtbot.waitUntil(lambda: view.state.phase is RecordPhase.PLAYING, timeout=WAIT_MS)
    # PortAudio cannot look for devices with a stream open: Refresh waits until it ends.
    assert not child(window, QPushButton, "record.refresh").isEnabled()
    view.refresh_devices()
    assert desktop_audio.refreshes == 0 and view.player.playing
    assert "Stop playing or recording" in label(window, "record.message")
    played = desktop_audio.last_output.pull(40_000)
    np.testing.assert_allclose(played[:32_000, 0], data, atol=1e-6)
    qtbot.waitUntil(lambda: view.state.phase is RecordPhase.RECORDED, timeout=WAIT_MS)

    click(qtbot, window, "record.use")
    assert window.current_screen == "encode"
    # Issue 14.6: named as a recording, not by the app's internal path (kept in the tooltip).
    secret_field = child(window, QLineEdit, "encode.secret.path")
    assert secret_field.text() == "Recording (0:02.0, 64.0 KB)"
    assert secret_field.toolTip() == str(path)
    assert window.selection.secret == path and window.selection.secret_is_recording
    qtbot.waitUntil(lambda: "Recording:" in label(window, "encode.secret_info"), timeout=WAIT_MS)


def test_record_again_replaces_the_recording(qtbot, window, desktop_audio):
    window.show_screen("record")
    view = window.record_view
    click(qtbot, window, "record.start")
    desktop_audio.last_input.feed(voice_like(0.5, 16_000))
    qtbot.waitUntil(lambda: view.recorder.frames >= 8000, timeout=WAIT_MS)
    click(qtbot, window, "record.stop")
    first = view.recording.path
    click(qtbot, window, "record.rerecord")
    assert view.state.phase is RecordPhase.RECORDING and not first.exists()
    desktop_audio.last_input.feed(voice_like(0.25, 16_000))
    qtbot.waitUntil(lambda: view.recorder.frames >= 4000, timeout=WAIT_MS)
    click(qtbot, window, "record.stop")
    assert view.recording.frames == 4000


def test_a_recording_left_by_a_crash_is_found_again(qtbot, open_window, desktop_ctx):
    folder = desktop_ctx.recordings_dir
    folder.mkdir(parents=True)
    sf.write(folder / "recording-20300101-120000-abcdef.wav", voice_like(1.0, 16_000), 16_000)
    window = open_window(desktop_ctx)
    view = window.record_view
    # Found and drawn on a worker thread: the window opens at once, then shows it.
    qtbot.waitUntil(lambda: view.state.phase is RecordPhase.RECORDED, timeout=WAIT_MS)
    assert view.waveform.column_count == 600
    assert "Recovered an earlier recording" in label(window, "record.file")
    assert label(window, "record.elapsed") == "0:01.0"


def test_no_microphone_is_said_plainly(qtbot, open_window, tmp_path, desktop_board):
    ctx = make_context(tmp_path / "app", desktop_board, audio=FakeBackend([FAKE_SPEAKER]))
    window = open_window(ctx)
    window.show_screen("record")
    assert "No microphone was found" in label(window, "record.message")
    assert not child(window, QPushButton, "record.start").isEnabled()
    screenshot(window, "record-no-microphone")


def test_a_microphone_that_fails_to_open_is_reported(qtbot, open_window, tmp_path, desktop_board):
    audio = FakeBackend(fail_open="The device is busy.")
    window = open_window(make_context(tmp_path / "app", desktop_board, audio=audio))
    window.show_screen("record")
    click(qtbot, window, "record.start")
    assert "The device is busy." in label(window, "record.message")
    assert window.record_view.state.phase is RecordPhase.IDLE


# Encode and decode --------------------------------------------------------------------


def test_encode_a_recording_then_decode_and_play_it(
    qtbot, window, desktop_audio, desktop_dialogs, cover, tmp_path
):
    window.show_screen("record")
    click(qtbot, window, "record.start")
    desktop_audio.last_input.feed(voice_like(1.0, 16_000))
    qtbot.waitUntil(lambda: window.record_view.recorder.frames >= 16_000, timeout=WAIT_MS)
    click(qtbot, window, "record.stop")
    recording = window.record_view.recording.path
    click(qtbot, window, "record.use")

    view = encode(qtbot, window, desktop_dialogs, cover, None)
    qtbot.waitUntil(lambda: finished(view), timeout=WAIT_MS)
    task = view.follower.task
    assert task.status is TaskStatus.SUCCEEDED, label(window, "encode.error")
    assert task.secret_media_type == "audio/ogg; codecs=opus"
    # Issue 14.5: named as the file the person gets (Save offers it), not after the cover.
    assert "The stego file is ready: holiday-stego.wav (" in label(window, "encode.result")
    assert not recording.exists()  # sent: the recording is not kept any longer
    screenshot(window, "encode")

    stego = tmp_path / "out" / "holiday-sent.wav"
    stego.parent.mkdir()
    desktop_dialogs.save_answers.append(stego)
    click(qtbot, window, "encode.save")
    # The dialog offers "<cover>-stego.wav", never the cover's own name.
    assert desktop_dialogs.suggested == window.settings.effective_download_dir / (
        "holiday-stego.wav"
    )
    qtbot.waitUntil(lambda: label(window, "encode.saved") == f"Saved to {stego}", timeout=WAIT_MS)
    assert stego.read_bytes() == task.output.read_bytes()

    view = decode(qtbot, window, desktop_dialogs, stego)
    done = view.follower.task
    assert done.status is TaskStatus.SUCCEEDED, label(window, "decode.error")
    assert done.output_media_type.startswith("audio/ogg")
    assert "Recovered the recording" in label(window, "decode.result")
    data, rate = sf.read(done.output, dtype="float32")
    assert dominant_frequency(data[rate // 10 :], rate) == pytest.approx(1000, abs=10)
    click(qtbot, window, "decode.play")  # read off the GUI thread, then played
    qtbot.waitUntil(lambda: bool(desktop_audio.outputs), timeout=WAIT_MS)
    assert desktop_audio.last_output.started
    assert child(window, QPushButton, "decode.play").text() == "■ Stop"
    screenshot(window, "decode")
    click(qtbot, window, "decode.play")  # stop
    assert desktop_audio.last_output.closed


def record_and_use(qtbot, window, audio, seconds=1.0) -> Path:
    window.show_screen("record")
    click(qtbot, window, "record.start")
    audio.last_input.feed(voice_like(seconds, 16_000))
    qtbot.waitUntil(
        lambda: window.record_view.recorder.frames >= round(seconds * 16_000), timeout=WAIT_MS
    )
    click(qtbot, window, "record.stop")
    path = window.record_view.recording.path
    click(qtbot, window, "record.use")
    return path


def test_a_sent_recording_is_forgotten_by_record_and_encode(
    qtbot, window, desktop_audio, desktop_dialogs, cover
):
    recording = record_and_use(qtbot, window, desktop_audio)
    view = encode(qtbot, window, desktop_dialogs, cover, None)
    qtbot.waitUntil(lambda: finished(view), timeout=WAIT_MS)
    assert view.follower.task.status is TaskStatus.SUCCEEDED
    assert not recording.exists()
    # Record: nothing left to play or use, and it says what became of the recording.
    record = window.record_view
    assert record.recording is None and record.state.phase is RecordPhase.IDLE
    assert "Saved (lossless)" not in label(window, "record.file")
    assert "sent" in label(window, "record.file")
    assert not child(window, QPushButton, "record.play").isEnabled()
    assert not child(window, QPushButton, "record.use").isEnabled()
    assert child(window, QPushButton, "record.start").isEnabled()
    # Encode: the deleted recording is no longer the secret; nothing stale says it fits.
    assert window.selection.secret is None
    assert child(window, QLineEdit, "encode.secret.path").text() == ""
    assert label(window, "encode.fit") == "" and label(window, "encode.secret_info") == ""
    type_into(qtbot, window, "encode.passphrase.first", PASSPHRASE)
    type_into(qtbot, window, "encode.passphrase.confirm", PASSPHRASE)
    assert not child(window, QPushButton, "encode.start").isEnabled()
    assert label(window, "encode.hint") == "Record a message or choose a file as the secret."


def test_history_plays_only_decoded_audio_and_can_stop_it(
    qtbot, window, desktop_audio, desktop_dialogs, cover
):
    record_and_use(qtbot, window, desktop_audio, seconds=0.5)
    view = encode(qtbot, window, desktop_dialogs, cover, None)
    qtbot.waitUntil(lambda: finished(view), timeout=WAIT_MS)
    decoded = decode(qtbot, window, desktop_dialogs, view.follower.task.output).follower.task
    assert decoded.status is TaskStatus.SUCCEEDED
    window.show_screen("history")
    history = window.history_view
    qtbot.waitUntil(lambda: len(history.tasks) == 2)
    play = child(window, QPushButton, "history.play")
    history.select(view.follower.task.id)  # the stego file: as large as its cover
    assert not play.isEnabled()
    history.select(decoded.id)
    assert play.isEnabled() and play.text() == "▶ Play"
    outputs = len(desktop_audio.outputs)
    click(qtbot, window, "history.play")  # read on a worker thread, then played
    qtbot.waitUntil(lambda: len(desktop_audio.outputs) == outputs + 1, timeout=WAIT_MS)
    stream = desktop_audio.last_output
    assert stream.started and play.text() == "■ Stop"
    history.select(view.follower.task.id)  # Stop stays, whatever row is selected
    assert play.isEnabled()
    click(qtbot, window, "history.play")
    assert stream.closed and play.text() == "▶ Play" and not play.isEnabled()
    # Played to the end: the screen's timer closes the stream by itself.
    history.select(decoded.id)
    click(qtbot, window, "history.play")
    qtbot.waitUntil(lambda: len(desktop_audio.outputs) == outputs + 2, timeout=WAIT_MS)
    desktop_audio.last_output.pull(16_000 * 2)
    qtbot.waitUntil(lambda: desktop_audio.last_output.closed, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: play.text() == "▶ Play", timeout=WAIT_MS)


def test_saving_over_the_cover_is_refused(qtbot, window, desktop_dialogs, cover, secret_file):
    original = cover.read_bytes()
    view = encode(qtbot, window, desktop_dialogs, cover, secret_file)
    qtbot.waitUntil(lambda: finished(view), timeout=WAIT_MS)
    desktop_dialogs.save_answers.append(cover)
    click(qtbot, window, "encode.save")
    assert "holiday.wav is the original cover" in label(window, "encode.saved")
    assert cover.read_bytes() == original


def test_a_microphone_that_fails_to_start_is_a_plain_message(
    qtbot, open_window, tmp_path, desktop_board
):
    audio = FakeBackend(fail_start="Error starting stream [PaErrorCode -9985]")
    window = open_window(make_context(tmp_path / "app", desktop_board, audio=audio))
    window.show_screen("record")
    click(qtbot, window, "record.start")
    message = label(window, "record.message")
    assert message.startswith("The microphone could not be started: Error starting stream")
    assert "Traceback" not in message
    assert window.record_view.state.phase is RecordPhase.IDLE


def test_encode_and_decode_a_file_dropped_on_the_window(
    qtbot, window, desktop_dialogs, desktop_board, cover, secret_file, tmp_path
):
    window.show_screen("encode")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(cover)), QUrl.fromLocalFile(str(secret_file))])
    drop = QDropEvent(
        QPointF(200, 200),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    window.dropEvent(drop)
    assert child(window, QLineEdit, "encode.cover.path").text() == str(cover)
    assert child(window, QLineEdit, "encode.secret.path").text() == str(secret_file)
    type_into(qtbot, window, "encode.passphrase.first", PASSPHRASE)
    type_into(qtbot, window, "encode.passphrase.confirm", PASSPHRASE)
    qtbot.waitUntil(child(window, QPushButton, "encode.start").isEnabled, timeout=WAIT_MS)
    assert "Fits" in label(window, "encode.fit")
    click(qtbot, window, "encode.start")
    view = window.encode_view
    qtbot.waitUntil(lambda: finished(view), timeout=WAIT_MS)
    stego = view.follower.task.output
    assert SECRET not in desktop_board.server.bodies()

    recovered = decode(qtbot, window, desktop_dialogs, stego).follower.task
    assert recovered.output.read_bytes() == SECRET
    assert not child(window, QPushButton, "decode.play").isVisible()  # not audio
    target = tmp_path / "plan-again.txt"
    desktop_dialogs.save_answers.append(target)
    click(qtbot, window, "decode.save")
    assert desktop_dialogs.suggested.name == "plan.txt"
    qtbot.waitUntil(lambda: target.exists(), timeout=WAIT_MS)
    assert target.read_bytes() == SECRET


def test_a_secret_too_large_is_refused_before_any_upload(
    qtbot, window, desktop_dialogs, desktop_board, tmp_path
):
    small_cover = write_wav(tmp_path / "short.wav", 4000)
    big = tmp_path / "photo.jpg"
    big.write_bytes(bytes(range(256)) * 40)
    window.show_screen("encode")
    choose(qtbot, window, desktop_dialogs, "encode.cover", small_cover)
    choose(qtbot, window, desktop_dialogs, "encode.secret", big)
    type_into(qtbot, window, "encode.passphrase.first", PASSPHRASE)
    type_into(qtbot, window, "encode.passphrase.confirm", PASSPHRASE)
    qtbot.waitUntil(lambda: label(window, "encode.fit").startswith("Too large"), timeout=WAIT_MS)
    assert not child(window, QPushButton, "encode.start").isEnabled()
    assert label(window, "encode.hint") == "The secret does not fit in this cover."
    assert "holds up to" in label(window, "encode.cover_info")
    assert desktop_board.server.requests == []
    screenshot(window, "encode-too-large")


def test_passphrase_must_be_confirmed_and_not_trivial(qtbot, window, desktop_dialogs, cover):
    window.show_screen("encode")
    choose(qtbot, window, desktop_dialogs, "encode.cover", cover)
    type_into(qtbot, window, "encode.passphrase.first", "password")
    assert "Too easy to guess" in label(window, "encode.passphrase.hint")
    type_into(qtbot, window, "encode.passphrase.first", PASSPHRASE)
    type_into(qtbot, window, "encode.passphrase.confirm", PASSPHRASE + "!")
    assert "do not match" in label(window, "encode.passphrase.hint")
    window.selection.set_secret(None)
    assert label(window, "encode.hint") == "Record a message or choose a file as the secret."


def test_the_passphrase_problem_is_said_once(qtbot, window, desktop_dialogs, cover, secret_file):
    window.show_screen("encode")
    bar = child(window, QProgressBar, "encode.passphrase.strength")
    assert not bar.isVisible()  # no empty bar before anything is typed
    choose(qtbot, window, desktop_dialogs, "encode.cover", cover)
    choose(qtbot, window, desktop_dialogs, "encode.secret", secret_file)
    qtbot.waitUntil(lambda: "Fits" in label(window, "encode.fit"), timeout=WAIT_MS)
    assert label(window, "encode.passphrase.hint").startswith("Choose a passphrase")
    assert label(window, "encode.hint") == ""  # not a second, near-identical line
    type_into(qtbot, window, "encode.passphrase.first", PASSPHRASE)
    assert bar.isVisible() and bar.format().startswith("Fair")
    assert "do not match" not in label(window, "encode.hint")
    type_into(qtbot, window, "encode.passphrase.confirm", PASSPHRASE)
    assert label(window, "encode.hint").startswith("Ready.")
    screenshot(window, "encode-passphrase")


def test_cancel_while_preparing_cancels_the_encode(
    qtbot, window, desktop_dialogs, desktop_board, cover, secret_file
):
    window.show_screen("encode")
    choose(qtbot, window, desktop_dialogs, "encode.cover", cover)
    choose(qtbot, window, desktop_dialogs, "encode.secret", secret_file)
    type_into(qtbot, window, "encode.passphrase.first", PASSPHRASE)
    type_into(qtbot, window, "encode.passphrase.confirm", PASSPHRASE)
    qtbot.waitUntil(child(window, QPushButton, "encode.start").isEnabled, timeout=WAIT_MS)
    view = window.encode_view
    view.start()  # sealing starts on a worker; its result reaches this thread only later
    task_id = view.task_id
    assert window.manager.is_preparing(task_id)
    assert not child(window, QPushButton, "encode.progress.pause").isVisible()
    cancel = child(window, QPushButton, "encode.progress.cancel")
    assert cancel.isVisible() and cancel.isEnabled()
    cancel.click()
    assert not cancel.isEnabled()
    assert label(window, "encode.progress.text") == "Cancelling…"
    qtbot.waitUntil(lambda: finished(view), timeout=WAIT_MS)
    task = window.store.require(task_id)
    assert task.status is TaskStatus.CANCELLED
    assert label(window, "encode.result") == "Cancelled."
    assert not Path(task.sealed_path).exists()
    assert desktop_board.server.uploads == {}  # nothing was sent


def test_a_cover_that_is_not_a_wav_is_refused(qtbot, window, desktop_dialogs, tmp_path):
    bad = tmp_path / "song.wav"
    bad.write_bytes(b"ID3 this is an mp3 really" * 20)
    window.show_screen("encode")
    choose(qtbot, window, desktop_dialogs, "encode.cover", bad)
    assert label(window, "encode.cover_info").startswith("Not a WAV file.")
    assert label(window, "encode.hint") == "The cover cannot be used."


def test_wrong_passphrase_says_so_plainly(
    qtbot, window, desktop_dialogs, desktop_board, cover, secret_file
):
    view = encode(qtbot, window, desktop_dialogs, cover, secret_file)
    qtbot.waitUntil(lambda: finished(view), timeout=WAIT_MS)
    server = desktop_board.server
    uploads = len(server.uploads)
    decode(qtbot, window, desktop_dialogs, view.follower.task.output, "not my passphrase at all")
    error = label(window, "decode.error")
    assert error.startswith("Wrong passphrase, or nothing hidden.")
    assert "passphrase is wrong" in error
    # Refused here, from the file's first window: no task, nothing uploaded, no job.
    assert [t.kind for t in window.store.all()] == [TaskKind.ENCODE]
    assert len(server.uploads) == uploads and len(server.jobs) == 1
    screenshot(window, "decode-wrong-passphrase")


def test_the_servers_error_message_is_shown(
    qtbot, window, desktop_dialogs, desktop_board, cover, secret_file
):
    desktop_board.server.fail_job = ("worker_crashed", "The worker stopped unexpectedly")
    view = encode(qtbot, window, desktop_dialogs, cover, secret_file)
    qtbot.waitUntil(lambda: finished(view), timeout=WAIT_MS)
    assert view.follower.task.status is TaskStatus.FAILED
    assert label(window, "encode.error") == ("The worker stopped unexpectedly. [worker_crashed]")


def test_pause_resume_and_cancel_an_upload(
    qtbot, open_window, tmp_path, desktop_dialogs, cover, secret_file
):
    # What is uploaded is the cover's LSB plane (1/16 of it, 30 KB here): 30 parts of 1 KiB.
    board = Switchboard(FakeServer(part_size=1024))
    parts = SwitchedParts(board)
    window = open_window(make_context(tmp_path / "app", board, parts=parts, parallel_parts=1))
    reached, gate = threading.Event(), threading.Event()

    def hold_part_3(number: int) -> None:
        if number == 3 and not reached.is_set():
            reached.set()
            gate.wait(10)

    parts.before_put = hold_part_3
    view = encode(qtbot, window, desktop_dialogs, cover, secret_file)
    qtbot.waitUntil(reached.is_set, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: child(window, QPushButton, "encode.progress.pause").isEnabled())
    click(qtbot, window, "encode.progress.pause")
    gate.set()
    qtbot.waitUntil(
        lambda: view.follower.task is not None and view.follower.task.status is TaskStatus.PAUSED,
        timeout=WAIT_MS,
    )
    assert "Paused" in label(window, "encode.progress.text")
    stored_while_paused = len(parts.stored)
    click(qtbot, window, "encode.progress.resume")
    qtbot.waitUntil(lambda: finished(view), timeout=WAIT_MS)
    assert view.follower.task.status is TaskStatus.SUCCEEDED
    assert len(parts.stored) == len(set(parts.stored)) > stored_while_paused

    reached.clear()
    gate.clear()
    parts.before_put = hold_part_3
    other = write_wav(tmp_path / "other.wav", 8000 * 20)  # its plane: 20 parts
    view = encode(qtbot, window, desktop_dialogs, other, secret_file)
    qtbot.waitUntil(reached.is_set, timeout=WAIT_MS)
    click(qtbot, window, "encode.progress.cancel")
    gate.set()
    qtbot.waitUntil(lambda: finished(view), timeout=WAIT_MS)
    assert view.follower.task.status is TaskStatus.CANCELLED
    assert label(window, "encode.result") == "Cancelled."


class SlowLink(SwitchedParts):
    """Part PUTs that take ``seconds`` each: a link slow enough to measure its speed."""

    def __init__(self, board: Switchboard, seconds: float) -> None:
        super().__init__(board)
        self.seconds = seconds
        self.paused = threading.Event()

    def put(self, url: str, body: PartBody) -> str:
        self.paused.wait(self.seconds)  # the time the bytes take on the wire
        return super().put(url, body)


def test_an_upload_shows_its_speed_and_time_left_and_can_pause(
    qtbot, open_window, tmp_path, desktop_dialogs, secret_file
):
    board = Switchboard(FakeServer(part_size=1024))
    link = SlowLink(board, 0.04)
    window = open_window(make_context(tmp_path / "app", board, parts=link, parallel_parts=1))
    cover = write_wav(tmp_path / "holiday.wav", 8000 * 60)  # 960 KB, its plane 59 parts: ~2.4 s
    view = encode(qtbot, window, desktop_dialogs, cover, secret_file)
    text = child(window, QLabel, "encode.progress.text")
    qtbot.waitUntil(lambda: "/s" in text.text() and " left" in text.text(), timeout=WAIT_MS)
    assert text.text().startswith("Sending the cover's LSB plane: ")
    assert 0 < child(window, QProgressBar, "encode.progress.bar").value() < 1000
    assert child(window, QPushButton, "encode.progress.pause").isVisible()
    screenshot(window, "upload-progress")

    click(qtbot, window, "encode.progress.pause")
    qtbot.waitUntil(
        lambda: view.follower.task is not None and view.follower.task.status is TaskStatus.PAUSED,
        timeout=WAIT_MS,
    )
    assert "Paused: resume to continue" in text.text()
    assert child(window, QPushButton, "encode.progress.resume").isVisible()
    assert not child(window, QPushButton, "encode.progress.pause").isVisible()
    screenshot(window, "upload-paused")
    link.seconds = 0
    click(qtbot, window, "encode.progress.resume")
    qtbot.waitUntil(lambda: finished(view), timeout=WAIT_MS)
    assert view.follower.task.status is TaskStatus.SUCCEEDED


# Offline and restart ------------------------------------------------------------------


def test_offline_the_encode_is_queued_and_sent_when_the_server_is_back(
    qtbot, open_window, desktop_ctx, desktop_board, desktop_dialogs, cover, secret_file
):
    desktop_board.offline = True
    window = open_window(desktop_ctx)
    assert window.connection.status is ConnectionStatus.OFFLINE
    assert "Offline: the server at http://api.test cannot be reached" in label(
        window, "status.connection"
    )
    view = encode(qtbot, window, desktop_dialogs, cover, secret_file)
    qtbot.waitUntil(lambda: view.follower.task is not None, timeout=WAIT_MS)
    assert child(window, QPushButton, "encode.start").text() == "Queue encode"
    assert view.follower.task.status is TaskStatus.QUEUED
    assert "Queued: the server cannot be reached now" in label(window, "encode.progress.text")
    assert label(window, "status.queue") == "1 task waiting for the server"
    assert "1 encode waiting to be sent" in label(window, "encode.queue")
    assert desktop_board.server.uploads == {}
    screenshot(window, "offline")

    desktop_board.offline = False
    qtbot.waitUntil(lambda: finished(view), timeout=WAIT_MS)
    assert view.follower.task.status is TaskStatus.SUCCEEDED
    assert window.connection.status is ConnectionStatus.ONLINE
    assert label(window, "status.queue") == ""
    recovered = decode(qtbot, window, desktop_dialogs, view.follower.task.output).follower.task
    assert recovered.output.read_bytes() == SECRET


TYPO = "http://api.tset"


class TypoBoard(Switchboard):
    """The fake server; the mistyped ``TYPO`` refuses the connection."""

    def handle(self, request):
        if request.url.host == httpx.URL(TYPO).host:
            raise httpx.ConnectError("Connection refused", request=request)
        return super().handle(request)


def test_a_queued_encode_follows_the_server_url_fixed_in_settings(
    qtbot, open_window, tmp_path, desktop_dialogs, cover, secret_file
):
    board = TypoBoard(FakeServer(part_size=64 * 1024))
    ctx = make_context(tmp_path / "app", board, server_url=TYPO)
    window = open_window(ctx)
    assert window.connection.status is ConnectionStatus.OFFLINE
    view = encode(qtbot, window, desktop_dialogs, cover, secret_file)
    qtbot.waitUntil(lambda: view.follower.task is not None, timeout=WAIT_MS)
    task_id = view.task_id
    assert view.follower.task.status is TaskStatus.QUEUED
    assert window.store.require(task_id).server == TYPO

    window.show_screen("settings")
    type_into(qtbot, window, "settings.url", API)
    click(qtbot, window, "settings.save")
    # Nothing of it reached the mistyped server: it goes to the one set now, and runs.
    assert window.store.require(task_id).server == API
    assert [t.id for t in window.manager.waiting()] == [task_id] or window.manager.is_running(
        task_id
    )
    window.show_screen("history")
    assert window.history_view.table.item(0, 2).text() != "For another server"
    qtbot.waitUntil(lambda: finished(view), timeout=WAIT_MS)
    assert view.follower.task.status is TaskStatus.SUCCEEDED
    recovered = decode(qtbot, window, desktop_dialogs, view.follower.task.output).follower.task
    assert recovered.output.read_bytes() == SECRET


def test_an_encode_sending_when_the_url_changes_follows_if_nothing_reached_the_server(
    qtbot, open_window, tmp_path, desktop_dialogs, secret_file
):
    board = TypoBoard(FakeServer(part_size=256))
    parts = SwitchedParts(board)
    ctx = make_context(tmp_path / "app", board, parts=parts, parallel_parts=1)
    cover = write_wav(tmp_path / "long.wav", 8000 * 12)  # its plane: 47 parts
    window = open_window(ctx)
    reached, tick = threading.Event(), threading.Event()

    def hold_part_3(number: int) -> None:
        if number == 3 and not reached.is_set():
            reached.set()
            while not window.manager.is_stopping(window.encode_view.task_id):
                tick.wait(0.01)

    parts.before_put = hold_part_3
    view = encode(qtbot, window, desktop_dialogs, cover, secret_file)
    qtbot.waitUntil(reached.is_set, timeout=WAIT_MS)
    task_id = view.task_id
    board.offline = True  # as if the URL had been wrong all along
    window.show_screen("settings")
    type_into(qtbot, window, "settings.url", TYPO)
    click(qtbot, window, "settings.save")
    # Stopped mid-upload with no input stored: it follows the new server once stopped.
    qtbot.waitUntil(lambda: not window.manager.is_running(task_id), timeout=WAIT_MS)
    task = window.store.require(task_id)
    assert task.server == TYPO and not task.reached_server
    assert not window.manager.for_other_server(task)
    assert [t.id for t in window.manager.waiting()] == [task_id]


def test_tasks_that_reached_another_server_wait_apart(
    qtbot, open_window, desktop_ctx, desktop_board, desktop_dialogs, cover, secret_file
):
    desktop_board.offline = True
    window = open_window(desktop_ctx)
    view = encode(qtbot, window, desktop_dialogs, cover, secret_file)
    qtbot.waitUntil(lambda: view.follower.task is not None, timeout=WAIT_MS)
    task_id = view.task_id
    assert label(window, "status.queue") == "1 task waiting for the server"
    # Its cover reached the server before it went away: it can only go on there.
    window.store.update(task_id, input_upload_id="upl_on_the_first_server")

    window.show_screen("settings")
    type_into(qtbot, window, "settings.url", "http://elsewhere.test:8600")
    click(qtbot, window, "settings.save")
    qtbot.waitUntil(lambda: window.connection.status is ConnectionStatus.OFFLINE)
    assert "http://elsewhere.test:8600" in label(window, "status.connection")
    # It can only run on the server it was made for: not counted as waiting for this one.
    assert window.manager.waiting() == []
    assert label(window, "status.queue") == ""
    assert label(window, "encode.queue") == ""
    window.show_screen("history")
    history = window.history_view
    history.select(task_id)
    assert history.table.item(0, 2).text() == "For another server"
    assert f"Waiting to send\nMade for the server {API}." == history.table.item(0, 2).toolTip()
    assert not child(window, QPushButton, "history.resume").isEnabled()
    assert child(window, QPushButton, "history.cancel").isEnabled()
    assert f"made for the server {API}" in label(window, "history.message")
    screenshot(window, "history-other-server")

    window.show_screen("settings")
    type_into(qtbot, window, "settings.url", API)
    click(qtbot, window, "settings.save")
    assert [t.id for t in window.manager.waiting()] == [task_id]
    assert history.table.item(0, 2).text() == "Waiting to send"


def test_the_server_not_ready_is_shown(qtbot, open_window, desktop_ctx, desktop_board):
    desktop_board.ready = False
    window = open_window(desktop_ctx)
    assert window.connection.status is ConnectionStatus.NOT_READY
    assert "is not ready (storage)" in label(window, "status.connection")


def test_restart_resumes_the_upload_without_resending_stored_parts(
    qtbot, open_window, tmp_path, desktop_dialogs, secret_file
):
    board = Switchboard(FakeServer(part_size=256))
    parts = SwitchedParts(board)
    ctx = make_context(tmp_path / "app", board, parts=parts, parallel_parts=1)
    cover = write_wav(tmp_path / "long.wav", 8000 * 12)  # 192 KB, its 12 KB plane: 47 parts
    reached, tick = threading.Event(), threading.Event()
    first = open_window(ctx)

    def hold_part_6(number: int) -> None:
        if number == 6 and not reached.is_set():
            reached.set()
            # On the wire until closing the window has asked the run to stop: then it
            # arrives, and the upload stops before part 7.
            while not first.manager.is_stopping(first.encode_view.task_id):
                tick.wait(0.01)

    parts.before_put = hold_part_6
    view = encode(qtbot, first, desktop_dialogs, cover, secret_file)
    qtbot.waitUntil(reached.is_set, timeout=WAIT_MS)
    task_id = view.task_id
    first.close()  # mid-upload
    assert first.store.require(task_id).status is TaskStatus.UPLOADING
    assert len(list((tmp_path / "app").rglob(f"{task_id}.plane"))) == 1  # kept to go on with
    before = list(parts.stored)
    assert [n for _, n in before] == [1, 2, 3, 4, 5, 6]

    parts.before_put = None
    second = open_window(ctx, wait_for_server=False)
    # At once, before the server even answered: what this start continues, and where.
    notice = child(second, QLabel, "status.resume")
    assert notice.isVisible()
    assert notice.text().startswith("Continuing 1 unfinished upload · ")
    assert second.encode_view.task_id == task_id
    assert child(second, QLabel, "encode.progress.text").text() == "Continuing where it stopped…"
    notice.linkActivated.emit("history")
    assert second.current_screen == "history"
    history = second.history_view

    def done() -> bool:
        task = second.store.get(task_id)
        return task is not None and task.status is TaskStatus.SUCCEEDED

    qtbot.waitUntil(done, timeout=WAIT_MS)
    plane_upload = before[0][0]  # the same upload goes on: only the parts it lacked
    resent = [n for u, n in parts.stored[len(before) :] if u == plane_upload]
    assert resent == list(range(7, 48))
    assert len(parts.stored) == len(set(parts.stored))
    qtbot.waitUntil(lambda: history.tasks and history.tasks[0].status is TaskStatus.SUCCEEDED)
    assert history.table.item(0, 2).text() == "Done"
    assert not notice.isVisible()
    assert "The stego file is ready" in label(second, "encode.result")
    assert not list((tmp_path / "app").rglob(f"{task_id}.plane"))  # sent and done: dropped


# Settings and history -----------------------------------------------------------------


def test_settings_are_tested_and_saved_with_the_token_in_the_keyring(
    qtbot, open_window, tmp_path, desktop_board
):
    keyring = MemoryKeyring()
    ctx = make_context(tmp_path / "app", desktop_board, keyring=keyring)
    window = open_window(ctx)
    window.show_screen("settings")
    assert child(window, QLineEdit, "settings.url").text() == API
    assert child(window, QLineEdit, "settings.token").text() == TOKEN

    type_into(qtbot, window, "settings.token", "tok_wrong")
    click(qtbot, window, "settings.test")
    qtbot.waitUntil(lambda: "refused the token" in label(window, "settings.test_result"))
    type_into(qtbot, window, "settings.token", TOKEN)
    click(qtbot, window, "settings.test")
    qtbot.waitUntil(
        lambda: (
            label(window, "settings.test_result")
            == "Connected: the server is ready and the token works."
        )
    )

    downloads = tmp_path / "Downloads"
    downloads.mkdir()
    child(window, QSpinBox, "settings.parallel").setValue(3)
    size = child(window, QSpinBox, "settings.part_size")
    assert not child(window, QCheckBox, "settings.part_size.set").isChecked()
    assert not size.isEnabled()
    assert label(window, "settings.part_size.note").startswith("The server chooses")
    child(window, QCheckBox, "settings.part_size.set").setChecked(True)
    assert size.isEnabled() and size.value() == 16
    size.setValue(8)
    type_into(qtbot, window, "settings.download_dir", str(downloads))
    click(qtbot, window, "settings.save")
    assert label(window, "settings.status") == "Saved. The token is kept in the system keyring."
    assert keyring.entries == {("subtone", API): TOKEN}
    saved = json.loads(ctx.config_path.read_text())
    assert "token" not in saved and saved["parallel_parts"] == 3
    assert saved["part_size_bytes"] == 8 * 1024 * 1024
    assert window.settings.parallel_parts == 3
    assert window.settings.part_size_bytes == 8 * 1024 * 1024
    assert window.settings.effective_download_dir == downloads
    qtbot.waitUntil(lambda: window.connection.status is ConnectionStatus.ONLINE)
    screenshot(window, "settings")

    type_into(qtbot, window, "settings.url", "ftp://nowhere")
    click(qtbot, window, "settings.save")
    assert "must start with http:// or https://" in label(window, "settings.status")


def test_the_part_size_setting_reaches_the_server(
    qtbot, open_window, tmp_path, desktop_board, desktop_dialogs, cover, secret_file
):
    ctx = make_context(tmp_path / "app", desktop_board, part_size_bytes=6 * 1024 * 1024)
    window = open_window(ctx)
    view = encode(qtbot, window, desktop_dialogs, cover, secret_file)
    qtbot.waitUntil(lambda: finished(view), timeout=WAIT_MS)
    created = [
        json.loads(r.content)
        for r in desktop_board.server.requests
        if r.method == "POST" and r.url.path == "/v1/uploads"
    ]
    assert len(created) == 2  # the cover and the sealed payload
    assert all(body["part_size"] == 6 * 1024 * 1024 for body in created)


def test_a_new_server_url_is_used_at_once(qtbot, window, desktop_board):
    window.show_screen("settings")
    desktop_board.offline = True
    type_into(qtbot, window, "settings.url", "http://elsewhere.test:8600")
    click(qtbot, window, "settings.save")
    assert window.manager.server == "http://elsewhere.test:8600"
    qtbot.waitUntil(lambda: window.connection.status is ConnectionStatus.OFFLINE)
    assert "http://elsewhere.test:8600" in label(window, "status.connection")


def test_history_shows_the_jobs_trace_id_for_an_operator(
    qtbot, window, desktop_board, desktop_dialogs, cover, secret_file
):
    from PySide6.QtGui import QGuiApplication

    view = encode(qtbot, window, desktop_dialogs, cover, secret_file)
    qtbot.waitUntil(lambda: finished(view), timeout=WAIT_MS)
    task = view.follower.task
    (job,) = desktop_board.server.jobs.values()
    assert job.trace_id and task.trace_id == job.trace_id == window.runtime.client.trace_id
    window.show_screen("history")
    history = window.history_view
    history.select(task.id)
    assert history.trace.isVisible()
    assert f"Trace id: {task.trace_id}." in label(window, "history.trace_id")
    assert f"Trace id: {task.trace_id}" in history.table.item(0, 2).toolTip()
    assert "history.copy_trace" not in [b.objectName() for b in history.actions.buttons.values()]
    history._context_menu(history.table.visualItemRect(history.table.item(0, 0)).center())
    assert history.menu is not None
    (copy,) = [a for a in history.menu.actions() if a.text() == "Copy trace id"]
    history.menu.close()
    copy.trigger()
    assert QGuiApplication.clipboard().text() == task.trace_id
    assert f"Copied the trace id {task.trace_id}" in label(window, "history.message")


def test_history_lists_jobs_with_sizes_dates_and_outputs(
    qtbot, window, desktop_dialogs, cover, secret_file, tmp_path
):
    view = encode(qtbot, window, desktop_dialogs, cover, secret_file)
    qtbot.waitUntil(lambda: finished(view), timeout=WAIT_MS)
    decode(qtbot, window, desktop_dialogs, view.follower.task.output)
    window.show_screen("history")
    history = window.history_view
    qtbot.waitUntil(lambda: len(history.tasks) == 2)
    table = history.table
    assert table.rowCount() == 2
    rows = [[table.item(r, c).text() for c in range(table.columnCount())] for r in range(2)]
    assert rows[0][0] == "Decode" and rows[1][0] == "Encode"
    assert rows[1][1] == "plan.txt in holiday.wav"
    assert rows[0][2] == rows[1][2] == "Done"
    assert rows[1][3].startswith("480 KB + ") and rows[1][3].endswith("→ 480 KB")
    assert rows[0][3] == f"480 KB → {len(SECRET)} B"
    assert rows[0][6] == "plan.txt" and rows[1][6] == "holiday-stego.wav"  # as Save offers it
    assert rows[1][4][:2] == "20"  # a date
    assert [t.kind for t in history.tasks] == [TaskKind.DECODE, TaskKind.ENCODE]
    assert "None: every upload finished" in history.uploads.item(0).text()

    history.select(history.tasks[1].id)
    assert child(window, QPushButton, "history.save").isEnabled()
    assert not child(window, QPushButton, "history.resume").isEnabled()
    target = tmp_path / "from-history.wav"
    desktop_dialogs.save_answers.append(target)
    click(qtbot, window, "history.save")
    qtbot.waitUntil(lambda: label(window, "history.message") == f"Saved to {target}")
    assert target.read_bytes() == history.tasks[1].output.read_bytes()
    screenshot(window, "history")

    click(qtbot, window, "history.remove")
    assert [t.kind for t in history.tasks] == [TaskKind.DECODE]


# Entry points ---------------------------------------------------------------------------


def test_entry_points_are_declared():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["gui-scripts"]["subtone-desktop"] == "desktop.app:main"
    assert (
        (ROOT / "desktop" / "__main__.py").read_text().strip().endswith("raise SystemExit(main())")
    )
    from desktop.app import main

    assert callable(main)


def test_a_second_copy_is_refused_with_a_clear_message(qtbot, qapp, desktop_ctx, tmp_path):
    from desktop.app import ALREADY_RUNNING, run
    from desktop.app.instance import InstanceLock
    from tests.desktop.app_support import ScriptedDialogs

    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from desktop.app.instance import InstanceLock\n"
        "lock = InstanceLock(Path(sys.argv[1]))\n"
        "print('locked' if lock.acquire() else 'refused', flush=True)\n"
        "sys.stdin.read()\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", script, str(desktop_ctx.data_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    ) as first:
        assert first.stdout.readline().strip() == "locked"
        dialogs = ScriptedDialogs()
        windows = len(qapp.topLevelWidgets())
        assert run(qapp, desktop_ctx, dialogs) == ALREADY_RUNNING
        assert dialogs.asked == [("error", "Subtone is already running")]
        assert f"(process {first.pid})" in dialogs.errors[0]
        assert "two copies would continue the same uploads twice" in dialogs.errors[0]
        assert len(qapp.topLevelWidgets()) == windows  # no window was opened
        first.stdin.close()  # the other copy quits
        assert first.wait(10) == 0
    with InstanceLock(desktop_ctx.data_dir) as lock:  # free once the other copy is gone
        assert lock.acquire()


_QUIT_SCRIPT = """
import sys
from pathlib import Path
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from desktop.app import run
from desktop.app.main_window import MainWindow
from tests.desktop.app_support import ScriptedDialogs, Switchboard, make_context
from tests.desktop.fake_server import FakeServer

app = QApplication([])
ctx = make_context(Path(sys.argv[1]), Switchboard(FakeServer()))
seen = []

def quit_soon():
    window = next(w for w in app.topLevelWidgets() if isinstance(w, MainWindow))
    # Connected after the app's own handlers: it sees what they did.
    app.aboutToQuit.connect(lambda: seen.append(window.closed))
    app.exit(0)  # as the session ending does: no window is asked to close first

QTimer.singleShot(100, quit_soon)
status = run(app, ctx, ScriptedDialogs())
print("status", status, "closed when quitting", seen, flush=True)
"""


def test_quitting_the_application_shuts_the_window_down(tmp_path):
    # A process of its own: a QApplication that quit cannot be used by the next tests.
    done = subprocess.run(
        [sys.executable, "-c", _QUIT_SCRIPT, str(tmp_path / "app")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    assert done.returncode == 0, done.stderr
    assert "status 0 closed when quitting [True]" in done.stdout, done.stdout + done.stderr


def test_history_opens_a_decode_that_waited_for_its_passphrase(
    qtbot, open_window, desktop_ctx, desktop_dialogs, cover, secret_file
):
    from desktop.app.context import close_runtime
    from desktop.core.orchestration import prepare_decode, run_task
    from tests.desktop.app_support import CHEAP

    first = open_window(desktop_ctx)
    view = encode(qtbot, first, desktop_dialogs, cover, secret_file)
    qtbot.waitUntil(lambda: finished(view), timeout=WAIT_MS)
    stego = view.follower.task.output
    first.close()
    # A decode whose app was restarted before it could open the result: the passphrase,
    # never written down, is gone.
    settings = desktop_ctx.settings_store().load()
    store = desktop_ctx.task_store()
    runtime = desktop_ctx.runtime(settings, store)
    task = prepare_decode(
        store, server=settings.server_url, stego=stego, passphrase=PASSPHRASE, position_kdf=CHEAP
    )
    assert run_task(runtime, task.id).status is TaskStatus.NEEDS_PASSPHRASE
    close_runtime(runtime)

    second = open_window(desktop_ctx)
    second.show_screen("history")
    history = second.history_view
    history.select(task.id)
    assert history.table.item(0, 2).text() == "Needs the passphrase"
    desktop_dialogs.passphrase_answers.append("a wrong guess")
    click(qtbot, second, "history.passphrase")
    qtbot.waitUntil(lambda: "passphrase is wrong" in label(second, "history.message"))
    desktop_dialogs.passphrase_answers.append(PASSPHRASE)
    click(qtbot, second, "history.passphrase")
    qtbot.waitUntil(lambda: second.store.require(task.id).status is TaskStatus.SUCCEEDED)
    assert second.store.require(task.id).output.read_bytes() == SECRET
