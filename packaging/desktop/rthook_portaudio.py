"""PyInstaller runtime hook: sounddevice loads the bundle's PortAudio.

sounddevice asks ``ctypes.util.find_library("portaudio")``, which on Linux consults ldconfig and
never the bundle: on a machine without libportaudio2 the app would find no PortAudio. Answer
with the bundled copy when there is one.
"""

import ctypes.util
import sys
from pathlib import Path

_BUNDLED = Path(getattr(sys, "_MEIPASS", "")) / "libportaudio.so.2"

if getattr(sys, "frozen", False) and _BUNDLED.is_file():
    _system_find_library = ctypes.util.find_library

    def _find_library(name: str) -> str | None:
        return str(_BUNDLED) if name == "portaudio" else _system_find_library(name)

    ctypes.util.find_library = _find_library
