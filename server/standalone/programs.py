"""The programs of the standalone stack, in start order, each with its command line and how
to tell that it serves: Redis and RabbitMQ when the machine's are not running (and
installed), then the local store, Triton (the binary in the ``nvidia-pytriton`` wheel, through
``python -m server.standalone.tritonserver``), a worker and the API; and the environment they
all inherit."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import sys
from enum import Enum
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import redis
from pydantic import SecretStr

from server.settings import Settings, StorageBackend
from server.standalone.stack import HOME_MARKER, Layout, Ports, Program, StandaloneError

__all__ = [
    "api_url",
    "child_env",
    "http_ok",
    "port_open",
    "rabbit_ok",
    "rabbitmq_program",
    "redis_ok",
    "redis_program",
    "signing_secret",
    "stack_programs",
]


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0).status_code == httpx.codes.OK
    except httpx.HTTPError:
        return False


def redis_ok(settings: Settings) -> bool:
    """The Redis the settings name answers."""
    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1.0)
        with contextlib.closing(client):
            return bool(client.ping())
    except redis.RedisError:
        return False


def rabbit_ok(settings: Settings) -> bool:
    """The RabbitMQ the settings name accepts connections."""
    url = urlsplit(settings.BROKER_URL)
    return port_open(url.hostname or "127.0.0.1", url.port or 5672)


def api_url(settings: Settings, ports: Ports) -> str:
    return f"http://{settings.API_HOST}:{ports.api}"


# The environment shared by every program ------------------------------------------------


def signing_secret(layout: Layout) -> str:
    """The stack's signing secret, made (readable by this user only) the first time."""
    path = layout.secret
    if not path.exists():
        layout.home.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


def child_env(settings: Settings, ports: Ports, layout: Layout) -> dict[str, str]:
    """The environment of every process: ``settings``, with the ports of this stack."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUBTONE_")}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        env[f"SUBTONE_{name}"] = str(value.value if isinstance(value, Enum) else value)
    env.update(
        {
            "SUBTONE_LOCALSTORE_PORT": str(ports.localstore),
            "SUBTONE_LOCALSTORE_ROOT": str(settings.localstore_root),
            "SUBTONE_SIGNING_SECRET": signing_secret(layout),
            "SUBTONE_API_PORT": str(ports.api),
            "SUBTONE_TRITON_URL": f"127.0.0.1:{ports.triton_grpc}",
            "SUBTONE_WORKER_METRICS_PORT": str(ports.worker_metrics),
            HOME_MARKER: str(layout.home),
        }
    )
    if settings.LOCALSTORE_PUBLIC_URL is None:
        env["SUBTONE_LOCALSTORE_PUBLIC_URL"] = f"http://127.0.0.1:{ports.localstore}"
    return env


# The programs ------------------------------------------------------------------------------


def redis_program(settings: Settings, layout: Layout) -> Program:
    """Redis as a program of the stack (when the machine's is not running)."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise StandaloneError(
            f"Redis is not running at {settings.REDIS_URL} and is not installed. "
            "Install it with `apt-get install redis-server`, or point SUBTONE_REDIS_URL "
            "at a running one.",
            code="redis_missing",
        )
    url = urlsplit(settings.REDIS_URL)
    data = layout.home / "redis"
    argv = [
        binary,
        "--daemonize", "no",
        "--bind", url.hostname or "127.0.0.1",
        "--port", str(url.port or 6379),
        "--dir", str(data),
        "--appendonly", "yes",
    ]  # fmt: skip
    return Program("redis", argv, stop_seconds=30, health=lambda: redis_ok(settings))


def rabbitmq_program(settings: Settings) -> Program:
    """RabbitMQ as a program of the stack (when the machine's is not running)."""
    binary = shutil.which("rabbitmq-server")
    if binary is None or shutil.which("rabbitmqctl") is None:
        raise StandaloneError(
            f"RabbitMQ is not running at {urlsplit(settings.BROKER_URL).netloc} and "
            "is not installed. Install it with `apt-get install rabbitmq-server`, or point "
            "SUBTONE_BROKER_URL at a running one.",
            code="rabbitmq_missing",
        )
    return Program("rabbitmq", [binary], stop_seconds=60, health=lambda: rabbit_ok(settings))


def stack_programs(
    settings: Settings,
    ports: Ports,
    layout: Layout,
    *,
    model_repository: Path,
    system: list[str],
    rabbitmq: list[Program] | None = None,
) -> list[Program]:
    """Every program of the stack, in start order (``system``: the system services it
    runs itself; ``rabbitmq``: the programs of its RabbitMQ when it runs one, instead of the
    machine's ``rabbitmq-server``); Triton serves ``model_repository``."""
    py = sys.executable
    found: list[Program] = []
    if "redis" in system:
        found.append(redis_program(settings, layout))
    if "rabbitmq" in system:
        found += rabbitmq if rabbitmq is not None else [rabbitmq_program(settings)]
    if settings.STORAGE_BACKEND is StorageBackend.LOCAL:
        store = [
            py, "-m", "server.localstore",
            "--root", str(settings.localstore_root),
            "--host", settings.LOCALSTORE_HOST,
            "--port", str(ports.localstore),
            "--secret-env", "SUBTONE_SIGNING_SECRET",
            "--log-level", settings.LOG_LEVEL.lower(),
        ]  # fmt: skip
        health = f"http://127.0.0.1:{ports.localstore}/healthz"
        found.append(Program("localstore", store, health=lambda: http_ok(health)))
    triton = [
        py, "-m", "server.standalone.tritonserver",
        "--workdir", str(layout.home / "triton"),
        "--model-repository", str(model_repository),
        "--http", str(ports.triton_http),
        "--grpc", str(ports.triton_grpc),
        "--metrics", str(ports.triton_metrics),
        "--shm-prefix", f"subtone-standalone-{ports.triton_grpc}-",
    ]  # fmt: skip
    triton_ready = f"http://127.0.0.1:{ports.triton_http}/v2/health/ready"
    found.append(Program("triton", triton, stop_seconds=15, health=lambda: http_ok(triton_ready)))
    # The worker hands its job back on SIGTERM within server.worker.STOP_TIMEOUT_SECONDS.
    found.append(Program("worker", [py, "-m", "server.worker"], stop_seconds=100))
    api_health = f"{api_url(settings, ports)}/healthz"
    found.append(Program("api", [py, "-m", "server.api"], health=lambda: http_ok(api_health)))
    return found
