"""The light and dark themes follow the system's colour scheme, and reach what is painted."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette

from desktop.app.state import ConnectionStatus
from desktop.app.theme import DARK, LIGHT, Tone, is_dark, theme_for, tone_colour


@pytest.fixture
def system_scheme():
    """Tells the app the system's colour scheme changed (as the platform would); after the
    test, back to what the system says."""
    hints = QGuiApplication.styleHints()
    yield hints.colorSchemeChanged.emit
    hints.colorSchemeChanged.emit(hints.colorScheme())


def test_the_scheme_picks_the_theme():
    assert theme_for(Qt.ColorScheme.Dark) is DARK
    assert theme_for(Qt.ColorScheme.Light) is LIGHT
    assert theme_for(Qt.ColorScheme.Unknown) is LIGHT  # no desktop says: light
    assert is_dark(DARK.palette()) and not is_dark(LIGHT.palette())
    assert tone_colour(Tone.ERROR, DARK.palette()) == QColor(DARK.tones[Tone.ERROR])


def centre_colour(widget) -> QColor:
    image = widget.grab().toImage()
    return image.pixelColor(image.width() // 2, 3)


def test_the_window_follows_the_system_from_light_to_dark_and_back(qtbot, window, system_scheme):
    view = window.encode_view
    window.show_screen("encode")
    view.result.say("The stego file is ready.", "ok")
    qtbot.wait(20)
    assert window.theme.theme is LIGHT
    assert centre_colour(view.result) == QColor(LIGHT.boxes["ok"].background)

    system_scheme(Qt.ColorScheme.Dark)
    qtbot.wait(20)
    assert window.theme.theme is DARK
    assert window.palette().color(QPalette.ColorRole.Window) == QColor(DARK.window)
    assert centre_colour(view.result) == QColor(DARK.boxes["ok"].background)
    assert centre_colour(window.nav) == QColor(DARK.nav_background)
    assert window.connection.status is ConnectionStatus.ONLINE
    assert DARK.tones[Tone.OK] in window.status_label.text()  # the status dot, repainted

    system_scheme(Qt.ColorScheme.Light)
    qtbot.wait(20)
    assert window.theme.theme is LIGHT
    assert centre_colour(view.result) == QColor(LIGHT.boxes["ok"].background)
    assert LIGHT.tones[Tone.OK] in window.status_label.text()
