"""The questions the app asks through system dialogs, behind one object tests replace."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QInputDialog, QLineEdit, QMessageBox, QWidget

__all__ = ["ANY_FILTER", "AUDIO_FILTER", "WAV_FILTER", "Dialogs"]

WAV_FILTER = "WAV audio (*.wav *.wave);;All files (*)"
AUDIO_FILTER = "Audio (*.wav *.flac *.ogg *.opus *.mp3);;All files (*)"
ANY_FILTER = "All files (*)"


class Dialogs:
    """Real dialogs. Each method returns ``None`` when the person cancels."""

    def open_file(self, parent: QWidget, title: str, start: Path, filters: str) -> Path | None:
        name, _ = QFileDialog.getOpenFileName(parent, title, str(start), filters)
        return Path(name) if name else None

    def save_file(self, parent: QWidget, title: str, suggested: Path, filters: str) -> Path | None:
        name, _ = QFileDialog.getSaveFileName(parent, title, str(suggested), filters)
        return Path(name) if name else None

    def choose_folder(self, parent: QWidget, title: str, start: Path) -> Path | None:
        name = QFileDialog.getExistingDirectory(parent, title, str(start))
        return Path(name) if name else None

    def ask_passphrase(self, parent: QWidget, title: str, prompt: str) -> str | None:
        text, ok = QInputDialog.getText(parent, title, prompt, QLineEdit.EchoMode.Password)
        return text if ok and text else None

    def error(self, parent: QWidget | None, title: str, text: str) -> None:
        QMessageBox.critical(parent, title, text)
