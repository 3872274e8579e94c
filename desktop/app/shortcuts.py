"""Keyboard shortcuts for the main actions, each acting on the screen shown.

Ctrl+1…5 switch screens; Ctrl+R records (or stops); Ctrl+P plays (or stops); Ctrl+O chooses
the screen's file; Ctrl+Return starts the screen's action (Encode, Decode, Save settings);
Ctrl+S saves the result; F5 refreshes History or the microphone list; F1 shows About.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence, QShortcut

if TYPE_CHECKING:
    from desktop.app.main_window import MainWindow

__all__ = ["SHORTCUTS", "install_shortcuts"]

SHORTCUTS: Final = {
    "record": "Ctrl+R",
    "play": "Ctrl+P",
    "open": "Ctrl+O",
    "start": "Ctrl+Return",
    "save": "Ctrl+S",
    "refresh": "F5",
    "about": "F1",
}


def _record(window: MainWindow) -> None:
    view = window.record_view
    window.show_screen("record")
    if view.stop_button.isEnabled():
        view.stop()
    elif view.start_button.isEnabled():
        view.start()
    elif view.rerecord_button.isEnabled():
        view.rerecord()


def _play(window: MainWindow) -> None:
    screen = window.current_screen
    if screen == "record" and window.record_view.play_button.isEnabled():
        window.record_view.toggle_play()
    elif screen == "decode" and window.decode_view.play_button.isEnabled():
        window.decode_view.toggle_play()
    elif screen == "history":
        window.history_view.toggle_play()


def _open(window: MainWindow) -> None:
    fields = {
        "encode": window.encode_view.cover,
        "decode": window.decode_view.stego,
        "settings": window.settings_view.folder,
    }
    field = fields.get(window.current_screen)
    if field is None:
        window.show_screen("encode")
        field = window.encode_view.cover
    field.button.click()


def _start(window: MainWindow) -> None:
    buttons = {
        "encode": window.encode_view.start_button,
        "decode": window.decode_view.start_button,
        "settings": window.settings_view.save_button,
    }
    button = buttons.get(window.current_screen)
    if button is not None and button.isEnabled():
        button.click()


def _save(window: MainWindow) -> None:
    screen = window.current_screen
    if screen == "encode":
        window.encode_view.save()
    elif screen == "decode":
        window.decode_view.save()
    elif screen == "history":
        window.history_view.save_selected()
    elif screen == "settings":
        window.settings_view.save()


def _refresh(window: MainWindow) -> None:
    if window.current_screen == "history":
        window.history_view.refresh()
    elif window.current_screen == "record":
        window.record_view.refresh_devices()


_ACTIONS: Final[dict[str, Callable[[MainWindow], None]]] = {
    "record": _record,
    "play": _play,
    "open": _open,
    "start": _start,
    "save": _save,
    "refresh": _refresh,
    "about": lambda window: window.show_about(),
}


def install_shortcuts(window: MainWindow) -> dict[str, QShortcut]:
    """Every shortcut, by name (``screen.<name>`` for Ctrl+1…5)."""
    from desktop.app.main_window import SCREENS

    made: dict[str, QShortcut] = {}

    def add(name: str, keys: str, slot: Callable[[], None]) -> None:
        shortcut = QShortcut(QKeySequence(keys), window)
        shortcut.setContext(Qt.ShortcutContext.WindowShortcut)
        shortcut.activated.connect(slot)
        made[name] = shortcut

    for n, screen in enumerate(SCREENS, start=1):
        add(f"screen.{screen}", f"Ctrl+{n}", lambda s=screen: window.show_screen(s))
    for name, keys in SHORTCUTS.items():
        add(name, keys, lambda a=_ACTIONS[name]: a(window))
    return made
