"""The main window's size and place, remembered between runs (a QSettings INI file in the
app's state folder, so tests and several profiles never share it)."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from PySide6.QtCore import QByteArray, QSettings
from PySide6.QtWidgets import QWidget

__all__ = ["DEFAULT_SIZE", "MINIMUM_SIZE", "WINDOW_STATE_FILE", "WindowGeometry"]

DEFAULT_SIZE: Final = (1040, 760)
MINIMUM_SIZE: Final = (640, 480)
"""The smallest the window can be made (half a small laptop's screen): every screen is laid
out to fit it, scrolling down where it must, never sideways."""
WINDOW_STATE_FILE: Final = "window.ini"
_GEOMETRY_KEY: Final = "main/geometry"


class WindowGeometry:
    def __init__(self, path: Path) -> None:
        self.path = path

    def _settings(self) -> QSettings:
        return QSettings(str(self.path), QSettings.Format.IniFormat)

    def restore(self, window: QWidget) -> bool:
        """Put ``window`` back where it was; whether anything was remembered."""
        value = self._settings().value(_GEOMETRY_KEY)
        if isinstance(value, QByteArray) and not value.isEmpty():
            return bool(window.restoreGeometry(value))
        return False

    def save(self, window: QWidget) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError:
            return  # not remembered: nothing else depends on it
        settings = self._settings()
        settings.setValue(_GEOMETRY_KEY, window.saveGeometry())
        settings.sync()
