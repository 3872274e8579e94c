"""The screenshot test's checks catch what they are for: each defect made on purpose here is
reported, and a sound layout is not."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from tests.desktop.layout_checks import blank, layout_problems

LONG = "A button whose text is far too long for the room it is given"


def shown(qtbot, widget: QWidget, width: int, height: int) -> QWidget:
    qtbot.addWidget(widget)
    widget.resize(width, height)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def test_a_sound_layout_has_no_problems(qtbot):
    page = QWidget()
    layout = QVBoxLayout(page)
    layout.addWidget(QLabel("Short text"))
    layout.addWidget(QPushButton("OK"))
    shown(qtbot, page, 300, 120)
    assert layout_problems(page) == []


def test_text_cut_by_a_narrow_window_is_reported(qtbot):
    page = QWidget()
    page.setFixedWidth(120)  # narrower than the button's text
    button = QPushButton(LONG)
    button.setObjectName("too.long")
    QHBoxLayout(page).addWidget(button)
    shown(qtbot, page, 120, 60)
    problems = layout_problems(page)
    assert any(p.startswith("too.long:") for p in problems), problems


def test_widgets_laid_over_each_other_are_reported(qtbot):
    page = QWidget()
    grid = QGridLayout(page)
    first, second = QLabel("One"), QLabel("Two")
    first.setObjectName("first")
    second.setObjectName("second")
    grid.addWidget(first, 0, 0)
    grid.addWidget(second, 0, 0)  # the same cell
    shown(qtbot, page, 200, 80)
    assert "first and second overlap" in " ".join(layout_problems(page))


def test_a_wrapped_label_squeezed_below_its_height_is_reported(qtbot):
    page = QWidget()
    label = QLabel(" ".join(["words"] * 60))
    label.setObjectName("squeezed")
    label.setWordWrap(True)
    label.setFixedHeight(20)
    QVBoxLayout(page).addWidget(label)
    shown(qtbot, page, 200, 100)
    assert any(p.startswith("squeezed:") for p in layout_problems(page))


def test_content_wider_than_its_scroll_area_is_reported(qtbot):
    content = QWidget()
    content.setObjectName("wide")
    content.setMinimumWidth(600)
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    area.setWidget(content)
    shown(qtbot, area, 300, 200)
    assert any("wide: 600 px wide in a scroll area" in p for p in layout_problems(area))


def test_a_table_cell_cut_short_is_reported_unless_its_tooltip_has_it(qtbot):
    table = QTableWidget(2, 1)
    table.setObjectName("table")
    table.setHorizontalHeaderLabels(["Name"])
    table.setItem(0, 0, QTableWidgetItem("a-rather-long-file-name-that-cannot-fit.wav"))
    with_tip = QTableWidgetItem("another-rather-long-file-name-that-cannot-fit.wav")
    with_tip.setToolTip("/home/someone/another-rather-long-file-name-that-cannot-fit.wav")
    table.setItem(1, 0, with_tip)
    table.horizontalHeader().resizeSection(0, 160)
    shown(qtbot, table, 300, 150)
    problems = layout_problems(table)
    assert len(problems) == 1 and "cell (0, 0)" in problems[0], problems
    table.horizontalHeader().resizeSection(0, 50)  # too little shows even with a tooltip
    assert "too little of it shows" in " ".join(layout_problems(table))


def test_a_picture_of_one_colour_is_blank(qtbot):
    image = QImage(200, 100, QImage.Format.Format_RGB32)
    image.fill(QColor("#efefef"))
    assert blank(image)
    label = shown(qtbot, QLabel("Some text to draw"), 200, 40)
    assert not blank(label.grab().toImage())
