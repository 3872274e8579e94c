"""Small QObjects holding view state; each emits ``changed`` only when a value really changes."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from PySide6.QtCore import QObject, Signal

__all__ = ["ConnectionState", "ConnectionStatus", "RecordPhase", "RecordState", "Selection"]


class ConnectionStatus(StrEnum):
    UNKNOWN = "unknown"
    ONLINE = "online"
    NOT_READY = "not_ready"
    OFFLINE = "offline"
    ERROR = "error"
    INCOMPATIBLE = "incompatible"
    """The server speaks another protocol version: nothing is sent to it."""


class ConnectionState(QObject):
    """Whether the server answers, as the status bar shows it."""

    changed = Signal(object, str)  # ConnectionStatus, message

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.status = ConnectionStatus.UNKNOWN
        self.message = "Checking the server…"

    @property
    def online(self) -> bool:
        return self.status is ConnectionStatus.ONLINE

    def set(self, status: ConnectionStatus, message: str) -> None:
        if (status, message) == (self.status, self.message):
            return
        self.status, self.message = status, message
        self.changed.emit(status, message)


class Selection(QObject):
    """The files chosen for an encode, shared by the Record and Encode screens."""

    cover_changed = Signal(object)  # Path | None
    secret_changed = Signal(object)  # Path | None

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.cover: Path | None = None
        self.secret: Path | None = None
        self.secret_is_recording = False

    def set_cover(self, path: Path | None) -> None:
        if path != self.cover:
            self.cover = path
            self.cover_changed.emit(path)

    def set_secret(self, path: Path | None, *, recording: bool = False) -> None:
        """A new secret; ``recording``: it is a recording of this app (deleted once sent)."""
        if path == self.secret:
            return
        self.secret = path
        self.secret_is_recording = recording and path is not None
        self.secret_changed.emit(path)


class RecordPhase(StrEnum):
    NO_DEVICE = "no_device"
    IDLE = "idle"
    RECORDING = "recording"
    RECORDED = "recorded"
    PLAYING = "playing"


class RecordState(QObject):
    changed = Signal(object)  # RecordPhase

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.phase = RecordPhase.IDLE

    def set(self, phase: RecordPhase) -> None:
        if phase is not self.phase:
            self.phase = phase
            self.changed.emit(phase)
