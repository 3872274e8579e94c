"""A light and a dark theme, following the system's colour scheme (Qt 6.5+ ``QStyleHints``).

A theme is a palette (Fusion draws every widget from it) and one application style sheet that
gives meaning to two widget properties: ``tone`` (a label's text colour: ``ok``, ``error``,
``warning``, ``muted``) and ``box`` (a message in a coloured box: ``ok``, ``error``). Widgets
say what a text *is* (:func:`set_tone`), never which colour it has; a colour that is painted
rather than styled (a table cell's) comes from :func:`tone_colour` on the widget's palette, so
it follows a theme change as the palette does.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QWidget

__all__ = [
    "DARK",
    "LIGHT",
    "NAV_FONT_PX",
    "NAV_PADDING_PX",
    "Theme",
    "ThemeFollower",
    "Tone",
    "is_dark",
    "set_box",
    "set_tone",
    "theme_for",
    "tone_colour",
]

NAV_FONT_PX: Final = 14
NAV_PADDING_PX: Final = 18
STYLE: Final = "Fusion"
"""The style both themes are drawn with: the same look, and the palette it is given, on every
platform."""


class Tone(StrEnum):
    OK = "ok"
    ERROR = "error"
    WARNING = "warning"
    MUTED = "muted"


@dataclass(frozen=True)
class Box:
    text: str
    background: str
    border: str


@dataclass(frozen=True)
class Theme:
    name: str
    window: str
    base: str
    alternate_base: str
    text: str
    button: str
    disabled_text: str
    placeholder: str
    highlight: str
    link: str
    tooltip_base: str
    tones: dict[Tone, str]
    boxes: dict[str, Box]
    nav_background: str
    nav_text: str
    nav_selected: str

    @property
    def dark(self) -> bool:
        return self.name == "dark"

    def palette(self) -> QPalette:
        palette = QPalette()
        window, base, text = QColor(self.window), QColor(self.base), QColor(self.text)
        button = QColor(self.button)
        roles = {
            QPalette.ColorRole.Window: window,
            QPalette.ColorRole.WindowText: text,
            QPalette.ColorRole.Base: base,
            QPalette.ColorRole.AlternateBase: QColor(self.alternate_base),
            QPalette.ColorRole.Text: text,
            QPalette.ColorRole.Button: button,
            QPalette.ColorRole.ButtonText: text,
            QPalette.ColorRole.BrightText: QColor("#ffffff"),
            QPalette.ColorRole.Highlight: QColor(self.highlight),
            QPalette.ColorRole.HighlightedText: QColor("#ffffff"),
            QPalette.ColorRole.Link: QColor(self.link),
            QPalette.ColorRole.LinkVisited: QColor(self.link),
            QPalette.ColorRole.ToolTipBase: QColor(self.tooltip_base),
            QPalette.ColorRole.ToolTipText: text,
            QPalette.ColorRole.PlaceholderText: QColor(self.placeholder),
            QPalette.ColorRole.Light: button.lighter(150),
            QPalette.ColorRole.Midlight: button.lighter(125),
            QPalette.ColorRole.Mid: button.darker(130),
            QPalette.ColorRole.Dark: button.darker(160),
            QPalette.ColorRole.Shadow: QColor("#000000"),
        }
        for role, colour in roles.items():
            palette.setColor(role, colour)
        disabled = QColor(self.disabled_text)
        for role in (
            QPalette.ColorRole.WindowText,
            QPalette.ColorRole.Text,
            QPalette.ColorRole.ButtonText,
        ):
            palette.setColor(QPalette.ColorGroup.Disabled, role, disabled)
        palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Base, window)
        palette.setColor(
            QPalette.ColorGroup.Disabled, QPalette.ColorRole.Highlight, button.darker(120)
        )
        return palette

    def stylesheet(self) -> str:
        rules = [
            f"QWidget#main\\.sidebar {{ background: {self.nav_background}; }}",
            f"QPushButton#main\\.about {{ border: none; background: transparent;"
            f" color: {self.nav_text}; text-align: left; padding: 10px {NAV_PADDING_PX}px;"
            f" font-size: {NAV_FONT_PX}px; }}",
            "QPushButton#main\\.about:hover { text-decoration: underline; }",
            f"QListWidget#main\\.nav {{ border: none; background: {self.nav_background};"
            f" color: {self.nav_text}; font-size: {NAV_FONT_PX}px; padding-top: 12px;"
            " outline: 0; }",
            f"QListWidget#main\\.nav::item {{ padding: 10px {NAV_PADDING_PX}px; }}",
            f"QListWidget#main\\.nav::item:selected {{ background: {self.nav_selected};"
            " color: white; }",
        ]
        rules += [f'QLabel[tone="{t}"] {{ color: {c}; }}' for t, c in self.tones.items()]
        rules += [
            f'QLabel[box="{kind}"] {{ color: {b.text}; background: {b.background};'
            f" border: 1px solid {b.border}; border-radius: 4px; padding: 6px 8px; }}"
            for kind, b in self.boxes.items()
        ]
        return "\n".join(rules)


LIGHT: Final = Theme(
    name="light",
    window="#efefef",
    base="#ffffff",
    alternate_base="#f5f6f7",
    text="#1d2025",
    button="#e8e9eb",
    disabled_text="#a0a4a8",
    placeholder="#80868c",
    highlight="#3b6ea5",
    link="#2f6db5",
    tooltip_base="#ffffdc",
    tones={
        Tone.OK: "#2e7d4f",
        Tone.ERROR: "#c0392b",
        Tone.WARNING: "#a4660b",
        Tone.MUTED: "#6f7a7b",
    },
    boxes={
        "ok": Box("#1e5e3a", "#e8f5ec", "#b5dcc2"),
        "error": Box("#8e2b22", "#fdecea", "#f1b9b2"),
    },
    nav_background="#23272e",
    nav_text="#d8dde3",
    nav_selected="#3b6ea5",
)
DARK: Final = Theme(
    name="dark",
    window="#2b2e33",
    base="#1f2226",
    alternate_base="#272a2f",
    text="#e4e6e9",
    button="#3a3e45",
    disabled_text="#6d737b",
    placeholder="#8a9099",
    highlight="#4677b3",
    link="#7fb2f0",
    tooltip_base="#3a3f47",
    tones={
        Tone.OK: "#62c98f",
        Tone.ERROR: "#ff8a7e",
        Tone.WARNING: "#f0b35a",
        Tone.MUTED: "#9aa3ab",
    },
    boxes={
        "ok": Box("#b4ebc8", "#1e3a2a", "#2f5f43"),
        "error": Box("#ffc2bb", "#45221f", "#7a3a33"),
    },
    nav_background="#181a1e",
    nav_text="#c9ced6",
    nav_selected="#3b6ea5",
)


def theme_for(scheme: Qt.ColorScheme) -> Theme:
    """The dark theme for a dark system, the light one otherwise (also where it is unknown)."""
    return DARK if scheme is Qt.ColorScheme.Dark else LIGHT


def is_dark(palette: QPalette) -> bool:
    return palette.color(QPalette.ColorRole.Window).lightness() < 128


def tone_colour(tone: Tone, palette: QPalette) -> QColor:
    """``tone``'s colour in the theme ``palette`` belongs to."""
    return QColor((DARK if is_dark(palette) else LIGHT).tones[tone])


def _repolish(widget: QWidget) -> None:
    style = widget.style()
    style.unpolish(widget)
    style.polish(widget)
    widget.update()


def set_tone(widget: QWidget, tone: Tone | None) -> None:
    """Colour ``widget``'s text as ``tone`` (``None``: the theme's plain text)."""
    value = tone.value if tone is not None else ""
    if widget.property("tone") != value:
        widget.setProperty("tone", value)
        _repolish(widget)


def set_box(widget: QWidget, kind: str) -> None:
    """Show ``widget`` (a label) as an ``ok`` or ``error`` message box; ``""``: plain."""
    if widget.property("box") != kind:
        widget.setProperty("box", kind)
        _repolish(widget)


class ThemeFollower(QObject):
    """Gives the application the theme of the system's colour scheme, now and whenever it
    changes; ``changed(Theme)`` tells what paints its own colours."""

    changed = Signal(object)

    def __init__(self, app: QApplication | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        instance = app if app is not None else QApplication.instance()
        assert isinstance(instance, QApplication), "a QApplication is needed"
        self._app = instance
        self.theme: Theme | None = None
        if self._app.style().name().lower() != STYLE.lower():
            self._app.setStyle(STYLE)
        hints = QGuiApplication.styleHints()
        hints.colorSchemeChanged.connect(self.follow)
        self.follow(hints.colorScheme())

    def follow(self, scheme: Qt.ColorScheme) -> None:
        theme = theme_for(scheme)
        if theme is self.theme:
            return
        self.theme = theme
        self._app.setPalette(theme.palette())
        self._app.setStyleSheet(theme.stylesheet())
        self.changed.emit(theme)
