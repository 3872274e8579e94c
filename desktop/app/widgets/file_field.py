"""A file (or folder) path field: type it, browse for it, or drop it on the field."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QHBoxLayout, QLineEdit, QPushButton, QWidget

__all__ = ["FileField", "dropped_paths"]


def dropped_paths(event: QDropEvent | QDragEnterEvent) -> list[Path]:
    mime = event.mimeData()
    if not mime.hasUrls():
        return []
    return [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()]


class FileField(QWidget):
    """Emits ``path_changed(Path | None)`` when the path really changes."""

    path_changed = Signal(object)

    def __init__(
        self,
        name: str,
        placeholder: str,
        browse: Callable[[], Path | None],
        parent: QWidget | None = None,
        *,
        edit_name: str | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName(name)
        self.setAcceptDrops(True)
        self._browse = browse
        self._path: Path | None = None
        self._shown: str | None = None
        """What the field shows instead of the path (a recording's length and size)."""
        self.edit = QLineEdit(self)
        self.edit.setObjectName(edit_name or f"{name}.path")
        self.edit.setPlaceholderText(placeholder)
        self.edit.setClearButtonEnabled(True)
        self.edit.editingFinished.connect(self._edited)
        self.button = QPushButton("Browse…", self)
        self.button.setObjectName(f"{name}.browse")
        self.button.clicked.connect(self._browse_clicked)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.edit, 1)
        layout.addWidget(self.button)

    @property
    def path(self) -> Path | None:
        return self._path

    def set_path(self, path: Path | None, shown: str | None = None) -> None:
        """Take ``path``; the field shows ``shown`` instead where given (the path is then in
        the tooltip)."""
        self._shown = shown if path is not None else None
        text = self._shown or (str(path) if path is not None else "")
        if self.edit.text() != text:
            self.edit.setText(text)
        self.edit.setToolTip(str(path) if self._shown and path is not None else "")
        if path != self._path:
            self._path = path
            self.path_changed.emit(path)

    def _edited(self) -> None:
        text = self.edit.text().strip()
        if self._shown is not None and text == self._shown:
            return  # unchanged: still the file it stands for
        self.set_path(Path(text).expanduser() if text else None)

    def _browse_clicked(self) -> None:
        chosen = self._browse()
        if chosen is not None:
            self.set_path(chosen)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt's name
        if dropped_paths(event):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt's name
        paths = dropped_paths(event)
        if paths:
            self.set_path(paths[0])
            event.acceptProposedAction()
