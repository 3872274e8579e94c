"""The History screen's table: its columns, and a table that fits them to its width."""

from __future__ import annotations

from typing import Final

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeyEvent, QResizeEvent
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QWidget

__all__ = ["HISTORY_COLUMNS", "STATE_COLUMN", "HistoryTable"]

HISTORY_COLUMNS: Final = ("What", "File", "State", "Sizes", "Created", "Updated", "Output")
STATE_COLUMN: Final = 2
STATE_COLUMN_SAMPLE: Final = "Needs the passphrase"
"""The State column is wide enough for this; longer texts are elided (the tooltip has all)."""
FILE_COLUMN: Final = 1
FLEXIBLE_COLUMNS: Final = (FILE_COLUMN, 3, 6)
"""File, Sizes and Output share what width is left (their text is elided in the middle)."""
SHARES: Final = {FILE_COLUMN: 0.4, 3: 0.25, 6: 0.35}
"""At most this part of it for Sizes and Output, as much as their text needs; File takes
the rest (its tooltip has the whole path)."""
UPDATED_COLUMN: Final = 5
"""Left out when the window is too narrow for every column (Created stays)."""
MIN_FLEXIBLE_WIDTH: Final = 44
MIN_SECTION_WIDTH: Final = 40


class HistoryTable(QTableWidget):
    """The tasks, one per row, fitting the width (no column behind a scrollbar)."""

    activated_row = Signal()
    """Enter pressed on a row."""

    def __init__(self, columns: int, parent: QWidget | None = None) -> None:
        super().__init__(0, columns, parent)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.verticalHeader().setVisible(False)
        self.setAlternatingRowColors(True)
        self.setWordWrap(False)
        self.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        header = self.horizontalHeader()
        header.setMinimumSectionSize(MIN_SECTION_WIDTH)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        header.setStretchLastSection(False)

    def fit_columns(self) -> None:
        """Every column within the width: the fixed ones as wide as their text, the flexible
        ones sharing the rest; Updated is left out where even that cannot fit."""
        header, width = self.horizontalHeader(), self.viewport().width()
        want = [
            max(self.sizeHintForColumn(c), header.sectionSizeHint(c))
            for c in range(self.columnCount())
        ]
        want[STATE_COLUMN] = self.fontMetrics().horizontalAdvance(STATE_COLUMN_SAMPLE) + 16
        fixed = [c for c in range(self.columnCount()) if c not in FLEXIBLE_COLUMNS]
        narrow = sum(want) > width
        self.setColumnHidden(UPDATED_COLUMN, narrow)
        if narrow:
            fixed.remove(UPDATED_COLUMN)
        for c in fixed:
            header.resizeSection(c, want[c])
        room = max(0, width - sum(want[c] for c in fixed))
        floor = min(MIN_FLEXIBLE_WIDTH, room // len(FLEXIBLE_COLUMNS))
        sizes = {c: max(floor, min(want[c], int(room * share))) for c, share in SHARES.items()}
        others = sum(v for c, v in sizes.items() if c != FILE_COLUMN)
        sizes[FILE_COLUMN] = max(MIN_SECTION_WIDTH, room - others)
        for c, size in sizes.items():
            header.resizeSection(c, size)

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self.fit_columns()

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt's name
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.currentRow() >= 0:
            self.activated_row.emit()
            return
        super().keyPressEvent(event)
