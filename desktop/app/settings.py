"""The client settings as the desktop app keeps them: the token in the system keyring.

The core reads and writes ``client.json`` (owner-only, 0600). The app stores the API token in
the system keyring when one works (service ``subtone``, one entry per server URL), and writes
the file without it; where no keyring backend exists (a headless machine) the token stays in
that 0600 file, as the CLI keeps it. ``SUBTONE_URL`` and ``SUBTONE_TOKEN`` still override.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Final, Protocol

from desktop.core.config import ClientSettings, default_config_path, load_settings, save_settings

__all__ = [
    "KEYRING_SERVICE",
    "KeyringLike",
    "SettingsStore",
    "TokenPlace",
    "system_keyring",
]

log = logging.getLogger(__name__)

KEYRING_SERVICE: Final = "subtone"


class KeyringLike(Protocol):
    """The three calls of the :mod:`keyring` module the app uses (the module itself fits)."""

    def get_password(self, service_name: str, username: str) -> str | None: ...

    def set_password(self, service_name: str, username: str, password: str) -> None: ...

    def delete_password(self, service_name: str, username: str) -> None: ...


class _KeyringModule:
    """The system keyring through the :mod:`keyring` package, imported on first use."""

    def get_password(self, service_name: str, username: str) -> str | None:
        import keyring

        value: str | None = keyring.get_password(service_name, username)
        return value

    def set_password(self, service_name: str, username: str, password: str) -> None:
        import keyring

        keyring.set_password(service_name, username, password)

    def delete_password(self, service_name: str, username: str) -> None:
        import keyring

        keyring.delete_password(service_name, username)


def system_keyring() -> KeyringLike | None:
    """The system keyring, or ``None`` where there is no usable backend (a headless box)."""
    try:
        import keyring
        from keyring.backends import fail

        backend = keyring.get_keyring()
    except Exception as e:  # not installed, or a backend that fails to load
        log.info("no system keyring (%s)", e)
        return None
    if isinstance(backend, fail.Keyring):
        return None
    return _KeyringModule()


class TokenPlace(StrEnum):
    KEYRING = "keyring"
    FILE = "file"
    NONE = "none"

    @property
    def description(self) -> str:
        return {
            TokenPlace.KEYRING: "The token is kept in the system keyring.",
            TokenPlace.FILE: "No system keyring is available: the token is kept in the "
            "settings file, readable only by you.",
            TokenPlace.NONE: "No token is set.",
        }[self]


class SettingsStore:
    """Loads and saves :class:`ClientSettings`, with the token in the keyring when possible."""

    def __init__(
        self,
        config_path: Path | None = None,
        *,
        keyring: KeyringLike | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.environ: Mapping[str, str] = os.environ if environ is None else environ
        self.path = config_path if config_path is not None else default_config_path(self.environ)
        self.keyring = keyring

    def load(self) -> ClientSettings:
        """The settings file and the environment, with the token from the keyring if needed."""
        settings = load_settings(self.path, environ=self.environ)
        if settings.token is None and self.keyring is not None:
            token = self._keyring_get(settings.server_url)
            if token:
                settings = settings.model_copy(update={"token": token})
        return settings

    def _keyring_get(self, server_url: str) -> str | None:
        assert self.keyring is not None
        try:
            return self.keyring.get_password(KEYRING_SERVICE, server_url)
        except Exception as e:  # any backend failure means "not there"
            log.info("keyring unavailable for reading (%s)", e)
            return None

    def save(self, settings: ClientSettings) -> TokenPlace:
        """Write the settings; returns where the token went."""
        token = settings.token
        if not token:
            self._keyring_forget(settings.server_url)
            save_settings(settings.model_copy(update={"token": None}), self.path)
            return TokenPlace.NONE
        if self.keyring is not None:
            try:
                self.keyring.set_password(KEYRING_SERVICE, settings.server_url, token)
            except Exception as e:  # no backend, locked, refused: fall back to the file
                log.info("keyring unavailable for writing (%s); using the settings file", e)
            else:
                save_settings(settings.model_copy(update={"token": None}), self.path)
                return TokenPlace.KEYRING
        save_settings(settings, self.path)
        return TokenPlace.FILE

    def _keyring_forget(self, server_url: str) -> None:
        if self.keyring is None:
            return
        try:
            self.keyring.delete_password(KEYRING_SERVICE, server_url)
        except Exception as e:  # nothing stored, or no backend
            log.debug("no keyring entry removed (%s)", e)
