"""Render the desktop app's icon (icons/subtone-desktop.svg) to the PNG sizes of the hicolor theme.

    .venv/bin/python packaging/desktop/make_icons.py            # rewrite icons/*.png
    .venv/bin/python packaging/desktop/make_icons.py OUT_DIR    # write them elsewhere (the tests)

Qt renders them (QtSvg of PySide6-Essentials), offscreen: no display is needed. The PNGs are
committed, so building the app needs no SVG support; run this again after changing the SVG.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Final

HERE: Final = Path(__file__).resolve().parent
ICONS_DIR: Final = HERE / "icons"
SVG: Final = ICONS_DIR / "subtone-desktop.svg"
SIZES: Final = (16, 24, 32, 48, 64, 128, 256)
"""Pixel sizes, each installed as hicolor/<N>x<N>/apps/subtone-desktop.png."""


def png_name(size: int) -> str:
    return f"subtone-desktop-{size}.png"


def render(out_dir: Path) -> list[Path]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    _app = QGuiApplication.instance() or QGuiApplication([])
    renderer = QSvgRenderer(str(SVG))
    if not renderer.isValid():
        raise SystemExit(f"{SVG} is not a valid SVG")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for size in SIZES:
        image = QImage(size, size, QImage.Format.Format_ARGB32)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter)
        painter.end()
        path = out_dir / png_name(size)
        if not image.save(str(path), "PNG"):
            raise SystemExit(f"could not write {path}")
        written.append(path)
    return written


if __name__ == "__main__":
    for written_path in render(Path(sys.argv[1]) if len(sys.argv) > 1 else ICONS_DIR):
        print(written_path)
