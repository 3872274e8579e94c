"""What a standalone stack is, for every part of its supervision: its ports, the files under
its home (``<data>/standalone``), the state ``up`` records there, its programs and the names
of its services.

Every process of the stack carries ``SUBTONE_STANDALONE_HOME=<its home>`` (:data:`HOME_MARKER`)
in its environment: that is how ``down`` (and an ``up`` that finds supervisord gone)
recognises what this stack started.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from server.settings import Settings
from subtone.errors import SubtoneError

__all__ = [
    "DEFAULT_PORTS",
    "HOME_MARKER",
    "OUR_SERVICES",
    "SYSTEM_SERVICES",
    "Layout",
    "Ports",
    "Program",
    "ServiceStatus",
    "StandaloneError",
    "State",
]

HOME_MARKER: Final = "SUBTONE_STANDALONE_HOME"
"""In the environment of every process of the stack: the home of the stack that started it."""
SECRET_FILE: Final = "signing-secret"  # noqa: S105 - a file name
STATE_FILE: Final = "state.json"
CONFIG_FILE: Final = "supervisord.conf"
SOCKET_FILE: Final = "supervisor.sock"
PID_FILE: Final = "supervisord.pid"

POLL_SECONDS: Final = 0.2
"""How often supervision looks again at what it waits for."""

SYSTEM_SERVICES: Final = ("redis", "rabbitmq")
OUR_SERVICES: Final = ("localstore", "triton", "worker", "api")


class StandaloneError(SubtoneError):
    code = "standalone_error"
    status = 500


@dataclass(frozen=True)
class Ports:
    api: int = 8600
    triton_grpc: int = 8601
    localstore: int = 8602
    triton_http: int = 8603
    triton_metrics: int = 8604
    worker_metrics: int = 8605

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: int) -> Ports:
        """The ports the settings name (API, local store, Triton's gRPC, the worker's
        metrics), then ``overrides``."""
        triton = urlsplit(f"//{settings.TRITON_URL}").port or cls.triton_grpc
        ports = {
            "api": settings.API_PORT,
            "localstore": settings.LOCALSTORE_PORT,
            "triton_grpc": triton,
            "worker_metrics": settings.WORKER_METRICS_PORT,
        }
        return replace(cls(**ports), **overrides)


DEFAULT_PORTS = Ports()


@dataclass(frozen=True)
class Layout:
    """The files of a stack under its ``home``."""

    home: Path

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def state(self) -> Path:
        return self.home / STATE_FILE

    @property
    def config(self) -> Path:
        return self.home / CONFIG_FILE

    @property
    def socket(self) -> Path:
        return self.home / SOCKET_FILE

    @property
    def pid(self) -> Path:
        return self.home / PID_FILE

    @property
    def secret(self) -> Path:
        return self.home / SECRET_FILE


@dataclass
class State:
    """What ``up`` decided, for ``status`` and ``down`` (which take no options)."""

    ports: dict[str, int] = field(default_factory=dict)
    system: list[str] = field(default_factory=list)
    """System services this stack runs itself (``redis``, ``rabbitmq``): the machine's were
    not running when supervisord started."""

    @classmethod
    def load(cls, path: Path) -> State:
        if not path.exists():
            return cls()
        data = json.loads(path.read_text())
        return cls(ports=data.get("ports", {}), system=list(data.get("system", [])))

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.replace(path)


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    pid: int | None
    alive: bool
    state: str = ""
    """supervisord's word for it (``RUNNING``, ``BACKOFF``, …), or what else is known."""


@dataclass(frozen=True)
class Program:
    """One ``[program:NAME]`` of the configuration."""

    name: str
    argv: list[str]
    stop_seconds: int = 10
    health: Callable[[], bool] | None = None
    """Answers when the program serves; ``None``: the API's ``/readyz`` covers it."""
