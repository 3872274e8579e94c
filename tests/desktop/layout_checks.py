"""What a screenshot test asserts about a window as it is laid out: text that does not fit,
widgets cut off by their parent or lying over each other, and a picture with nothing on it.

Each check returns a list of problems (empty: none), each naming the widget, so a failure says
what to look at in the saved screenshot.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from PySide6.QtCore import QRect
from PySide6.QtGui import QImage, QTextDocument
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QAbstractScrollArea,
    QComboBox,
    QGroupBox,
    QHeaderView,
    QLabel,
    QLayout,
    QScrollArea,
    QSizePolicy,
    QTableWidget,
    QWidget,
)

__all__ = ["blank", "layout_problems", "name_of"]

MIN_ELIDED_WIDTH = 100
"""A table cell may be cut short (elided, its tooltip has it whole) to no less than this: about
a dozen characters, enough to tell rows apart."""


def name_of(widget: QWidget) -> str:
    own = widget.objectName() or type(widget).__name__
    parent = widget.parentWidget()
    while not widget.objectName() and parent is not None:
        if parent.objectName():
            return f"{parent.objectName()}/{own}"
        parent = parent.parentWidget()
    return own


def laid_out(layout: QLayout | None) -> Iterator[QWidget]:
    """The widgets a layout places, its nested layouts' included."""
    if layout is None:
        return
    for i in range(layout.count()):
        item = layout.itemAt(i)
        if item is None:
            continue
        if item.widget() is not None:
            yield item.widget()
        elif item.layout() is not None:
            yield from laid_out(item.layout())


def _shown(widget: QWidget) -> bool:
    return widget.isVisible() and widget.width() > 0 and widget.height() > 0


def _plain(text: str) -> str:
    if "<" not in text:
        return text
    document = QTextDocument()
    document.setHtml(text)
    return document.toPlainText()


def text_problems(widget: QWidget) -> list[str]:
    """Text drawn in less room than it needs (cut off, not elided on purpose)."""
    name = name_of(widget)
    if widget.sizePolicy().horizontalPolicy() is QSizePolicy.Policy.Ignored:
        return []  # cut at the edge by design (a status line)
    if isinstance(widget, QLabel) and widget.text() and widget.pixmap().isNull():
        if widget.wordWrap():
            room = widget.contentsRect().width() - 2 * widget.margin() - 2 * widget.indent()
            longest = max(
                (widget.fontMetrics().horizontalAdvance(w) for w in _plain(widget.text()).split()),
                default=0,
            )
            problems = []
            if longest > room:
                problems.append(f"{name}: a word {longest} px wide in {room} px")
            need = widget.heightForWidth(widget.width())
            if widget.height() < need:
                problems.append(f"{name}: {widget.height()} px high for text {need} px high")
            return problems
        hint = widget.sizeHint()
        if widget.width() < hint.width() or widget.height() < hint.height():
            return [
                f"{name}: {widget.width()}×{widget.height()} for text {hint.width()}×"
                f"{hint.height()}"
            ]
        return []
    if isinstance(widget, QAbstractButton) and widget.text():
        hint = widget.sizeHint()
        if widget.width() < hint.width() or widget.height() < widget.minimumSizeHint().height():
            return [
                f"{name}: {widget.width()}×{widget.height()} for a button {hint.width()}×"
                f"{hint.height()}"
            ]
        return []
    if isinstance(widget, QComboBox | QGroupBox):
        need = widget.minimumSizeHint()
        if widget.width() < need.width() or widget.height() < need.height():
            return [
                f"{name}: {widget.width()}×{widget.height()}, at least {need.width()}×"
                f"{need.height()} needed"
            ]
    return []


def table_problems(table: QTableWidget) -> list[str]:
    """Cells and headings cut short: allowed only where the cell's tooltip has it whole."""
    name = name_of(table)
    header = table.horizontalHeader()
    problems = []
    shown = [c for c in range(table.columnCount()) if not table.isColumnHidden(c)]
    used = sum(header.sectionSize(c) for c in shown)
    if used > table.viewport().width():
        problems.append(f"{name}: columns {used} px wide in {table.viewport().width()} px")
    for c in shown:
        width = header.sectionSize(c)
        if header.sectionSizeHint(c) > width + 1:
            heading = table.horizontalHeaderItem(c)
            problems.append(f"{name}: heading {heading.text() if heading else c} is cut")
        for r in range(table.rowCount()):
            item = table.item(r, c)
            if item is None or not item.text():
                continue
            need = table.sizeHintForIndex(table.indexFromItem(item)).width()
            if need <= width:
                continue
            if not item.toolTip():
                problems.append(
                    f"{name}: cell ({r}, {c}) {item.text()!r} is cut ({width} of {need} px), "
                    "and has no tooltip"
                )
            elif width < min(need, MIN_ELIDED_WIDTH):
                problems.append(
                    f"{name}: cell ({r}, {c}) {item.text()!r} is cut to {width} of {need} px: "
                    "too little of it shows"
                )
    return problems


def _placement_problems(parent: QWidget, children: list[QWidget]) -> list[str]:
    problems = []
    inside = parent.rect()
    for child in children:
        if not inside.contains(child.geometry()):
            g = child.geometry()
            problems.append(
                f"{name_of(child)}: {g.width()}×{g.height()} at ({g.x()}, {g.y()}) is cut by "
                f"{name_of(parent)} ({inside.width()}×{inside.height()})"
            )
    for i, a in enumerate(children):
        for b in children[i + 1 :]:
            overlap: QRect = a.geometry().intersected(b.geometry())
            if not overlap.isEmpty():
                problems.append(f"{name_of(a)} and {name_of(b)} overlap ({overlap})")
    return problems


def layout_problems(root: QWidget) -> list[str]:
    """Every problem under ``root`` (a window or a screen) as it is laid out now: text that
    does not fit, a widget cut off by its parent or lying over a sibling, content wider than
    its scroll area (there is no horizontal scrollbar), a table cell cut short."""
    problems: list[str] = []
    todo = [root]
    while todo:
        widget = todo.pop()
        problems += text_problems(widget)
        if isinstance(widget, QTableWidget):
            problems += table_problems(widget)
        if isinstance(widget, QScrollArea) and widget.widget() is not None:
            content, viewport = widget.widget(), widget.viewport()
            if content.width() > viewport.width():
                problems.append(
                    f"{name_of(content)}: {content.width()} px wide in a scroll area "
                    f"{viewport.width()} px wide"
                )
            if _shown(content):
                todo.append(content)
            continue
        if isinstance(widget, QAbstractScrollArea | QAbstractItemView | QHeaderView):
            continue  # their insides are Qt's
        children = [c for c in laid_out(widget.layout()) if _shown(c)]
        problems += _placement_problems(widget, children)
        todo += children
    return problems


def blank(image: QImage, *, min_colours: int = 8) -> bool:
    """Whether a screenshot shows (next to) nothing: fewer than ``min_colours`` colours."""
    if image.isNull() or image.width() == 0 or image.height() == 0:
        return True
    rgb = image.convertToFormat(QImage.Format.Format_RGB32)
    pixels = np.frombuffer(rgb.constBits(), np.uint32, rgb.sizeInBytes() // 4)
    rows = pixels.reshape(rgb.height(), rgb.bytesPerLine() // 4)[:, : rgb.width()]
    return len(np.unique(rows)) < min_colours
