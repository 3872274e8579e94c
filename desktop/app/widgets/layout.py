"""Small building blocks every screen is composed of: a title, a numbered section, a row of
widgets, a wrapped label. They only arrange what they are given."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QBoxLayout,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLayout,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

__all__ = [
    "MAX_PAGE_WIDTH",
    "STRETCH",
    "FormSection",
    "Item",
    "Section",
    "action_button",
    "page",
    "row",
    "scrollable",
    "title",
    "wrapped_label",
]

MAX_PAGE_WIDTH = 980
"""A screen's content grows no wider than this in a large window (long lines are hard to read,
and fields that span a wide screen look empty)."""

STRETCH = None
"""In :func:`row` and :func:`page`: the free space goes here."""

Item = QWidget | QLayout | None


def _add(layout: QBoxLayout, items: tuple[Item | tuple[QWidget, int], ...]) -> None:
    for item in items:
        if item is None:
            layout.addStretch(1)
        elif isinstance(item, tuple):
            layout.addWidget(item[0], item[1])
        elif isinstance(item, QLayout):
            layout.addLayout(item)
        else:
            layout.addWidget(item)


def row(*items: Item | tuple[QWidget, int]) -> QHBoxLayout:
    """Widgets side by side; ``(widget, 1)`` takes the free width, ``STRETCH`` is a gap."""
    layout = QHBoxLayout()
    _add(layout, items)
    return layout


def page(widget: QWidget, *items: Item | tuple[QWidget, int], margins: bool = True) -> QVBoxLayout:
    """Lay ``items`` out top to bottom on ``widget``."""
    layout = QVBoxLayout(widget)
    if not margins:
        layout.setContentsMargins(0, 0, 0, 0)
    _add(layout, items)
    return layout


def title(text: str, parent: QWidget) -> QLabel:
    return QLabel(f"<h2>{text}</h2>", parent)


def wrapped_label(name: str, parent: QWidget, text: str = "") -> QLabel:
    label = QLabel(text, parent)
    label.setObjectName(name)
    label.setWordWrap(True)
    return label


class Section(QGroupBox):
    """A titled box holding widgets and rows, top to bottom."""

    def __init__(self, heading: str, *items: Item | tuple[QWidget, int], parent: QWidget) -> None:
        super().__init__(heading, parent)
        _add(QVBoxLayout(self), items)


def action_button(
    name: str, text: str, parent: QWidget, *, default: bool = False, shown: bool = True
) -> QPushButton:
    """A screen's button; ``default``: the main action (Enter), at least 140 px wide;
    ``shown=False``: hidden and disabled until there is something to do."""
    button = QPushButton(text, parent)
    button.setObjectName(name)
    if default:
        button.setDefault(True)
        button.setMinimumWidth(140)
    if not shown:
        button.setEnabled(False)
        button.setVisible(False)
    return button


class FormSection(QGroupBox):
    """A titled box of labelled rows: ``("Label:", widget or row)``; an empty label spans."""

    def __init__(self, heading: str, *rows: tuple[str, QWidget | QLayout], parent: QWidget) -> None:
        super().__init__(heading, parent)
        form = QFormLayout(self)
        for text, field in rows:
            if text:
                form.addRow(text, field)
            elif isinstance(field, QLayout):
                form.addRow(field)
            else:
                form.addRow(field)


def scrollable(widget: QWidget, *, max_width: int | None = MAX_PAGE_WIDTH) -> QScrollArea:
    """``widget`` in a frameless scroll area: a small window scrolls (down, never sideways)
    rather than squeezes; a large one leaves room on the right beyond ``max_width``."""
    area = QScrollArea(widget.parentWidget())
    area.setObjectName(f"{widget.objectName()}.scroll")
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setWidgetResizable(True)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    if max_width is not None:
        widget.setMaximumWidth(max_width)
        area.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
    area.setWidget(widget)
    return area
