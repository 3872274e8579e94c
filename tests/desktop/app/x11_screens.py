"""Every screen of the main window as a real X server shows it, at two window sizes, in the
light theme and in the dark one.

Not collected by itself (the rest of the suite renders offscreen, and a process has one Qt
platform): ``test_screenshots.py`` starts Xvfb and runs this file in a pytest of its own with
``QT_QPA_PLATFORM=xcb``. Each screen is captured from the X server (``QScreen.grabWindow``,
the pixels the display holds) and saved under ``--screenshots``; the test fails when a screen
is blank, when text does not fit or widgets overlap (``layout_checks``), or when the window
does not keep its minimum size.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PySide6.QtCore import QCoreApplication, QEvent, QPoint, QRect, QSize, Qt
from PySide6.QtGui import QGuiApplication, QImage
from PySide6.QtWidgets import QWidget

from desktop.app.main_window import SCREENS
from desktop.app.state import ConnectionStatus
from desktop.app.window_state import MINIMUM_SIZE
from subtone.protocol import PROTOCOL_VERSION
from tests.desktop.app.test_views import (
    SECRET,
    WAIT_MS,
    click,
    decode,
    encode,
    finished,
    voice_like,
)
from tests.desktop.layout_checks import blank, layout_problems

pytestmark = pytest.mark.skipif(
    os.environ.get("QT_QPA_PLATFORM") != "xcb" or not os.environ.get("DISPLAY"),
    reason="runs under a real X server (test_screenshots.py starts one)",
)

SIZES = {"small": MINIMUM_SIZE, "large": (1440, 900)}
"""The smallest window the app allows (half a small laptop's screen), and a large one."""
SETTLE_MS = 40
MAX_DIFFERENT = 0.01
"""What the display shows may differ from the widget's own rendering by this part of its
pixels (a text cursor that blinks), no more."""


def music_like(path: Path, seconds: float, rate: int) -> Path:
    """A cover that looks like music in its waveform: chords that swell and fade, with a
    little noise (so every sample has a low bit to carry)."""
    t = np.arange(round(seconds * rate)) / rate
    chord = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6)) / 3
    swell = 0.25 + 0.6 * np.abs(np.sin(np.pi * t / 7.5)) * (0.6 + 0.4 * np.sin(2 * np.pi * t))
    noise = np.random.default_rng(3).normal(0, 0.01, t.size)
    sf.write(path, (chord * swell + noise).clip(-1, 1).astype(np.float32), rate, "PCM_16")
    return path


def settle(qtbot) -> None:
    QCoreApplication.sendPostedEvents(None, QEvent.Type.LayoutRequest)
    qtbot.wait(SETTLE_MS)


def _rgb(image: QImage) -> np.ndarray:
    rgb = image.convertToFormat(QImage.Format.Format_RGB32)
    pixels = np.frombuffer(rgb.constBits(), np.uint32, rgb.sizeInBytes() // 4)
    return pixels.reshape(rgb.height(), rgb.bytesPerLine() // 4)[:, : rgb.width()].copy()


def capture(qtbot, widget: QWidget) -> QImage:
    """The pixels the X server shows in ``widget``'s window, once they are what the widget
    paints (so the capture is of this screen, fully drawn)."""
    handle = widget.windowHandle()
    assert handle is not None, "the window has no native window"
    qtbot.waitUntil(handle.isExposed, timeout=WAIT_MS)
    shot: list[QImage] = []

    def drawn() -> bool:
        QGuiApplication.processEvents()
        shown = handle.screen().grabWindow(widget.winId()).toImage()
        painted = widget.grab().toImage()
        shot[:] = [shown]
        if shown.size() != painted.size():
            return False
        different = np.count_nonzero(_rgb(shown) != _rgb(painted))
        return different <= MAX_DIFFERENT * shown.width() * shown.height()

    qtbot.waitUntil(drawn, timeout=5_000)
    return shot[0]


class Album:
    """Shows each screen, captures it from the display, saves it, checks its layout."""

    def __init__(self, qtbot, window, folder: Path, size: tuple[int, int]) -> None:
        self.qtbot = qtbot
        self.window = window
        self.folder = folder
        self.size = size
        self.problems: list[str] = []
        self.saved: list[Path] = []

    def take(self, screen: str, state: str, *, bottom: bool = False) -> None:
        window = self.window
        window.show_screen(screen)
        settle(self.qtbot)
        scroll = window.stack.currentWidget().verticalScrollBar()
        scroll.setValue(scroll.maximum() if bottom else 0)  # from the top, or its end
        settle(self.qtbot)
        image = capture(self.qtbot, window)
        path = self.folder / f"{screen}-{state}-{self.size[0]}x{self.size[1]}.png"
        assert image.save(str(path)), path
        self.saved.append(path)
        where = f"{path.name}: "
        if image.size() != QSize(*self.size):
            self.problems.append(f"{where}the display shows the window at {image.size()}")
        page = window.stack.currentWidget()
        if blank(image.copy(QRect(page.mapTo(window, QPoint(0, 0)), page.size()))):
            self.problems.append(f"{where}the screen is blank")
        self.problems += [where + p for p in layout_problems(window)]

    def take_dialog(self, dialog: QWidget, name: str) -> None:
        settle(self.qtbot)
        image = capture(self.qtbot, dialog)
        path = self.folder / f"{name}-{self.size[0]}x{self.size[1]}.png"
        assert image.save(str(path)), path
        self.saved.append(path)
        if blank(image):
            self.problems.append(f"{path.name}: the dialog is blank")
        self.problems += [f"{path.name}: {p}" for p in layout_problems(dialog)]


@pytest.mark.parametrize("size_name", SIZES)
def test_every_screen_on_a_real_display(
    qtbot,
    window,
    desktop_dialogs,
    desktop_audio,
    desktop_board,
    screenshots_dir,
    tmp_path_factory,
    size_name,
):
    size = SIZES[size_name]
    assert QGuiApplication.platformName() == "xcb"
    window.move(0, 0)
    window.resize(*size)
    settle(qtbot)
    album = Album(qtbot, window, screenshots_dir, size)
    for screen in SCREENS:
        album.take(screen, "first-run")

    window.show_screen("record")
    click(qtbot, window, "record.start")
    desktop_audio.last_input.feed(voice_like(3.0, 16_000))
    view = window.record_view
    qtbot.waitUntil(lambda: view.recorder.frames >= 48_000, timeout=WAIT_MS)
    click(qtbot, window, "record.stop")
    album.take("record", "recorded")

    music = tmp_path_factory.getbasetemp() / "Music"  # a short path, as a person's would be
    music.mkdir(exist_ok=True)
    cover = music_like(music / "holiday-at-the-seaside.wav", 30.0, 8000)
    secret = music / "meeting-plans.txt"
    secret.write_bytes(SECRET)
    encoding = encode(qtbot, window, desktop_dialogs, cover, secret)
    qtbot.waitUntil(lambda: finished(encoding), timeout=WAIT_MS)
    album.take("encode", "done")
    qtbot.waitUntil(lambda: window.encode_view.difference is not None, timeout=WAIT_MS)
    album.take("encode", "what-changed", bottom=True)
    decode(qtbot, window, desktop_dialogs, encoding.follower.task.output)
    album.take("decode", "done")
    album.take("history", "two-tasks")

    hints = QGuiApplication.styleHints()
    hints.colorSchemeChanged.emit(Qt.ColorScheme.Dark)  # as the desktop says when it turns dark
    try:
        for screen in SCREENS:
            album.take(screen, "dark")
    finally:
        hints.colorSchemeChanged.emit(hints.colorScheme())

    about = window.show_about()
    qtbot.waitUntil(lambda: about.server_version is not None, timeout=WAIT_MS)
    album.take_dialog(about, "about")
    about.close()

    desktop_board.version = {"server": "0.9.0", "protocol": PROTOCOL_VERSION + 1}
    window.monitor.versions.clear()  # as after the server was upgraded
    window.monitor.check_now()
    qtbot.waitUntil(
        lambda: window.connection.status is ConnectionStatus.INCOMPATIBLE, timeout=WAIT_MS
    )
    album.take("encode", "incompatible-server")
    assert not album.problems, "\n".join(album.problems)


def test_the_window_keeps_its_minimum_size(qtbot, window):
    assert (window.minimumWidth(), window.minimumHeight()) == MINIMUM_SIZE
    window.move(0, 0)
    window.resize(MINIMUM_SIZE[0] // 2, MINIMUM_SIZE[1] // 2)
    settle(qtbot)
    assert (window.width(), window.height()) == MINIMUM_SIZE
    image = capture(qtbot, window)  # the X server's window, not only Qt's idea of it
    assert (image.width(), image.height()) == MINIMUM_SIZE
