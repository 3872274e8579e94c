"""Client settings: which server, which token, how many parts at once and how big, where
results go.

Read from ``<user config dir>/subtone/client.json`` (another file with ``SUBTONE_CLIENT_CONFIG``),
then overridden by ``SUBTONE_URL`` and ``SUBTONE_TOKEN``. The file holds the token, so it is
written owner-only (0600), atomically.

``part_size_bytes`` is the part size asked of the server for each new upload (``None``: the
server's own default); the server keeps it within S3's limits and answers with the size it
chose (``UploadCreated.part_size``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Final

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from desktop.core.api import DEFAULT_TIMEOUT_SECONDS
from desktop.core.uploader import (
    DEFAULT_PARALLEL_PARTS,
    MAX_PARALLEL_PARTS,
    MAX_PART_SIZE,
    MIN_PART_SIZE,
)
from subtone.clientconfig import (
    CONFIG_FILE_NAME,
    ENV_CONFIG,
    client_config_path,
    write_client_config,
)
from subtone.errors import SubtoneError

__all__ = [
    "CONFIG_FILE_NAME",
    "DEFAULT_SERVER_URL",
    "ENV_CONFIG",
    "ENV_TOKEN",
    "ENV_URL",
    "ClientSettings",
    "ConfigError",
    "default_config_path",
    "load_settings",
    "save_settings",
]

ENV_URL: Final = "SUBTONE_URL"
ENV_TOKEN: Final = "SUBTONE_TOKEN"  # noqa: S105 - the variable's name, not a secret
DEFAULT_SERVER_URL: Final = "http://127.0.0.1:8600"
"""Where ``subtone standalone up`` serves the API."""


class ConfigError(SubtoneError):
    code = "invalid_config"


class ClientSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    server_url: str = DEFAULT_SERVER_URL
    token: str | None = Field(default=None, repr=False)
    parallel_parts: Annotated[int, Field(ge=1, le=MAX_PARALLEL_PARTS)] = DEFAULT_PARALLEL_PARTS
    part_size_bytes: Annotated[int, Field(ge=MIN_PART_SIZE, le=MAX_PART_SIZE)] | None = None
    """The part size to ask the server for (``None``: the server chooses)."""
    download_dir: Path | None = None
    """Where decoded secrets go when no output is given (default: the user's Downloads)."""
    timeout_seconds: Annotated[float, Field(gt=0)] = DEFAULT_TIMEOUT_SECONDS
    sessions_path: Path | None = None
    """The upload-session database (default: under the user's state dir)."""

    @field_validator("server_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError("the server URL must start with http:// or https://")
        return value

    @property
    def effective_download_dir(self) -> Path:
        return self.download_dir or Path(platformdirs.user_downloads_dir())


def default_config_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$SUBTONE_CLIENT_CONFIG``, else ``<user config dir>/subtone/client.json``."""
    return client_config_path(environ)


def _invalid(path: Path | None, error: ValidationError) -> ConfigError:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in error.errors()
    )
    where = f"in {path}" if path is not None else "in the environment"
    return ConfigError(f"Invalid client settings {where}: {problems}.")


def load_settings(
    path: str | os.PathLike[str] | None = None, *, environ: Mapping[str, str] | None = None
) -> ClientSettings:
    """The file's settings (a missing file is fine), overridden by the environment."""
    env = os.environ if environ is None else environ
    file = Path(path) if path is not None else default_config_path(env)
    data: dict[str, object] = {}
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = None
    except OSError as e:
        raise ConfigError(f"Cannot read {file}: {e.strerror}.") from e
    if text is not None:
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"{file} is not valid JSON: {e}.") from e
        if not isinstance(loaded, dict):
            raise ConfigError(f"{file} must hold a JSON object.")
        data.update(loaded)
    try:
        settings = ClientSettings.model_validate(data)
    except ValidationError as e:
        raise _invalid(file, e) from e
    overrides = {
        key: env[name]
        for key, name in (("server_url", ENV_URL), ("token", ENV_TOKEN))
        if env.get(name)
    }
    if not overrides:
        return settings
    try:
        return ClientSettings.model_validate(settings.model_dump() | overrides)
    except ValidationError as e:
        raise _invalid(None, e) from e


def save_settings(settings: ClientSettings, path: str | os.PathLike[str] | None = None) -> Path:
    """Write the settings as JSON, readable by the owner only; returns the file."""
    body = json.loads(settings.model_dump_json(exclude_defaults=True))
    return write_client_config(body, path if path is not None else default_config_path())
