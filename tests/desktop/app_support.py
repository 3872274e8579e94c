"""Helpers for the desktop app's tests: a fake server that can go offline, scripted dialogs,
an in-memory keyring, and an AppContext wired to all of them."""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path

import httpx
import numpy as np
import soundfile as sf

from desktop.app.context import AppContext
from desktop.audio.fake import FakeBackend
from desktop.core.envelope import KdfParams
from desktop.core.retry import Backoff
from desktop.core.uploader import PartBody, PartRejected
from subtone.protocol import PROTOCOL_VERSION
from subtone.stego.plane import plane_bytes
from subtone.version import __version__
from tests.desktop.fake_server import API, TOKEN, FakePartTransport, FakeServer

CHEAP = KdfParams(log2_n=4, r=1, p=1)
NO_WAIT = Backoff(max_attempts=2, base_seconds=0.0, max_seconds=0.0)
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


class Switchboard:
    """Puts a FakeServer behind a switch: ``offline = True`` and every request fails to connect,
    as if the server were stopped. Also answers ``/readyz``."""

    def __init__(self, server: FakeServer) -> None:
        self.server = server
        self.offline = False
        self.ready = True
        self.readyz_calls = 0
        self.version: dict[str, object] | None = {
            "server": __version__,
            "protocol": PROTOCOL_VERSION,
        }
        """What ``/version`` answers; ``None``: 404, as a server older than it does."""
        self.lock = threading.Lock()

    def handle(self, request: httpx.Request) -> httpx.Response:
        if self.offline:
            raise httpx.ConnectError("Connection refused", request=request)
        if request.url.path == "/readyz":
            with self.lock:
                self.readyz_calls += 1
            checks = {"redis": "ok", "storage": "ok" if self.ready else "down"}
            return httpx.Response(
                200 if self.ready else 503, json={"ready": self.ready, "checks": checks}
            )
        if request.url.path == "/version":
            if self.version is None:
                return httpx.Response(
                    404, json={"error": {"code": "not_found", "message": "Not Found"}}
                )
            return httpx.Response(200, json=self.version)
        if request.url.path == "/openapi.json":
            return httpx.Response(
                200,
                json={
                    "openapi": "3.1.0",
                    "info": {"title": "Subtone", "version": str(PROTOCOL_VERSION)},
                },
            )
        return self.server.handle(request)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)


class SwitchedParts(FakePartTransport):
    """Part PUTs that fail (retryably) while the switchboard is offline."""

    def __init__(self, board: Switchboard) -> None:
        super().__init__(board.server)
        self.board = board
        self.stored: list[tuple[str, int]] = []
        """(upload id, part number) of every part storage accepted."""

    def put(self, url: str, body: PartBody) -> str:
        if self.board.offline:
            raise PartRejected("The part did not reach storage: connection refused.")
        etag = super().put(url, body)
        _, upload_id, number = httpx.URL(url).path.strip("/").split("/")
        with self.lock:
            self.stored.append((upload_id, int(number)))
        return etag


class MemoryKeyring:
    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service_name: str, username: str) -> str | None:
        return self.entries.get((service_name, username))

    def set_password(self, service_name: str, username: str, password: str) -> None:
        self.entries[(service_name, username)] = password

    def delete_password(self, service_name: str, username: str) -> None:
        self.entries.pop((service_name, username), None)


class ScriptedDialogs:
    """Dialog answers given in advance; every question asked is recorded."""

    def __init__(self) -> None:
        self.open_answers: list[Path | None] = []
        self.save_answers: list[Path | None] = []
        self.folder_answers: list[Path | None] = []
        self.passphrase_answers: list[str | None] = []
        self.asked: list[tuple[str, str]] = []
        self.errors: list[str] = []

    def open_file(self, parent, title, start, filters):
        self.asked.append(("open", title))
        return self.open_answers.pop(0) if self.open_answers else None

    def save_file(self, parent, title, suggested, filters):
        self.asked.append(("save", title))
        self.suggested = suggested
        return self.save_answers.pop(0) if self.save_answers else None

    def choose_folder(self, parent, title, start):
        self.asked.append(("folder", title))
        return self.folder_answers.pop(0) if self.folder_answers else None

    def error(self, parent, title, text):
        self.asked.append(("error", title))
        self.errors.append(text)

    def ask_passphrase(self, parent, title, prompt):
        self.asked.append(("passphrase", title))
        return self.passphrase_answers.pop(0) if self.passphrase_answers else None


def write_config(path: Path, **values: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"server_url": API, "token": TOKEN, "parallel_parts": 2} | values
    path.write_text(json.dumps({k: v for k, v in body.items() if v is not None}))
    return path


def make_context(
    root: Path,
    board: Switchboard,
    *,
    audio: FakeBackend | None = None,
    keyring: MemoryKeyring | None = None,
    parts: FakePartTransport | None = None,
    **config: object,
) -> AppContext:
    """An AppContext whose every edge is a fake, under ``root``."""
    config_path = write_config(root / "config" / "client.json", download_dir=str(root), **config)
    return AppContext(
        data_dir=root / "data",
        state_dir=root / "state",
        config_path=config_path,
        environ={},
        keyring=keyring,
        transport=board.transport(),
        part_transport=parts if parts is not None else SwitchedParts(board),
        audio=audio if audio is not None else FakeBackend(),
        position_kdf=CHEAP,
        api_retry=NO_WAIT,
        part_retry=NO_WAIT,
        poll=Backoff(max_attempts=1, base_seconds=0.01, max_seconds=0.05),
        check_interval_ms=60_000,
        offline_check_interval_ms=100,
        shutdown_wait_ms=5_000,
        requeue_delay_ms=50,
    )


def plane_frames(parts: int, part_size: int) -> int:
    """Mono 16-bit frames whose LSB plane (what is uploaded: 1/16 of the file) is ``parts``
    parts of ``part_size`` bytes, the last one half full."""
    frames = ((parts - 1) * part_size + part_size // 2) * 8
    assert math.ceil(plane_bytes(frames) / part_size) == parts
    return frames


def write_wav(path: Path, frames: int, *, rate: int = 8000, channels: int = 1) -> Path:
    rng = np.random.default_rng(1)
    data = rng.integers(-3000, 3000, (frames, channels)).astype(np.int16)
    sf.write(path, data, rate, subtype="PCM_16")
    return path


def screenshot(widget, name: str) -> Path:
    from PySide6.QtCore import QCoreApplication, QEvent

    # Lay out what changed since the last event-loop turn (as the screen would show it),
    # without running anything else.
    QCoreApplication.sendPostedEvents(None, QEvent.Type.LayoutRequest)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    assert widget.grab().save(str(path)), f"could not save {path}"
    return path
