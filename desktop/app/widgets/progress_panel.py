"""One progress bar with its line of text (speed, time left) and pause/resume/cancel buttons."""

from __future__ import annotations

from enum import StrEnum

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

__all__ = ["PanelState", "ProgressPanel"]

_SCALE = 1000


class PanelState(StrEnum):
    IDLE = "idle"
    PREPARING = "preparing"
    """Checked and sealed here: it can be cancelled, not paused (there is nothing to pause)."""
    CANCELLING = "cancelling"
    RUNNING = "running"
    PAUSED = "paused"
    WAITING = "waiting"
    DONE = "done"


class ProgressPanel(QWidget):
    pause_clicked = Signal()
    resume_clicked = Signal()
    cancel_clicked = Signal()

    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(name)
        self.bar = QProgressBar(self)
        self.bar.setObjectName(f"{name}.bar")
        self.bar.setRange(0, _SCALE)
        self.bar.setTextVisible(False)
        self.text = QLabel(self)
        self.text.setObjectName(f"{name}.text")
        self.text.setWordWrap(True)
        self.pause = QPushButton("Pause", self)
        self.pause.setObjectName(f"{name}.pause")
        self.resume = QPushButton("Resume", self)
        self.resume.setObjectName(f"{name}.resume")
        self.cancel = QPushButton("Cancel", self)
        self.cancel.setObjectName(f"{name}.cancel")
        self.pause.clicked.connect(self.pause_clicked)
        self.resume.clicked.connect(self.resume_clicked)
        self.cancel.clicked.connect(self.cancel_clicked)
        row = QHBoxLayout()
        row.addWidget(self.bar, 1)
        row.addWidget(self.pause)
        row.addWidget(self.resume)
        row.addWidget(self.cancel)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.text)
        self.state = PanelState.IDLE
        self.set_state(PanelState.IDLE)

    @property
    def fraction(self) -> float:
        return self.bar.value() / _SCALE

    def set_progress(self, fraction: float, text: str) -> None:
        self.bar.setValue(round(max(0.0, min(1.0, fraction)) * _SCALE))
        self.text.setText(text)

    def set_state(self, state: PanelState, text: str | None = None) -> None:
        self.state = state
        self.pause.setVisible(state in (PanelState.RUNNING, PanelState.WAITING))
        self.resume.setVisible(state is PanelState.PAUSED)
        self.pause.setEnabled(state in (PanelState.RUNNING, PanelState.WAITING))
        self.cancel.setEnabled(
            state
            in (PanelState.PREPARING, PanelState.RUNNING, PanelState.PAUSED, PanelState.WAITING)
        )
        self.cancel.setVisible(state not in (PanelState.IDLE, PanelState.DONE))
        self.setVisible(state is not PanelState.IDLE)
        if state is PanelState.DONE:
            self.bar.setValue(_SCALE)
        elif state is PanelState.WAITING:
            self.bar.setValue(0)
        if text is not None:
            self.text.setText(text)
