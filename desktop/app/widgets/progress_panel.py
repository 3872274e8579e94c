"""A task's steps (ticked when done), one overall bar with its line of text (speed, time
left), and pause/resume/cancel buttons."""

from __future__ import annotations

from enum import StrEnum

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QLabel, QProgressBar, QPushButton, QWidget

from desktop.app.stages import Step
from desktop.app.widgets.layout import page, row
from desktop.app.widgets.stage_list import StageList

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

    def __init__(self, name: str, steps: tuple[Step, ...], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(name)
        self.steps = StageList(f"{name}.steps", steps, self)
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
        controls = row((self.bar, 1), self.pause, self.resume, self.cancel)
        page(self, self.steps, controls, self.text, margins=False)
        self.state = PanelState.IDLE
        self.set_state(PanelState.IDLE)

    @property
    def fraction(self) -> float:
        return self.bar.value() / _SCALE

    def restart(self, text: str) -> None:
        """A new task: no step done yet."""
        self.steps.progress.reset()
        self.steps.refresh()
        self.bar.setValue(0)
        self.text.setText(text)

    def set_progress(self, fraction: float, text: str) -> None:
        """One progress line of the running step: the bar shows the whole task."""
        text = self.steps.progress.update(fraction, text)
        self.steps.refresh()
        self.bar.setValue(round(self.steps.progress.overall * _SCALE))
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
            self.steps.progress.finish()
            self.steps.refresh()
            self.bar.setValue(_SCALE)
        if text is not None:
            self.text.setText(text)
