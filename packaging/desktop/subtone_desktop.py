"""The frozen entry point of ``subtone-desktop`` (the PyInstaller bundle): ``desktop.app.main``.

Before the app starts it gives the application its icon (the bundled PNGs) and its desktop file
name (``subtone-desktop``: the Wayland app id, matching ``subtone-desktop.desktop``); the app then
reuses this QApplication.

``SUBTONE_DESKTOP_SMOKE=DIR``: a start-up check for CI and for packagers (``desktop_smoke.py``):
the app starts as usual, and once its main window is shown the check writes ``DIR/smoke.json``
(the window, the native libraries the bundle loaded) and ``DIR/window.png``, then quits.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Final

SMOKE_ENV: Final = "SUBTONE_DESKTOP_SMOKE"
DESKTOP_FILE_NAME: Final = "subtone-desktop"
ICON_SIZES: Final = (16, 24, 32, 48, 64, 128, 256)


def resources() -> Path:
    """Where the bundle keeps its data (PyInstaller's ``_internal``), or this folder unfrozen."""
    return Path(getattr(sys, "_MEIPASS", Path(__file__).resolve().parent))


def main() -> int:
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    import desktop.app

    app = QApplication.instance() or QApplication(sys.argv)
    app.setDesktopFileName(DESKTOP_FILE_NAME)
    icon = QIcon()
    for size in ICON_SIZES:
        icon.addFile(str(resources() / "icons" / f"subtone-desktop-{size}.png"))
    app.setWindowIcon(icon)
    smoke_dir = os.environ.get(SMOKE_ENV)
    if smoke_dir:
        import desktop_smoke

        desktop_smoke.arm(Path(smoke_dir))
    return desktop.app.main()


if __name__ == "__main__":
    sys.exit(main())
