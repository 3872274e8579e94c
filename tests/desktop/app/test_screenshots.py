"""Every screen rendered by a real X server (Xvfb) at two window sizes, and saved.

This process renders offscreen (tests/conftest.py), and Qt picks its platform once per process:
the screens are rendered by ``x11_screens.py``, run here in a pytest of its own on an Xvfb
started for the test. The screenshots go to ``--screenshots DIR`` (default: this run's tmp
folder); ``pytest tests/desktop/app/test_screenshots.py --screenshots docs/screenshots``
refreshes the README's.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from PySide6.QtGui import QImage

from desktop.app.main_window import SCREENS
from tests.desktop.app.x11_screens import SIZES
from tests.desktop.layout_checks import blank

ROOT = Path(__file__).resolve().parents[3]
RENDERER = Path(__file__).with_name("x11_screens.py")
RUN_TIMEOUT_S = 240


def run_renderer(display: str, folder: Path) -> subprocess.CompletedProcess[str]:
    """``x11_screens.py`` in a pytest of its own on ``display``, saving into ``folder``."""
    env = {**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb"}
    env.pop("WAYLAND_DISPLAY", None)
    command = [sys.executable, "-m", "pytest", str(RENDERER), "-q", "-p", "no:cacheprovider"]
    # A short base folder: the screens show the paths of the files chosen in it.
    with tempfile.TemporaryDirectory(prefix="subtone-") as base:
        command += [f"--screenshots={folder}", f"--basetemp={base}"]
        return subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S
        )


def test_every_screen_renders_on_a_real_x_server(x_display, screenshots_dir):
    result = run_renderer(x_display, screenshots_dir)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " skipped" not in result.stdout, result.stdout[-2000:]
    for width, height in SIZES.values():
        for screen in SCREENS:
            path = screenshots_dir / f"{screen}-first-run-{width}x{height}.png"
            image = QImage(str(path))
            assert (image.width(), image.height()) == (width, height), path
            assert not blank(image), path
