"""The bundle's start-up check (``SUBTONE_DESKTOP_SMOKE=DIR subtone-desktop``).

It proves what a frozen app most often lacks: each native library the app needs loads from the
bundle and works (PortAudio through sounddevice, libsndfile through soundfile, OpenSSL through
cryptography), the keyring backends and httpx's CA bundle are there, and the app's main window
comes up. Once the window is up (and the audio devices listed), it records every shared object
the process has mapped (``/proc/self/maps``), so that the test can tell the bundle's libraries
from the machine's. It writes ``DIR/smoke.json`` and a screenshot ``DIR/window.png``, then quits
the app (exit status 0), or exits with :data:`NO_WINDOW_STATUS` when no main window was shown in
time.
"""

from __future__ import annotations

import io
import json
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

SHOW_DELAY_MS: Final = 1500
"""How long the window has been up (and the app's start-up work run) before it is checked."""
WAIT_MS: Final = 20_000
"""How long to wait for the main window before giving up."""
POLL_MS: Final = 250
NO_WINDOW_STATUS: Final = 3
SAMPLE_RATE: Final = 48_000


def _mapped_files() -> list[str]:
    """The files mapped into this process (``/proc/self/maps``), in the order they appear."""
    paths = []
    for line in Path("/proc/self/maps").read_text().splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and fields[5].startswith("/"):
            paths.append(fields[5])
    return paths


def loaded_libraries(*names: str) -> dict[str, str]:
    """The file of each shared library named ``names`` (a prefix) mapped into this process."""
    found: dict[str, str] = {}
    for path in _mapped_files():
        for name in names:
            if Path(path).name.startswith(name):
                found.setdefault(name, path)
    return found


def shared_objects() -> list[str]:
    """Every shared object mapped into this process, each once, as the path it was loaded
    from (``.so`` in its name: ``libicuuc.so.73``, ``libasound_module_pcm_pulse.so``, Python's
    extension modules)."""
    return sorted({p for p in _mapped_files() if ".so" in Path(p).name})


def check_sounddevice() -> dict[str, Any]:
    import sounddevice

    return {
        "portaudio": sounddevice.get_portaudio_version()[1],
        "devices": len(sounddevice.query_devices()),
        "library": loaded_libraries("libportaudio").get("libportaudio"),
    }


def check_soundfile() -> dict[str, Any]:
    import numpy as np
    import soundfile

    tone = np.sin(np.arange(SAMPLE_RATE // 10) * 2 * np.pi * 440 / SAMPLE_RATE).astype(np.float32)
    formats = {}
    for fmt, subtype in (("WAV", "PCM_16"), ("FLAC", "PCM_24"), ("OGG", "OPUS")):
        buffer = io.BytesIO()
        soundfile.write(buffer, tone, SAMPLE_RATE, format=fmt, subtype=subtype)
        buffer.seek(0)
        data, rate = soundfile.read(buffer)
        formats[f"{fmt}/{subtype}"] = rate == SAMPLE_RATE and len(data) > 0
    return {
        "libsndfile": soundfile.__libsndfile_version__,
        "formats": formats,
        "library": loaded_libraries("libsndfile").get("libsndfile"),
    }


def check_cryptography() -> dict[str, Any]:
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    key = Scrypt(salt=b"subtone-smoke", length=32, n=2**10, r=8, p=1).derive(b"passphrase")
    sealed = ChaCha20Poly1305(key).encrypt(b"\0" * 12, b"secret", None)
    return {"roundtrip": ChaCha20Poly1305(key).decrypt(b"\0" * 12, sealed, None) == b"secret"}


def check_keyring() -> dict[str, Any]:
    import keyring
    import keyring.backend

    return {
        "backend": type(keyring.get_keyring()).__module__,
        "backends": sorted(type(b).__module__ for b in keyring.backend.get_all_keyring()),
        "secretservice": _imports("keyring.backends.SecretService", "secretstorage", "jeepney"),
    }


def check_httpx() -> dict[str, Any]:
    import certifi
    import httpx

    httpx.create_ssl_context()
    return {"version": httpx.__version__, "ca_bundle": Path(certifi.where()).is_file()}


def check_platformdirs() -> dict[str, Any]:
    import platformdirs

    return {"data_dir": platformdirs.user_data_dir("subtone")}


CHECKS: Final[dict[str, Callable[[], dict[str, Any]]]] = {
    "sounddevice": check_sounddevice,
    "soundfile": check_soundfile,
    "cryptography": check_cryptography,
    "keyring": check_keyring,
    "httpx": check_httpx,
    "platformdirs": check_platformdirs,
}


def run_checks() -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name, check in CHECKS.items():
        try:
            results[name] = {"ok": True, **check()}
        except Exception:
            results[name] = {"ok": False, "error": traceback.format_exc()}
    return results


def arm(out_dir: Path) -> None:
    """Run the library checks now, then check the main window once the app's loop runs."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMainWindow

    out_dir.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "frozen": bool(getattr(sys, "frozen", False)),
        "bundle": getattr(sys, "_MEIPASS", None),
        "libraries": run_checks(),
        # Issue 10's contract: the desktop app carries no server code.
        "server_module": _found("server"),
        "window": None,
        "shared_objects": None,
    }
    waited = 0

    def shown() -> QMainWindow | None:
        for widget in QApplication.topLevelWidgets():
            if isinstance(widget, QMainWindow) and widget.isVisible():
                return widget
        return None

    def check() -> None:
        nonlocal waited
        window = shown()
        if window is None and waited < WAIT_MS:
            waited += POLL_MS
            QTimer.singleShot(POLL_MS, check)
            return
        status = NO_WINDOW_STATUS
        if window is not None:
            screenshot = out_dir / "window.png"
            report["window"] = {
                "title": window.windowTitle(),
                "visible": window.isVisible(),
                "width": window.width(),
                "height": window.height(),
                "screenshot": window.grab().save(str(screenshot)) and screenshot.name,
            }
            status = 0
            report["shared_objects"] = shared_objects()
            window.close()  # as a person would: the app's own shutdown runs
        (out_dir / "smoke.json").write_text(json.dumps(report, indent=2))
        print(f"subtone-desktop smoke: {json.dumps(report['window'])}", flush=True)
        QApplication.exit(status)

    QTimer.singleShot(SHOW_DELAY_MS, check)


def _found(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _imports(*modules: str) -> bool:
    import importlib

    for module in modules:
        importlib.import_module(module)
    return True
