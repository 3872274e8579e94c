"""Driving the desktop app's window on the real stack, shared by the end-to-end app tests:
a context on the stack, finding and clicking the window's named widgets (pytest-qt), an
encode and a decode through the window. The ``dialogs`` and ``open_window`` fixtures are in
``conftest.py``."""

from __future__ import annotations

import json
import os
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QLineEdit, QPushButton

from desktop.app.context import AppContext
from desktop.audio.fake import FakeBackend
from desktop.core.orchestration import TaskStatus
from desktop.core.retry import Backoff
from subtone.stego import wav

__all__ = [
    "JOB_MS",
    "PASSPHRASE",
    "MiB",
    "child",
    "click",
    "decode_through_the_window",
    "fill_encode",
    "finished",
    "label",
    "make_cover",
    "make_secret",
    "stack_context",
    "type_into",
]

PASSPHRASE = "orbit velvet tundra pickle saddle"
JOB_MS = 240_000
"""An encode or decode on CPU Triton, on a machine shared with other work."""
MiB = 1024 * 1024


def stack_context(root: Path, stack, *, real_audio: bool = False, **config) -> AppContext:
    """An AppContext on the real stack: real HTTP everywhere; a fake sound card, or with
    ``real_audio`` PortAudio through sounddevice (the app's own backend)."""
    part_transport = config.pop("part_transport", None)
    config_path = root / "config" / "client.json"
    config_path.parent.mkdir(parents=True)
    body = {"server_url": stack.url, "token": stack.token, "download_dir": str(root)} | config
    config_path.write_text(json.dumps(body))
    return AppContext(
        data_dir=root / "data",
        state_dir=root / "state",
        config_path=config_path,
        environ={},
        keyring=None,
        part_transport=part_transport,
        audio=None if real_audio else FakeBackend(),
        poll=Backoff(max_attempts=1, base_seconds=0.2, max_seconds=1.0),
        check_interval_ms=60_000,
        offline_check_interval_ms=200,
        requeue_delay_ms=200,
    )


def child(window, cls, name):
    widget = window.findChild(cls, name)
    assert widget is not None, f"no {cls.__name__} named {name}"
    return widget


def click(qtbot, window, name: str) -> None:
    button = child(window, QPushButton, name)
    assert button.isVisible() and button.isEnabled(), f"{name} cannot be clicked"
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def type_into(qtbot, window, name: str, text: str) -> None:
    edit = child(window, QLineEdit, name)
    edit.clear()
    qtbot.keyClicks(edit, text)


def label(window, name: str) -> str:
    return child(window, QLabel, name).text()


def fill_encode(qtbot, window, dialogs, cover: Path, secret: Path) -> None:
    window.show_screen("encode")
    dialogs.open_answers.append(cover)
    click(qtbot, window, "encode.cover.browse")
    dialogs.open_answers.append(secret)
    click(qtbot, window, "encode.secret.browse")
    type_into(qtbot, window, "encode.passphrase.first", PASSPHRASE)
    type_into(qtbot, window, "encode.passphrase.confirm", PASSPHRASE)
    qtbot.waitUntil(child(window, QPushButton, "encode.start").isEnabled, timeout=60_000)


def finished(view) -> bool:
    task = view.follower.task
    return task is not None and task.status.finished


def decode_through_the_window(qtbot, window, dialogs, stego: Path) -> Path:
    """Decode ``stego`` on the Decode screen; returns the recovered file."""
    window.show_screen("decode")
    dialogs.open_answers.append(stego)
    click(qtbot, window, "decode.stego.browse")
    type_into(qtbot, window, "decode.passphrase.first", PASSPHRASE)
    click(qtbot, window, "decode.start")
    view = window.decode_view
    qtbot.waitUntil(lambda: finished(view) or bool(label(window, "decode.error")), timeout=JOB_MS)
    task = view.follower.task
    assert task is not None and task.status is TaskStatus.SUCCEEDED, label(window, "decode.error")
    assert task.output is not None
    return task.output


def make_cover(path: Path, seconds: float) -> Path:
    wav.generate_cover(path, seconds, rate=44_100, channels=2, bits=16, seed=5)
    return path


def make_secret(path: Path, size: int = 30_000) -> Path:
    path.write_bytes(os.urandom(size))
    return path
