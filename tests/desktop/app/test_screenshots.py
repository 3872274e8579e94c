"""Every screen rendered at two window sizes, after a real encode and decode (offscreen).

The pictures go to ``$SUBTONE_SCREENSHOTS`` (default: tests/artifacts/screens/) to be looked
at; the test itself checks that no button is narrower than its text.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PySide6.QtCore import QCoreApplication, QEvent
from PySide6.QtWidgets import QPushButton

from desktop.app.main_window import SCREENS
from tests.desktop.app.test_views import SECRET, WAIT_MS, decode, encode, finished
from tests.desktop.app_support import ARTIFACTS, write_wav

SIZES = ((1040, 760), (720, 560))


def shots_dir() -> Path:
    folder = Path(os.environ.get("SUBTONE_SCREENSHOTS", ARTIFACTS / "screens"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def clipped_buttons(screen) -> list[str]:
    return [
        f"{b.objectName()} ({b.width()} < {b.sizeHint().width()})"
        for b in screen.findChildren(QPushButton)
        if b.isVisible() and b.width() < b.sizeHint().width()
    ]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_every_screen_renders(qtbot, window, desktop_dialogs, tmp_path, size):
    cover = write_wav(tmp_path / "holiday-at-the-seaside.wav", 8000 * 30)
    secret = tmp_path / "meeting-plans.txt"
    secret.write_bytes(SECRET)
    view = encode(qtbot, window, desktop_dialogs, cover, secret)
    qtbot.waitUntil(lambda: finished(view), timeout=WAIT_MS)
    decode(qtbot, window, desktop_dialogs, view.follower.task.output)
    window.resize(*size)
    folder = shots_dir()
    problems = []
    for name in SCREENS:
        window.show_screen(name)
        qtbot.wait(30)
        QCoreApplication.sendPostedEvents(None, QEvent.Type.LayoutRequest)
        path = folder / f"{name}-{size[0]}x{size[1]}.png"
        assert window.grab().save(str(path)), path
        problems += clipped_buttons(window.views[name])
    assert not problems, problems
