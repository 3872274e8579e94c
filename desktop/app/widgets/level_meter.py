"""A horizontal level meter: RMS bar, peak bar, held-peak marker and a clip light."""

from __future__ import annotations

from typing import Final

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QLinearGradient, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

__all__ = ["LevelMeter"]

FLOOR_DB: Final = -60.0
TICKS_DB: Final = (-48, -36, -24, -12, -6, 0)


class LevelMeter(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rms_dbfs = FLOOR_DB
        self.peak_dbfs = FLOOR_DB
        self.held_dbfs = FLOOR_DB
        self.clipped = False
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMinimumHeight(30)
        self.setToolTip("Input level (dBFS): keep the loudest parts below the red zone.")

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return QSize(360, 30)

    def set_level(self, rms_dbfs: float, peak_dbfs: float, held_dbfs: float, clipped: bool) -> None:
        values = (rms_dbfs, peak_dbfs, held_dbfs, clipped)
        if values != (self.rms_dbfs, self.peak_dbfs, self.held_dbfs, self.clipped):
            self.rms_dbfs, self.peak_dbfs, self.held_dbfs, self.clipped = values
            self.update()

    @staticmethod
    def _x(db: float, width: float) -> float:
        return max(0.0, min(1.0, (db - FLOOR_DB) / -FLOOR_DB)) * width

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt's name
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        clip_width = 14.0
        bar = QRectF(0, 0, self.width() - clip_width - 4, self.height() - 10)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor("#1f2329"))
        painter.drawRoundedRect(bar, 3, 3)
        gradient = QLinearGradient(bar.topLeft(), bar.topRight())
        gradient.setColorAt(0.0, QColor("#2e9e5b"))
        gradient.setColorAt(self._x(-12, 1.0), QColor("#7cc24a"))
        gradient.setColorAt(self._x(-6, 1.0), QColor("#e0b634"))
        gradient.setColorAt(1.0, QColor("#d9443a"))
        inner_top, inner_height = bar.top() + 2, bar.height() - 4
        peak = QRectF(bar.left(), inner_top, self._x(self.peak_dbfs, bar.width()), inner_height)
        painter.setOpacity(0.45)
        painter.setBrush(gradient)
        painter.drawRoundedRect(peak, 2, 2)
        painter.setOpacity(1.0)
        rms = QRectF(bar.left(), inner_top, self._x(self.rms_dbfs, bar.width()), inner_height)
        painter.drawRoundedRect(rms, 2, 2)
        if self.held_dbfs > FLOOR_DB:
            x = self._x(self.held_dbfs, bar.width())
            painter.setPen(QPen(QColor("#f5f5f5"), 2))
            painter.drawLine(int(x), int(bar.top() + 2), int(x), int(bar.bottom() - 2))
        painter.setPen(QPen(self.palette().color(self.foregroundRole()), 1))
        font = painter.font()
        font.setPointSizeF(max(6.0, font.pointSizeF() * 0.7))
        painter.setFont(font)
        for tick in TICKS_DB:
            x = self._x(tick, bar.width())
            painter.drawLine(int(x), int(bar.bottom()), int(x), int(bar.bottom() + 3))
            if tick:
                box, align = QRectF(x - 20, bar.bottom() + 1, 40, 10), Qt.AlignmentFlag.AlignCenter
            else:
                box, align = QRectF(x - 40, bar.bottom() + 1, 40, 10), Qt.AlignmentFlag.AlignRight
            painter.drawText(box, align, f"{tick}" if tick else "0 dB")
        light = QRectF(bar.right() + 4, bar.top(), clip_width, bar.height())
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor("#d9443a") if self.clipped else QColor("#3a3f47"))
        painter.drawRoundedRect(light, 3, 3)
        painter.end()
