"""Where the client keeps its settings file, and writing keys into it.

The client (:mod:`desktop.core.config`) owns the file's schema; the server's admin commands
(``subtone standalone up``) only point it at the stack they started, and must not import the
client. Both go through these few functions: the file's location and an owner-only (0600),
atomic write.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Final

import platformdirs

from subtone.errors import SubtoneError
from subtone.files import atomic_output

__all__ = [
    "APP_NAME",
    "CONFIG_FILE_NAME",
    "ENV_CONFIG",
    "ClientConfigError",
    "client_config_path",
    "merge_client_config",
    "read_client_config",
    "write_client_config",
]

APP_NAME: Final = "subtone"
CONFIG_FILE_NAME: Final = "client.json"
ENV_CONFIG: Final = "SUBTONE_CLIENT_CONFIG"
FILE_MODE: Final = 0o600
DIR_MODE: Final = 0o700


class ClientConfigError(SubtoneError):
    code = "invalid_config"


def client_config_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$SUBTONE_CLIENT_CONFIG``, else ``<user config dir>/subtone/client.json``."""
    env = os.environ if environ is None else environ
    override = env.get(ENV_CONFIG)
    if override:
        return Path(override)
    return Path(platformdirs.user_config_dir(APP_NAME)) / CONFIG_FILE_NAME


def read_client_config(path: str | os.PathLike[str] | None = None) -> dict[str, object]:
    """The file's JSON object as it is (``{}`` when there is no file), unvalidated."""
    file = Path(path) if path is not None else client_config_path()
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise ClientConfigError(f"Cannot read {file}: {e.strerror}.") from e
    try:
        loaded = json.loads(text)
    except json.JSONDecodeError as e:
        raise ClientConfigError(f"{file} is not valid JSON: {e}.") from e
    if not isinstance(loaded, dict):
        raise ClientConfigError(f"{file} must hold a JSON object.")
    return loaded


def write_client_config(
    data: Mapping[str, object], path: str | os.PathLike[str] | None = None
) -> Path:
    """Write ``data`` as the whole file, readable by the owner only, atomically."""
    file = Path(path) if path is not None else client_config_path()
    file.parent.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    body = json.dumps(dict(data), indent=2) + "\n"
    with atomic_output(file, mode=FILE_MODE) as f:
        f.write(body.encode("utf-8"))
    return file


def merge_client_config(
    updates: Mapping[str, object], path: str | os.PathLike[str] | None = None
) -> Path:
    """Set ``updates`` in the file, keeping its other keys; returns the file."""
    return write_client_config(read_client_config(path) | dict(updates), path)
