"""A scrolling waveform: (min, max) columns drawn as vertical lines, newest on the right."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from PySide6.QtCore import QLineF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

__all__ = ["WaveformView"]


WAVE_COLOUR = "#5fb3f0"


class WaveformView(QWidget):
    def __init__(self, parent: QWidget | None = None, *, colour: str = WAVE_COLOUR) -> None:
        super().__init__(parent)
        self.colour = colour
        self._columns: NDArray[np.float32] = np.zeros((0, 2), dtype=np.float32)
        self._capacity = 600
        self.placeholder = "Press Record to start"
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumHeight(90)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return QSize(600, 140)

    def set_columns(self, columns: NDArray[np.float32], capacity: int) -> None:
        """Show ``columns`` (n, 2) in a view ``capacity`` columns wide."""
        self._columns = columns
        self._capacity = max(1, capacity)
        self.update()

    def clear(self) -> None:
        self.set_columns(np.zeros((0, 2), dtype=np.float32), self._capacity)

    @property
    def column_count(self) -> int:
        return len(self._columns)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt's name
        painter = QPainter(self)
        width, height = self.width(), self.height()
        painter.fillRect(self.rect(), QColor("#1f2329"))
        middle = height / 2
        painter.setPen(QPen(QColor("#3a3f47"), 1))
        painter.drawLine(QLineF(0, middle, width, middle))
        n = len(self._columns)
        if n:
            step = width / self._capacity
            start = width - n * step
            half = (height - 8) / 2
            xs = start + (np.arange(n) + 0.5) * step
            tops = middle - np.clip(self._columns[:, 1], -1, 1) * half
            bottoms = middle - np.clip(self._columns[:, 0], -1, 1) * half
            bottoms = np.maximum(bottoms, tops + 1)  # silence still shows as a thin line
            painter.setPen(QPen(QColor(self.colour), max(1.0, step * 0.8), Qt.PenStyle.SolidLine))
            painter.drawLines(
                [QLineF(x, t, x, b) for x, t, b in zip(xs, tops, bottoms, strict=True)]
            )
        if not n:
            painter.setPen(QColor("#8a9099"))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.placeholder)
        painter.end()
