"""A line of feedback that takes no room while empty: an error, a success, or plain info."""

from __future__ import annotations

from typing import Final

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QWidget

__all__ = ["MessageLabel"]

_STYLES: Final = {
    "error": "QLabel { color: #8e2b22; background: #fdecea; border: 1px solid #f1b9b2;"
    " border-radius: 4px; padding: 6px 8px; }",
    "ok": "QLabel { color: #1e5e3a; background: #e8f5ec; border: 1px solid #b5dcc2;"
    " border-radius: 4px; padding: 6px 8px; }",
    "info": "",
}


class MessageLabel(QLabel):
    def __init__(self, name: str, kind: str = "info", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(name)
        self.setWordWrap(True)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.set_kind(kind)
        self.setVisible(False)

    def set_kind(self, kind: str) -> None:
        self.setStyleSheet(_STYLES[kind])

    def setText(self, text: str) -> None:  # noqa: N802 - Qt's name
        super().setText(text)
        self.setVisible(bool(text))

    def clear(self) -> None:
        super().clear()
        self.setVisible(False)

    def say(self, text: str, kind: str) -> None:
        self.set_kind(kind)
        self.setText(text)
