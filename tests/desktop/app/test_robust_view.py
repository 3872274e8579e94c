"""The Encode screen's "Survives re-encoding" choice, through the window against the fake API
(which runs the real robust core): the robust capacity is shown from the cover's header, a
secret that does not fit in robust mode is refused before any upload, and a robust encode is
a ``robust.embed`` job whose file the Decode screen reads back (finding the mode itself)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QCheckBox, QPushButton

from desktop.core.orchestration import TaskMode
from subtone.protocol import JobKind
from subtone.stego import wav
from tests.desktop.app.test_views import (
    PASSPHRASE,
    WAIT_MS,
    child,
    choose,
    click,
    decode,
    finished,
    label,
    type_into,
)
from tests.desktop.app_support import screenshot

SHORT = b"Meet me by the old mill at noon."
LONG = SHORT * 9  # fits the LSB mode, not 30 s of robust mode


def test_a_robust_encode_shows_its_capacity_refuses_early_and_round_trips(
    qtbot, window, desktop_dialogs, desktop_board, tmp_path: Path
):
    cover = tmp_path / "walk.wav"
    wav.generate_cover(cover, 30.0, rate=44_100, channels=2, bits=16, seed=5)
    long_secret, short_secret = tmp_path / "long.txt", tmp_path / "note.txt"
    long_secret.write_bytes(LONG)
    short_secret.write_bytes(SHORT)
    window.show_screen("encode")
    choose(qtbot, window, desktop_dialogs, "encode.cover", cover)
    choose(qtbot, window, desktop_dialogs, "encode.secret", long_secret)
    type_into(qtbot, window, "encode.passphrase.first", PASSPHRASE)
    type_into(qtbot, window, "encode.passphrase.confirm", PASSPHRASE)
    qtbot.waitUntil(child(window, QPushButton, "encode.start").isEnabled, timeout=WAIT_MS)
    assert label(window, "encode.robust_info") == ""

    robust = child(window, QCheckBox, "encode.robust")
    robust.setChecked(True)
    info = label(window, "encode.robust_info")
    assert "Survives re-encoding" in info and "holds up to 376 B" in info
    assert "16 kHz mono" in info  # what the server then sees
    assert label(window, "encode.fit").startswith("Too large")
    assert not child(window, QPushButton, "encode.start").isEnabled()
    assert desktop_board.server.requests == []
    screenshot(window, "encode-robust-too-large")

    choose(qtbot, window, desktop_dialogs, "encode.secret", short_secret)
    qtbot.waitUntil(child(window, QPushButton, "encode.start").isEnabled, timeout=WAIT_MS)
    assert "16 kHz mono copy" in label(window, "encode.hint")
    click(qtbot, window, "encode.start")
    view = window.encode_view
    qtbot.waitUntil(lambda: finished(view), timeout=WAIT_MS)
    task = view.follower.task
    assert task.mode is TaskMode.ROBUST and task.output is not None
    kinds = {job.kind for job in desktop_board.server.jobs.values()}
    assert kinds == {JobKind.ROBUST_EMBED}
    assert task.output.stat().st_size == cover.stat().st_size

    recovered = decode(qtbot, window, desktop_dialogs, task.output).follower.task
    assert recovered.mode is TaskMode.ROBUST, recovered
    assert recovered.status.value == "succeeded", (recovered.error_code, recovered.error_message)
    assert recovered.output.read_bytes() == SHORT
