"""The steps of a task, one per line: ticked when done, marked while running."""

from __future__ import annotations

from typing import Final

from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from desktop.app.stages import Step, StepProgress
from desktop.app.theme import Tone, set_tone

__all__ = ["StageList"]

DONE_MARK: Final = "✓"
RUNNING_MARK: Final = "▸"
TODO_MARK: Final = "○"
_TONES: Final = {DONE_MARK: Tone.OK, RUNNING_MARK: None, TODO_MARK: Tone.MUTED}


class StageList(QWidget):
    def __init__(self, name: str, steps: tuple[Step, ...], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(name)
        self.progress = StepProgress(steps)
        self.lines: list[QLabel] = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        for i, _step in enumerate(steps):
            line = QLabel(self)
            line.setObjectName(f"{name}.{i}")
            layout.addWidget(line)
            self.lines.append(line)
        self.refresh()

    def mark(self, index: int) -> str:
        if self.progress.done(index):
            return DONE_MARK
        return RUNNING_MARK if index == self.progress.current else TODO_MARK

    def refresh(self) -> None:
        for i, (line, step) in enumerate(zip(self.lines, self.progress.steps, strict=True)):
            mark = self.mark(i)
            line.setText(f"{mark}  {step.name}")
            set_tone(line, _TONES[mark])
            font = line.font()
            if font.bold() != (mark == RUNNING_MARK):
                font.setBold(mark == RUNNING_MARK)
                line.setFont(font)

    @property
    def ticked(self) -> list[bool]:
        return [self.mark(i) == DONE_MARK for i in range(len(self.lines))]
