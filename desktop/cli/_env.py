"""What the commands reach out to (settings, HTTP transports, the session store): a
:class:`CliEnv`, which tests pass as Click's ``obj``."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from desktop.core.api import ApiClient
from desktop.core.config import ClientSettings, load_settings
from desktop.core.envelope import POSITION_KDF, KdfParams
from desktop.core.sessions import SessionStore
from desktop.core.traffic import CountingTransport, Traffic
from desktop.core.uploader import HttpPartTransport, PartTransport, Uploader

__all__ = ["CliEnv"]


def _stdin_is_tty() -> bool:
    return sys.stdin.isatty()


@dataclass
class CliEnv:
    """What the commands depend on; the defaults are the real ones."""

    settings: ClientSettings | None = None
    """Used as given; ``None`` loads the settings file and the environment."""
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    transport: httpx.BaseTransport | None = None
    """The API's HTTP transport (and downloads')."""
    part_transport: PartTransport | None = None
    sessions: SessionStore | None = None
    """``None``: the store named by the settings, else the default one."""
    interactive: Callable[[], bool] = _stdin_is_tty
    position_kdf: KdfParams = POSITION_KDF
    """Tests only: files made with other parameters cannot be decoded by a standard client."""
    config_path: Path | None = None
    url: str | None = None
    trace_id: str | None = None
    """The trace id of this run's calls to the server, once a client was made."""
    traffic: Traffic | None = None
    """Set by ``--stats``: every byte the client sends and receives is counted here."""

    def count_traffic(self) -> Traffic:
        """Count this run's HTTP bytes (API, uploads, downloads) from now on."""
        self.traffic = Traffic()
        self.transport = counting = CountingTransport(self.traffic, self.transport)
        if self.part_transport is None:
            self.part_transport = HttpPartTransport(transport=counting)
        return self.traffic

    def load(self) -> ClientSettings:
        settings = self.settings or load_settings(self.config_path, environ=self.environ)
        if self.url:
            settings = ClientSettings.model_validate(
                settings.model_dump() | {"server_url": self.url}
            )
        return settings

    @contextlib.contextmanager
    def client(self) -> Iterator[tuple[ClientSettings, ApiClient]]:
        settings = self.load()
        with ApiClient(
            settings.server_url,
            settings.token,
            transport=self.transport,
            timeout=settings.timeout_seconds,
        ) as client:
            self.trace_id = client.trace_id
            yield settings, client

    def uploader(self, client: ApiClient, settings: ClientSettings) -> Uploader:
        store = self.sessions or SessionStore(settings.sessions_path)
        return Uploader(
            client,
            store=store,
            transport=self.part_transport,
            parallel_parts=settings.parallel_parts,
            part_size=settings.part_size_bytes,
        )
