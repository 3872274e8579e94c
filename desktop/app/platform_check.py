"""Before Qt starts on Linux: are the system libraries of Qt's X11 (xcb) platform plugin there?

Without one of them Qt aborts with "Could not load the Qt platform plugin "xcb"" and, at best,
names one library (often not the one missing). This check loads each library the plugin
links against, as the dynamic loader would, and names the Debian/Ubuntu packages to install.
It imports nothing from Qt, so it runs before ``QApplication`` exists.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

__all__ = [
    "MISSING_LIBRARIES",
    "XCB_LIBRARIES",
    "MissingLibraries",
    "check_platform_libraries",
    "uses_xcb",
]

MISSING_LIBRARIES: Final = 4
"""The exit status when the app cannot start for want of system libraries."""

XCB_LIBRARIES: Final = {
    # soname: the Debian/Ubuntu package that has it (what libqxcb.so and libQt6XcbQpa.so.6
    # link against, besides Qt's own libraries)
    "libxcb.so.1": "libxcb1",
    "libX11.so.6": "libx11-6",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libGL.so.1": "libgl1",
    "libEGL.so.1": "libegl1",
    "libfontconfig.so.1": "libfontconfig1",
    "libdbus-1.so.3": "libdbus-1-3",
}


@dataclass(frozen=True)
class MissingLibraries:
    libraries: tuple[str, ...]
    packages: tuple[str, ...]

    @property
    def message(self) -> str:
        return (
            "Subtone cannot open its window: the X11 display support of Qt needs system "
            f"libraries that are not installed: {', '.join(self.libraries)}.\n"
            "On Debian or Ubuntu, install them with:\n"
            f"    sudo apt-get install {' '.join(self.packages)}\n"
            "(or run scripts/setup.sh, which installs them), then start Subtone again."
        )


def _load(soname: str) -> None:
    ctypes.CDLL(soname)


def uses_xcb(environ: Mapping[str, str], platform: str = sys.platform) -> bool:
    """Whether Qt will use its xcb plugin here: on Linux, asked for, or the default where no
    Wayland session is there to take it."""
    if not platform.startswith("linux"):
        return False
    asked = environ.get("QT_QPA_PLATFORM", "").strip()
    if asked:
        return asked.split(";")[0].split(":")[0] == "xcb"
    return not environ.get("WAYLAND_DISPLAY")


def check_platform_libraries(
    environ: Mapping[str, str],
    *,
    platform: str = sys.platform,
    load: Callable[[str], None] | None = None,
) -> MissingLibraries | None:
    """The libraries of the xcb plugin that cannot be loaded, or ``None`` (all there, or
    another platform plugin will be used)."""
    if not uses_xcb(environ, platform):
        return None
    load = load or _load
    missing: list[str] = []
    for soname in XCB_LIBRARIES:
        try:
            load(soname)
        except OSError:
            missing.append(soname)
    if not missing:
        return None
    packages = tuple(dict.fromkeys(XCB_LIBRARIES[s] for s in missing))
    return MissingLibraries(tuple(missing), packages)
