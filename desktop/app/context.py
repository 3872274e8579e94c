"""Everything the desktop app reaches out to, in one place, so tests can replace any of it.

:meth:`AppContext.default` is the real machine: folders from platformdirs, the system keyring,
PortAudio, HTTP. Tests build one with a temporary folder, an ``httpx.MockTransport``, a fake
part transport, a fake sound backend, scripted dialogs and cheap key derivation.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import httpx
import platformdirs

from desktop.app.settings import KeyringLike, SettingsStore, system_keyring
from desktop.audio.backend import AudioBackend
from desktop.core.api import DEFAULT_API_RETRY, DEFAULT_POLL, ApiClient
from desktop.core.config import ClientSettings
from desktop.core.envelope import POSITION_KDF, KdfParams
from desktop.core.orchestration import Runtime, TaskStore
from desktop.core.orchestration.store import TASKS_FILE_NAME
from desktop.core.retry import Backoff
from desktop.core.sessions import SESSIONS_FILE_NAME, SessionStore
from desktop.core.uploader import DEFAULT_PART_RETRY, PartTransport, Uploader

__all__ = ["DEFAULT_CHECK_INTERVAL_MS", "AppContext", "close_runtime"]

APP_NAME: Final = "subtone"
DEFAULT_CHECK_INTERVAL_MS: Final = 10_000
"""How often the status bar asks the server's ``/readyz``."""
OFFLINE_CHECK_INTERVAL_MS: Final = 3_000
"""How often while the server is unreachable (to send the queue soon after it is back)."""
SHUTDOWN_WAIT_MS: Final = 5_000


@dataclass
class AppContext:
    data_dir: Path
    """Recordings, sealed payloads waiting to be sent, results."""
    state_dir: Path
    """The task store (``desktop.sqlite3``) and, by default, the core's upload sessions."""
    config_path: Path | None = None
    """``client.json``; ``None``: the core's default (``$SUBTONE_CLIENT_CONFIG``, platformdirs)."""
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    keyring: KeyringLike | None = field(default_factory=system_keyring)
    transport: httpx.BaseTransport | None = None
    """The API's HTTP transport (and downloads'); ``None``: real HTTP."""
    part_transport: PartTransport | None = None
    """Where part PUTs go; ``None``: real HTTP."""
    audio: AudioBackend | None = None
    """``None``: PortAudio through sounddevice."""
    position_kdf: KdfParams = POSITION_KDF
    """Tests only: files made with other parameters cannot be decoded by a standard client."""
    api_retry: Backoff = DEFAULT_API_RETRY
    part_retry: Backoff = DEFAULT_PART_RETRY
    poll: Backoff = DEFAULT_POLL
    check_interval_ms: int = DEFAULT_CHECK_INTERVAL_MS
    offline_check_interval_ms: int = OFFLINE_CHECK_INTERVAL_MS
    shutdown_wait_ms: int = SHUTDOWN_WAIT_MS
    requeue_delay_ms: int = 2_000
    """First wait before a task that lost the network is tried again (it doubles)."""
    resume_on_start: bool = True
    """Continue unfinished tasks once the server answers after start."""

    @classmethod
    def default(cls) -> AppContext:
        return cls(
            data_dir=Path(platformdirs.user_data_dir(APP_NAME)),
            state_dir=Path(platformdirs.user_state_dir(APP_NAME)),
        )

    @property
    def recordings_dir(self) -> Path:
        return self.data_dir / "recordings"

    @property
    def work_dir(self) -> Path:
        return self.data_dir / "work"

    def settings_store(self) -> SettingsStore:
        return SettingsStore(self.config_path, keyring=self.keyring, environ=self.environ)

    def task_store(self) -> TaskStore:
        return TaskStore(self.state_dir / TASKS_FILE_NAME)

    def sessions(self, settings: ClientSettings) -> SessionStore:
        return SessionStore(settings.sessions_path or self.state_dir / SESSIONS_FILE_NAME)

    def client(self, settings: ClientSettings) -> ApiClient:
        return ApiClient(
            settings.server_url,
            settings.token,
            transport=self.transport,
            timeout=settings.timeout_seconds,
            retry=self.api_retry,
            poll=self.poll,
        )

    def uploader(self, client: ApiClient, settings: ClientSettings) -> Uploader:
        return Uploader(
            client,
            store=self.sessions(settings),
            transport=self.part_transport,
            parallel_parts=settings.parallel_parts,
            part_size=settings.part_size_bytes,
            retry=self.part_retry,
        )

    def runtime(self, settings: ClientSettings, store: TaskStore) -> Runtime:
        """A client and an uploader for these settings (close them with :func:`close_runtime`)."""
        client = self.client(settings)
        return Runtime(client, self.uploader(client, settings), store, self.work_dir)


def close_runtime(runtime: Runtime) -> None:
    runtime.uploader.close()
    runtime.client.close()
