"""The steps of a task, one per line: ticked when done, marked while running."""

from __future__ import annotations

from typing import Final

from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from desktop.app.stages import Step, StepProgress

__all__ = ["StageList"]

DONE_MARK: Final = "✓"
RUNNING_MARK: Final = "▸"
TODO_MARK: Final = "○"
_STYLES: Final = {
    DONE_MARK: "color: #2e7d4f;",
    RUNNING_MARK: "font-weight: bold;",
    TODO_MARK: "color: #7f8c8d;",
}


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
            line.setStyleSheet(_STYLES[mark])

    @property
    def ticked(self) -> list[bool]:
        return [self.mark(i) == DONE_MARK for i in range(len(self.lines))]
