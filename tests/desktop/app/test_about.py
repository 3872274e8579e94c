"""About: this app's version and protocol and the server's; a server that speaks another
protocol version is named plainly, and no work is sent to it."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel

from desktop.app.about import COMPATIBLE
from desktop.app.state import ConnectionStatus
from desktop.core.orchestration import TaskStatus
from subtone.protocol import PROTOCOL_VERSION
from subtone.version import __version__
from tests.desktop.app.test_views import SECRET, WAIT_MS, click, encode, label
from tests.desktop.app_support import write_wav

NEWER = PROTOCOL_VERSION + 1


def text(dialog, name: str) -> str:
    widget = dialog.findChild(QLabel, name)
    assert widget is not None, name
    return widget.text()


def test_about_says_both_versions_and_that_they_match(qtbot, window):
    window.shortcuts["about"].activated.emit()  # F1
    about = window.about
    assert about is not None and about.isVisible()
    assert text(about, "about.app") == f"Subtone {__version__} · protocol {PROTOCOL_VERSION}"
    qtbot.waitUntil(lambda: about.server_version is not None, timeout=WAIT_MS)
    assert text(about, "about.server") == f"Subtone {__version__} · protocol {PROTOCOL_VERSION}"
    assert text(about, "about.verdict") == COMPATIBLE
    assert text(about, "about.server_url") == window.settings.server_url
    about.close()
    click(qtbot, window, "main.about")  # the sidebar's button: asked again
    assert about.isVisible()
    assert text(about, "about.server") == "Asking the server…"
    qtbot.waitUntil(lambda: text(about, "about.verdict") == COMPATIBLE, timeout=WAIT_MS)


def test_a_server_older_than_the_version_endpoint_is_asked_its_openapi(
    qtbot, open_window, desktop_ctx, desktop_board
):
    desktop_board.version = None  # /version answers 404
    window = open_window(desktop_ctx)
    assert window.connection.status is ConnectionStatus.ONLINE
    about = window.show_about()
    qtbot.waitUntil(lambda: about.server_version is not None, timeout=WAIT_MS)
    assert text(about, "about.server").startswith(f"protocol {PROTOCOL_VERSION} (an older server")
    assert text(about, "about.verdict") == COMPATIBLE


def test_a_server_of_another_protocol_is_named_and_gets_no_work(
    qtbot, open_window, desktop_ctx, desktop_board, desktop_dialogs, tmp_path
):
    desktop_board.version = {"server": "0.9.0", "protocol": NEWER}
    window = open_window(desktop_ctx)
    assert window.connection.status is ConnectionStatus.INCOMPATIBLE
    banner = window.banner
    assert banner.isVisible()
    expected = (
        f"The server speaks protocol {NEWER} (Subtone 0.9.0); Subtone {__version__} on this "
        f"computer speaks protocol {PROTOCOL_VERSION}. Update Subtone on this computer"
    )
    assert expected in banner.text()
    assert "speaks another protocol version" in window.status_label.text()
    assert expected in window.status_label.toolTip()

    cover = write_wav(tmp_path / "cover.wav", 8000 * 30)
    secret = tmp_path / "plan.txt"
    secret.write_bytes(SECRET)
    view = encode(qtbot, window, desktop_dialogs, cover, secret)
    qtbot.waitUntil(lambda: view.follower.task is not None, timeout=WAIT_MS)
    qtbot.wait(300)
    assert view.follower.task.status is TaskStatus.QUEUED  # waits: nothing was sent
    assert not desktop_board.server.uploads and not desktop_board.server.jobs
    assert "another protocol version" in label(window, "encode.progress.text")

    about = window.show_about()
    qtbot.waitUntil(lambda: about.server_version is not None, timeout=WAIT_MS)
    assert text(about, "about.server") == f"Subtone 0.9.0 · protocol {NEWER}"
    assert expected in text(about, "about.verdict")

    window.show_screen("settings")
    click(qtbot, window, "settings.test")
    qtbot.waitUntil(lambda: expected in label(window, "settings.test_result"), timeout=WAIT_MS)
    assert label(window, "settings.test_result").startswith(
        "The server speaks another protocol version."
    )

    desktop_board.version = {"server": __version__, "protocol": PROTOCOL_VERSION}
    desktop_board.offline = True  # upgraded: down a moment, back speaking this protocol
    window.monitor.check_now()
    qtbot.waitUntil(lambda: window.connection.status is ConnectionStatus.OFFLINE, timeout=WAIT_MS)
    desktop_board.offline = False
    qtbot.waitUntil(lambda: window.connection.status is ConnectionStatus.ONLINE, timeout=WAIT_MS)
    assert not window.banner.isVisible()
    qtbot.waitUntil(lambda: view.follower.task.status.finished, timeout=WAIT_MS)
    assert view.follower.task.status is TaskStatus.SUCCEEDED


def test_about_says_so_when_the_server_cannot_be_reached(qtbot, window, desktop_board):
    desktop_board.offline = True
    about = window.show_about()
    qtbot.waitUntil(lambda: text(about, "about.server") == "not known", timeout=WAIT_MS)
    assert text(about, "about.verdict").startswith("The server cannot be reached.")
    assert text(about, "about.app") == f"Subtone {__version__} · protocol {PROTOCOL_VERSION}"
