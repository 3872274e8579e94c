"""Fixtures for the desktop app's Qt tests (pytest-qt, offscreen): a window wired to fakes;
a real X server (Xvfb) for the tests that render the window as a display shows it."""

from __future__ import annotations

from pathlib import Path

import pytest

from desktop.audio.fake import FakeBackend
from tests.desktop.app_support import ScriptedDialogs, Switchboard, make_context
from tests.desktop.fake_server import FakeServer
from tests.desktop.xserver import XServer

APP_PART_SIZE = 64 * 1024


@pytest.fixture
def x_display():
    """A real X server (Xvfb) of its own for the test: its ``DISPLAY`` (``":N"``)."""
    with XServer() as display:
        yield display


@pytest.fixture(scope="session")
def screenshots_dir(request, tmp_path_factory) -> Path:
    """``--screenshots DIR``, or a folder under pytest's tmp folder for this run."""
    chosen = request.config.getoption("--screenshots")
    if chosen is None:
        return tmp_path_factory.mktemp("screenshots")
    folder = Path(chosen).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def desktop_board() -> Switchboard:
    """The fake API and storage, behind a switch that takes them offline."""
    return Switchboard(FakeServer(part_size=APP_PART_SIZE))


@pytest.fixture
def desktop_dialogs() -> ScriptedDialogs:
    return ScriptedDialogs()


@pytest.fixture
def desktop_audio() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
def desktop_ctx(tmp_path: Path, desktop_board: Switchboard, desktop_audio: FakeBackend):
    return make_context(tmp_path / "app", desktop_board, audio=desktop_audio)


@pytest.fixture
def open_window(qtbot, desktop_dialogs):
    """Opens a MainWindow on a context; every window opened is shut down after the test."""
    from desktop.app.main_window import MainWindow
    from desktop.app.state import ConnectionStatus

    windows = []

    def open_(ctx, *, wait_for_server: bool = True):
        window = MainWindow(ctx, dialogs=desktop_dialogs)
        qtbot.addWidget(window)
        window.show()
        windows.append(window)
        if wait_for_server:
            qtbot.waitUntil(
                lambda: window.connection.status is not ConnectionStatus.UNKNOWN, timeout=5000
            )
        return window

    yield open_
    for window in windows:
        window.shutdown()
        window.close()


@pytest.fixture
def window(open_window, desktop_ctx):
    return open_window(desktop_ctx)
