"""The Subtone desktop app (PySide6) on the client core the CLI uses.

``main()`` is the ``subtone-desktop`` entry point (and ``python -m desktop``).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Open the main window and run until it is closed; returns the exit status."""
    from PySide6.QtWidgets import QApplication

    from desktop.app.context import AppContext
    from desktop.app.main_window import MainWindow

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    app = QApplication.instance() or QApplication(list(argv if argv is not None else sys.argv))
    app.setApplicationName("Subtone")
    app.setOrganizationName("Subtone")
    window = MainWindow(AppContext.default())
    window.show()
    return int(app.exec())
