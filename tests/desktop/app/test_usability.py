"""What a new user met in the desktop app (issue 14), each through the window as they would:
settings on a machine without ~/Downloads, the steps of an encode and a decode, the names
shown for files and microphones, History's wording, columns and row actions, shortcuts, the
window's size, and files dropped on every field."""

from __future__ import annotations

from pathlib import Path

import platformdirs
import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QLineEdit

from desktop.audio.backend import DeviceInfo
from desktop.audio.fake import FAKE_SPEAKER, FakeBackend
from desktop.core.config import ClientSettings
from desktop.core.orchestration import TaskStatus
from tests.desktop.app.test_views import (
    SECRET,
    WAIT_MS,
    child,
    click,
    decode,
    encode,
    finished,
    label,
    type_into,
)
from tests.desktop.app_support import make_context, write_wav


@pytest.fixture
def cover(tmp_path: Path) -> Path:
    return write_wav(tmp_path / "holiday.wav", 8000 * 30)


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "plan.txt"
    path.write_bytes(SECRET)
    return path


def drop_on(widget, *paths: Path) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    event = QDropEvent(
        QPointF(5, 5),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    widget.dropEvent(event)


def watch_progress(window, view):
    """Each progress line's (overall bar, text, ticks) as the screen shows it."""
    seen: list[tuple[int, str, list[bool]]] = []
    panel = view.progress
    window.manager.task_progress.connect(
        lambda *_: seen.append((panel.bar.value(), panel.text.text(), panel.steps.ticked))
    )
    return seen


# 1. Settings without ~/Downloads ------------------------------------------------------


def test_settings_save_creates_the_missing_default_downloads_folder(
    qtbot, window, tmp_path, monkeypatch
):
    downloads = tmp_path / "home" / "Downloads"
    monkeypatch.setattr(platformdirs, "user_downloads_dir", lambda: str(downloads))
    window.show_screen("settings")
    type_into(qtbot, window, "settings.download_dir", str(downloads))  # the default, shown
    click(qtbot, window, "settings.save")
    assert label(window, "settings.status").startswith("Saved."), label(window, "settings.status")
    assert downloads.is_dir()
    assert window.settings.download_dir is None  # keeps following the platform's folder


def test_settings_fall_back_to_documents_where_downloads_cannot_be_made(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setattr(platformdirs, "user_downloads_dir", lambda: str(blocker / "Downloads"))
    monkeypatch.setattr(platformdirs, "user_documents_dir", lambda: str(tmp_path / "Documents"))
    from desktop.app.settings_view import usable_download_dir

    settings = usable_download_dir(ClientSettings())
    assert settings.download_dir == tmp_path / "Documents"


# 3 and 4. Steps ------------------------------------------------------------------------


def test_encode_shows_its_steps_ticked_with_one_bar_that_never_restarts(
    qtbot, window, desktop_dialogs, cover, secret_file
):
    seen = watch_progress(window, window.encode_view)
    view = encode(qtbot, window, desktop_dialogs, cover, secret_file)
    qtbot.waitUntil(lambda: finished(view), timeout=WAIT_MS)
    assert view.follower.task.status is TaskStatus.SUCCEEDED
    bars = [bar for bar, _, _ in seen]
    assert bars == sorted(bars), "the overall bar went back"
    reading = [ticks for _, text, ticks in seen if text.startswith("Reading the cover")]
    assert reading and reading[-1][:1] == [True]  # sealed already
    sending = [t for _, text, t in seen if text.startswith("Sending the cover's LSB plane")]
    assert sending and sending[-1][:3] == [True, True, True]  # sealed, read and checked
    writing = [ticks for _, text, ticks in seen if text.startswith("Writing the stego file")]
    assert writing and writing[-1][:-1] == [True] * (len(writing[-1]) - 1)  # the last step
    steps = view.progress.steps
    assert steps.ticked == [True] * len(steps.lines)
    assert [line.text()[0] for line in steps.lines] == ["✓"] * len(steps.lines)
    assert view.progress.bar.value() == view.progress.bar.maximum()


def test_decode_names_its_own_steps(qtbot, window, desktop_dialogs, cover, secret_file):
    view = encode(qtbot, window, desktop_dialogs, cover, secret_file)
    qtbot.waitUntil(lambda: finished(view), timeout=WAIT_MS)
    seen = watch_progress(window, window.decode_view)
    decode(qtbot, window, desktop_dialogs, view.follower.task.output)
    texts = [text for _, text, _ in seen]
    assert texts and not [t for t in texts if "Sealing" in t or "secret" in t.split(":")[0]]
    assert texts[0].startswith("Deriving the key")
    names = [line.text() for line in window.decode_view.progress.steps.lines]
    assert not [n for n in names if "Seal" in n]


# 7. History ----------------------------------------------------------------------------


def failed_decode(qtbot, window, dialogs, board, cover, secret_file):
    """An encode, then a decode whose job the server fails with ``no_payload`` (a wrong
    passphrase is refused before a task is made; the server still checks on its own)."""
    view = encode(qtbot, window, dialogs, cover, secret_file)
    qtbot.waitUntil(lambda: finished(view), timeout=WAIT_MS)
    board.server.fail_job = ("no_payload", "No hidden message was found.")
    decode(qtbot, window, dialogs, view.follower.task.output)
    window.show_screen("history")
    history = window.history_view
    qtbot.waitUntil(lambda: len(history.tasks) == 2)
    return view, history


def test_history_says_a_failure_plainly(
    qtbot, window, desktop_dialogs, desktop_board, cover, secret_file
):
    _, history = failed_decode(qtbot, window, desktop_dialogs, desktop_board, cover, secret_file)
    state = history.table.item(0, 2).text()
    assert state == "Failed: Wrong passphrase, or nothing hidden"
    assert "_" not in state


@pytest.mark.parametrize("size", [(1040, 760), (640, 480)])
def test_history_columns_fit_the_window(
    qtbot, window, desktop_dialogs, desktop_board, cover, secret_file, size
):
    _, history = failed_decode(qtbot, window, desktop_dialogs, desktop_board, cover, secret_file)
    window.resize(*size)
    qtbot.wait(50)  # laid out
    assert window.width() == size[0]  # it can be made this small (a laptop's half screen)
    table = history.table
    header = table.horizontalHeader()
    shown = [c for c in range(table.columnCount()) if not table.isColumnHidden(c)]
    used = sum(header.sectionSize(c) for c in shown)
    assert used <= table.viewport().width()
    assert not table.horizontalScrollBar().isVisible()
    if size[0] >= 1000:  # room enough: the Output column shows its whole text
        assert header.sectionSize(6) >= table.sizeHintForColumn(6)
    assert header.sectionSize(6) >= 40  # never squeezed out


def test_history_actions_are_on_the_row(
    qtbot, window, desktop_dialogs, desktop_board, cover, secret_file
):
    encoded, history = failed_decode(
        qtbot, window, desktop_dialogs, desktop_board, cover, secret_file
    )
    history.select(history.tasks[0].id)  # the failed decode: only Remove applies
    buttons = history.actions.buttons
    assert [k for k, b in buttons.items() if b.isVisible()] == ["remove"]
    menu = history.actions.menu(history)  # and its job's trace id, for an operator
    assert [a.text() for a in menu.actions()] == ["Remove", "Copy trace id"]

    history.select(encoded.follower.task.id)
    history._context_menu(QPoint(10, 10))
    assert history.menu is not None
    assert "Save output…" in [a.text() for a in history.menu.actions()]
    history.menu.close()
    target = Path(str(encoded.follower.task.output) + ".saved")
    desktop_dialogs.save_answers.append(target)
    row = history.table.visualItemRect(history.table.item(1, 0)).center()
    qtbot.mouseClick(history.table.viewport(), Qt.MouseButton.LeftButton, pos=row)
    qtbot.mouseDClick(history.table.viewport(), Qt.MouseButton.LeftButton, pos=row)
    assert desktop_dialogs.asked[-1] == ("save", "Save stego file")  # double-click: save
    qtbot.waitUntil(target.exists, timeout=WAIT_MS)


# 8. Microphones ------------------------------------------------------------------------


def test_microphones_are_listed_by_the_names_people_know_default_first(
    qtbot, open_window, tmp_path, desktop_board
):
    def mic(index: int, name: str, default: bool = False) -> DeviceInfo:
        return DeviceInfo(index, name, "ALSA", 2, 0, 48_000.0, is_default_input=default)

    audio = FakeBackend(
        [
            mic(0, "HDA Intel PCH: ALC3246 Analog (hw:0,0)"),
            mic(1, "pulse"),
            FAKE_SPEAKER,
            mic(3, "sysdefault"),
            mic(4, "default", default=True),
        ]
    )
    window = open_window(make_context(tmp_path / "app", desktop_board, audio=audio))
    combo = window.record_view.device
    items = [combo.itemText(i) for i in range(combo.count())]
    assert items == [
        "System default microphone",
        "HDA Intel PCH: ALC3246 Analog",
        "Sound server (PulseAudio / PipeWire)",
    ]
    assert combo.currentIndex() == 0 and combo.currentData() == 4


# Beyond: shortcuts, the window's size, drops on every field ----------------------------


def test_keyboard_shortcuts_switch_screens_and_record(qtbot, window):
    window.shortcuts["screen.encode"].activated.emit()
    assert window.current_screen == "encode"
    window.shortcuts["screen.history"].activated.emit()
    assert window.current_screen == "history"
    window.shortcuts["record"].activated.emit()
    assert window.current_screen == "record" and window.recorder.recording
    window.shortcuts["record"].activated.emit()
    assert not window.recorder.recording
    keys = {name: s.key().toString() for name, s in window.shortcuts.items()}
    assert keys["screen.record"] == "Ctrl+1" and keys["save"] == "Ctrl+S"


def test_the_window_remembers_its_size(qtbot, open_window, desktop_ctx):
    first = open_window(desktop_ctx)
    first.resize(720, 540)  # within the offscreen screen (800 × 600): not clamped
    qtbot.waitUntil(lambda: (first.width(), first.height()) == (720, 540))
    first.shutdown()
    first.close()
    second = open_window(desktop_ctx)
    assert (second.width(), second.height()) == (720, 540)


def test_files_can_be_dropped_on_every_field(qtbot, window, cover, secret_file, tmp_path):
    drop_on(window.encode_view.cover, cover)
    drop_on(window.encode_view.secret, secret_file)
    drop_on(window.decode_view.stego, cover)
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    drop_on(window.settings_view.folder, folder)
    assert window.selection.cover == cover and window.selection.secret == secret_file
    assert window.decode_view.stego.path == cover
    assert child(window, QLineEdit, "settings.download_dir").text() == str(folder)


def test_history_names_a_decodes_steps_as_a_decodes():
    from desktop.app.history_rows import step_name
    from desktop.core.orchestration import TaskKind

    sending = "Uploading: 1 MB of 2 MB"
    assert step_name(TaskKind.DECODE, sending) == "Sending the stego file's LSB plane"
    assert step_name(TaskKind.ENCODE, sending) == "Sending the cover's LSB plane"
    assert step_name(TaskKind.DECODE, "Reading the audio: 1 MB of 2 MB") == "Reading the stego file"
    assert step_name(TaskKind.ENCODE, "Reading the audio: 1 MB of 2 MB") == "Reading the cover"
    assert step_name(TaskKind.ENCODE, "Writing the stego file…") == "Writing the stego file"
    assert step_name(TaskKind.ENCODE, "Downloading: 1 KB of 2 KB") == "Downloading the changes"
    assert step_name(TaskKind.DECODE, "Sealing the secret…").startswith("Deriving the key")
