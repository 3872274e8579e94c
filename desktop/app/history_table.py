"""The History screen's table: its columns, and a table that fits them to its width."""

from __future__ import annotations

from typing import Final

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeyEvent, QResizeEvent, QShowEvent
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QWidget

__all__ = ["FILE_COLUMN", "HISTORY_COLUMNS", "OUTPUT_COLUMN", "STATE_COLUMN", "HistoryTable"]

HISTORY_COLUMNS: Final = ("What", "File", "State", "Sizes", "Created", "Updated", "Output")
STATE_COLUMN: Final = 2
STATE_COLUMN_SAMPLE: Final = "Needs the passphrase"
"""The State column is wide enough for this; longer texts are elided (the tooltip has all)."""
FILE_COLUMN: Final = 1
OUTPUT_COLUMN: Final = 6
FLEXIBLE_COLUMNS: Final = (FILE_COLUMN, OUTPUT_COLUMN)
"""File and Output share what width is left (their text is elided in the middle; the tooltip
has the whole path)."""
OUTPUT_SHARE: Final = 0.45
"""At most this part of it for Output, as much as its text needs; File takes the rest."""
UPDATED_COLUMN: Final = 5
OPTIONAL_COLUMNS: Final = (UPDATED_COLUMN, 3, 4)
"""Updated, then Sizes, then Created: left out, in this order, where the table is too narrow
for them beside a readable File and Output. Updated goes first, whenever not every column fits
whole."""
MIN_FLEXIBLE_WIDTH: Final = 110
"""File and Output each keep this much (about 14 characters) before optional columns go."""
MIN_SECTION_WIDTH: Final = 40
FIT_ROWS: Final = 200
"""Columns are sized to the text of this many rows at most (the newest)."""


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

    def _wanted(self, column: int) -> int:
        """The width ``column`` needs for its heading and its text (hidden or not)."""
        want = self.horizontalHeader().sectionSizeHint(column)
        grid = 1 if self.showGrid() else 0
        for r in range(min(self.rowCount(), FIT_ROWS)):
            item = self.item(r, column)
            if item is not None and item.text():
                hint = self.sizeHintForIndex(self.indexFromItem(item)).width()
                want = max(want, hint + grid)
        return want

    def fit_columns(self) -> None:
        """Every column within the width: the fixed ones as wide as their text, File and
        Output sharing the rest; optional columns left out where that leaves them too little."""
        header, width = self.horizontalHeader(), self.viewport().width()
        columns = range(self.columnCount())
        for c in columns:
            self.setColumnHidden(c, False)  # a hidden section's size hint is 0
        want = [self._wanted(c) for c in columns]
        want[STATE_COLUMN] = max(
            want[STATE_COLUMN], self.fontMetrics().horizontalAdvance(STATE_COLUMN_SAMPLE) + 16
        )
        hidden: set[int] = set()

        def fixed() -> int:
            return sum(want[c] for c in columns if c not in hidden and c not in FLEXIBLE_COLUMNS)

        if sum(want) > width:
            hidden.add(UPDATED_COLUMN)
        for c in OPTIONAL_COLUMNS[1:]:
            if fixed() + len(FLEXIBLE_COLUMNS) * MIN_FLEXIBLE_WIDTH <= width:
                break
            hidden.add(c)
        for c in columns:
            self.setColumnHidden(c, c in hidden)
            if c not in hidden and c not in FLEXIBLE_COLUMNS:
                header.resizeSection(c, want[c])
        room = max(0, width - fixed())
        share = max(int(room * OUTPUT_SHARE), min(MIN_FLEXIBLE_WIDTH, room // 2))
        output = min(want[OUTPUT_COLUMN], share)
        header.resizeSection(OUTPUT_COLUMN, max(MIN_SECTION_WIDTH, output))
        header.resizeSection(FILE_COLUMN, max(MIN_SECTION_WIDTH, room - output))

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self.fit_columns()

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        self.fit_columns()  # filled while another screen was shown: sized for this one now

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt's name
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.currentRow() >= 0:
            self.activated_row.emit()
            return
        super().keyPressEvent(event)
