"""A horizontal level meter: RMS bar, peak bar, held-peak marker and a clip light."""

from __future__ import annotations

from typing import Final

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QLinearGradient, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

__all__ = ["LevelMeter"]

FLOOR_DB: Final = -60.0
TICKS_DB: Final = (-48, -36, -24, -12, -6, 0)
SCALE_HEIGHT: Final = 16
"""Room under the bar: a 3 px tick, a gap, then its label (never drawn over each other)."""
METER_HEIGHT: Final = 20 + SCALE_HEIGHT
CLIP_WIDTH: Final = 14.0
CLIP_GAP: Final = 6.0


class LevelMeter(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rms_dbfs = FLOOR_DB
        self.peak_dbfs = FLOOR_DB
        self.held_dbfs = FLOOR_DB
        self.clipped = False
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMinimumHeight(METER_HEIGHT)
        self.setToolTip("Input level (dBFS): keep the loudest parts below the red zone.")

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return QSize(360, METER_HEIGHT)

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
        font = painter.font()
        font.setPointSizeF(max(6.0, font.pointSizeF() * 0.75))
        painter.setFont(font)
        metrics = painter.fontMetrics()
        # "0 dB" is centred under the bar's right end: leave it room inside the widget.
        right_room = max(CLIP_WIDTH + CLIP_GAP, metrics.horizontalAdvance("0 dB") / 2 + 2)
        bar = QRectF(0, 0, self.width() - right_room, self.height() - SCALE_HEIGHT)
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
        tick_top = bar.bottom() + 1
        label_top = tick_top + 4
        label_height = self.height() - label_top
        for tick in TICKS_DB:
            x = min(self._x(tick, bar.width()), bar.right() - 1)
            painter.drawLine(int(x), int(tick_top), int(x), int(tick_top + 3))
            text = f"{tick}" if tick else "0 dB"
            width = metrics.horizontalAdvance(text) + 4
            left = min(x - width / 2, self.width() - width)
            box = QRectF(left, label_top, width, label_height)
            painter.drawText(box, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop, text)
        light = QRectF(bar.right() + CLIP_GAP, bar.top(), CLIP_WIDTH, bar.height())
        light.moveRight(min(light.right(), self.width() - 1))
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor("#d9443a") if self.clipped else QColor("#3a3f47"))
        painter.drawRoundedRect(light, 3, 3)
        painter.end()
