"""The Subtone desktop app (PySide6) on the client core the CLI uses.

``main()`` is the ``subtone-desktop`` entry point (and ``python -m desktop``).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from desktop.app.platform_check import MISSING_LIBRARIES, check_platform_libraries

if TYPE_CHECKING:
    from PySide6.QtWidgets import QApplication

    from desktop.app.context import AppContext
    from desktop.app.dialogs import Dialogs

__all__ = ["ALREADY_RUNNING", "MISSING_LIBRARIES", "main", "run"]

ALREADY_RUNNING = 3
"""The exit status when another copy of the app already runs for this user."""


def main(argv: Sequence[str] | None = None) -> int:
    """Open the main window and run until it is closed; returns the exit status."""
    missing = check_platform_libraries(os.environ)
    if missing is not None:  # Qt would abort, naming the wrong library at best
        print(missing.message, file=sys.stderr)
        return MISSING_LIBRARIES

    from PySide6.QtWidgets import QApplication

    from desktop.app.context import AppContext
    from desktop.app.dialogs import Dialogs

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    app = QApplication.instance() or QApplication(list(argv if argv is not None else sys.argv))
    app.setApplicationName("Subtone")
    app.setOrganizationName("Subtone")
    assert isinstance(app, QApplication)
    return run(app, AppContext.default(), Dialogs())


def run(app: QApplication, ctx: AppContext, dialogs: Dialogs) -> int:
    """Run the app on ``ctx`` until it quits: one copy at a time (a second is told so and
    exits), and an orderly shutdown however the application quits."""
    from desktop.app.instance import InstanceLock
    from desktop.app.main_window import MainWindow

    lock = InstanceLock(ctx.data_dir)
    if not lock.acquire():
        holder = lock.holder
        dialogs.error(
            None,
            "Subtone is already running",
            "Subtone is already open"
            + (f" (process {holder})" if holder else "")
            + ". Use that window: two copies would continue the same uploads twice.",
        )
        return ALREADY_RUNNING
    try:
        window = MainWindow(ctx, dialogs=dialogs)
        app.aboutToQuit.connect(window.shutdown)
        try:
            window.show()
            return int(app.exec())
        finally:
            app.aboutToQuit.disconnect(window.shutdown)
            window.close()
    finally:
        lock.release()
