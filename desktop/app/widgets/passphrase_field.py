"""A passphrase, optionally typed twice, with a strength bar and a hint under it."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QGridLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QWidget,
)

from desktop.app.passphrase import strength

__all__ = ["PassphraseField"]

_LEVEL_COLOURS = ("#d9443a", "#e07b34", "#e0b634", "#7cc24a", "#2e9e5b")


class PassphraseField(QWidget):
    changed = Signal()

    def __init__(self, name: str, *, confirm: bool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(name)
        self._confirming = confirm
        self.edit = QLineEdit(self)
        self.edit.setObjectName(f"{name}.first")
        self.edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.edit.setPlaceholderText("Passphrase")
        self.confirm = QLineEdit(self)
        self.confirm.setObjectName(f"{name}.confirm")
        self.confirm.setEchoMode(QLineEdit.EchoMode.Password)
        self.confirm.setPlaceholderText("The same passphrase again")
        self.confirm.setVisible(confirm)
        self.show_box = QCheckBox("Show", self)
        self.show_box.setObjectName(f"{name}.show")
        self.show_box.toggled.connect(self._toggle_echo)
        self.bar = QProgressBar(self)
        self.bar.setObjectName(f"{name}.strength")
        self.bar.setRange(0, 4)
        self.bar.setTextVisible(True)
        self.bar.setMaximumHeight(16)
        self.bar.setVisible(False)  # shown once something is typed
        self.hint = QLabel(self)
        self.hint.setObjectName(f"{name}.hint")
        self.hint.setWordWrap(True)
        self.hint.setVisible(confirm)
        layout = QGridLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.edit, 0, 0)
        layout.addWidget(self.show_box, 0, 1)
        layout.addWidget(self.confirm, 1, 0)
        layout.addWidget(self.bar, 2, 0)
        layout.addWidget(self.hint, 3, 0, 1, 2)
        self.edit.textChanged.connect(self._changed)
        self.confirm.textChanged.connect(self._changed)
        self._changed()

    @property
    def passphrase(self) -> str:
        return self.edit.text()

    def set_passphrase(self, text: str, confirmation: str | None = None) -> None:
        self.edit.setText(text)
        if self._confirming:
            self.confirm.setText(text if confirmation is None else confirmation)

    def clear(self) -> None:
        self.set_passphrase("", "")

    def problem(self) -> str | None:
        """Why the passphrase cannot be used yet (``None``: it can)."""
        text = self.edit.text()
        if not text:
            return "Enter a passphrase."
        if not self._confirming:
            return None
        if not strength(text).acceptable:
            return "This passphrase is too easy to guess."
        if self.confirm.text() != text:
            return "The two passphrases do not match."
        return None

    def _toggle_echo(self, shown: bool) -> None:
        mode = QLineEdit.EchoMode.Normal if shown else QLineEdit.EchoMode.Password
        self.edit.setEchoMode(mode)
        self.confirm.setEchoMode(mode)

    def _changed(self) -> None:
        if self._confirming:
            s = strength(self.edit.text())
            self.bar.setVisible(bool(self.edit.text()))  # no empty bar before typing
            self.bar.setValue(s.level if self.edit.text() else 0)
            self.bar.setFormat(f"{s.label} (~{s.bits:.0f} bits)" if self.edit.text() else "")
            colour = _LEVEL_COLOURS[s.level]
            self.bar.setStyleSheet(f"QProgressBar::chunk {{ background: {colour}; }}")
            hint = s.hint
            confirm = self.confirm.text()
            if self.edit.text() and confirm and confirm != self.edit.text():
                hint = "The two passphrases do not match. " + hint
            self.hint.setText(hint)
        self.changed.emit()
