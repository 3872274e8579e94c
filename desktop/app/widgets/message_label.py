"""A line of feedback that takes no room while empty: an error, a success, or plain info."""

from __future__ import annotations

from typing import Final

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QWidget

from desktop.app.theme import set_box

__all__ = ["MessageLabel"]

KINDS: Final = ("error", "ok", "info")
"""An error or a success is shown in a coloured box (the theme's); info as plain text."""


class MessageLabel(QLabel):
    def __init__(self, name: str, kind: str = "info", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(name)
        self.setWordWrap(True)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.set_kind(kind)
        self.setVisible(False)

    def set_kind(self, kind: str) -> None:
        assert kind in KINDS, kind
        set_box(self, "" if kind == "info" else kind)

    def setText(self, text: str) -> None:  # noqa: N802 - Qt's name
        super().setText(text)
        self.setVisible(bool(text))

    def clear(self) -> None:
        super().clear()
        self.setVisible(False)

    def say(self, text: str, kind: str) -> None:
        self.set_kind(kind)
        self.setText(text)
