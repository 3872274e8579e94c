"""Actions on a selected item, offered three ways from one set of :class:`QAction`: a row of
buttons that shows only what can be done now, a context menu, and a default action (the
first enabled one, for a double-click or Enter)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QPoint
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QHBoxLayout, QMenu, QPushButton, QWidget

__all__ = ["ActionBar"]


class ActionBar(QWidget):
    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(name)
        self._name = name
        self.actions_by_key: dict[str, QAction] = {}
        self.buttons: dict[str, QPushButton] = {}
        self._row = QHBoxLayout(self)
        self._row.setContentsMargins(0, 0, 0, 0)
        self._row.addStretch(1)

    def add(
        self,
        key: str,
        text: str,
        slot: Callable[[], None],
        *,
        tip: str = "",
        menu_only: bool = False,
    ) -> QAction:
        """An action, and its button named ``<bar's prefix>.<key>`` (none when
        ``menu_only``: the row's context menu offers it)."""
        action = QAction(text, self)
        action.setObjectName(f"{self._name.rsplit('.', 1)[0]}.{key}.action")
        action.setToolTip(tip or text)
        action.triggered.connect(lambda _checked=False: slot())
        self.actions_by_key[key] = action
        if menu_only:
            return action
        button = QPushButton(text, self)
        button.setObjectName(f"{self._name.rsplit('.', 1)[0]}.{key}")
        button.setToolTip(tip)
        button.clicked.connect(action.trigger)
        action.changed.connect(lambda: self._follow(action, button))
        self._row.insertWidget(self._row.count() - 1, button)
        self.buttons[key] = button
        self._follow(action, button)
        return action

    @staticmethod
    def _follow(action: QAction, button: QPushButton) -> None:
        button.setText(action.text())
        button.setEnabled(action.isEnabled())
        button.setVisible(action.isEnabled() and action.isVisible())

    def set_enabled(self, key: str, enabled: bool, text: str | None = None) -> None:
        action = self.actions_by_key[key]
        action.setEnabled(enabled)
        if text is not None:
            action.setText(text)

    def menu(self, parent: QWidget) -> QMenu:
        """The enabled actions as a context menu."""
        menu = QMenu(parent)
        for action in self.actions_by_key.values():
            if action.isEnabled() and action.isVisible():
                menu.addAction(action)
        return menu

    def popup(self, parent: QWidget, at: QPoint) -> QMenu | None:
        menu = self.menu(parent)
        if menu.isEmpty():
            return None
        menu.popup(at)
        return menu

    def trigger_default(self, order: tuple[str, ...]) -> str | None:
        """Run the first enabled action among ``order``; which one ran."""
        for key in order:
            action = self.actions_by_key[key]
            if action.isEnabled():
                action.trigger()
                return key
        return None
