"""A private standalone stack: free ports, a RabbitMQ vhost, a Redis key prefix and a queue of
its own, so that several stacks (tests, benches) share one machine's RabbitMQ and Redis.

One implementation for the whole-stack tests (``tests/stack.py``) and the benches
(``bench/pipeline.py``, ``bench/soak.py``, ``bench/e2e.py``, ``bench/load.py``): it lives beside
the supervisor it drives, where both can import it (``bench/`` is scripts, not a package).
"""

from __future__ import annotations

import socket
import subprocess
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis

from server.settings import Settings
from server.standalone.stack import Ports
from server.standalone.supervisor import Supervisor

__all__ = [
    "LOCAL_REDIS_URL",
    "PrivateStack",
    "distinct_ports",
    "free_ports",
    "private_stack",
    "rabbit_vhost",
    "unique_name",
]

LOCAL_REDIS_URL = "redis://127.0.0.1:6379/0"
LOCAL_AMQP = "amqp://guest:guest@127.0.0.1:5672"


def unique_name(prefix: str, length: int = 10) -> str:
    """``prefix`` and a random hex suffix: a key prefix, vhost or queue no one else uses."""
    return f"{prefix}-{uuid.uuid4().hex[:length]}"


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports free on 127.0.0.1 now, ascending (all bound at once, so
    none repeats)."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket()
            sockets.append(s)
            s.bind(("127.0.0.1", 0))
        return sorted(int(s.getsockname()[1]) for s in sockets)
    finally:
        for s in sockets:
            s.close()


def distinct_ports() -> Ports:
    """The stack's six ports, all free and distinct."""
    api, grpc, store, http, metrics, worker_metrics = free_ports(6)
    return Ports(
        api=api, triton_grpc=grpc, localstore=store, triton_http=http,
        triton_metrics=metrics, worker_metrics=worker_metrics,
    )  # fmt: skip


@contextmanager
def rabbit_vhost(prefix: str = "subtone-test") -> Iterator[str]:
    """A vhost of our own on the machine's RabbitMQ (yields its AMQP URL), deleted afterwards."""
    name = unique_name(prefix)
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", name], check=True)
    subprocess.run(
        ["rabbitmqctl", "-q", "set_permissions", "-p", name, "guest", ".*", ".*", ".*"],
        check=True,
    )
    try:
        yield f"{LOCAL_AMQP}/{name}"
    finally:
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", name], check=False)


@dataclass
class PrivateStack:
    settings: Settings
    supervisor: Supervisor
    redis: redis.Redis
    """A client of the stack's Redis (closed when the stack stops)."""

    @property
    def url(self) -> str:
        return self.supervisor.api_url


def _quiet(_: str) -> None:
    pass


@contextmanager
def private_stack(
    data_dir: Path,
    broker_url: str,
    *,
    redis_url: str = LOCAL_REDIS_URL,
    ports: Ports | None = None,
    model_repository: Path | None = None,
    prefix: str = "subtone-test",
    report: Callable[[str], None] = _quiet,
    **overrides: object,
) -> Iterator[PrivateStack]:
    """The standalone stack, up, on ``broker_url`` and ``redis_url`` with these settings
    overrides, its own Redis key prefix and queue; stopped, and its Redis keys deleted,
    afterwards."""
    key_prefix = unique_name(prefix)
    settings = Settings(
        DATA_DIR=data_dir,
        REDIS_URL=redis_url,
        REDIS_PREFIX=key_prefix,
        BROKER_URL=broker_url,
        QUEUE_NAME=f"{key_prefix}-jobs",
        **overrides,  # type: ignore[arg-type]
    )
    models = {"model_repository": model_repository} if model_repository is not None else {}
    supervisor = Supervisor(settings, ports or distinct_ports(), **models)
    client = redis.Redis.from_url(redis_url)
    try:
        supervisor.up(report=report)
        yield PrivateStack(settings, supervisor, client)
    finally:
        supervisor.down(report=_quiet)
        try:
            for key in client.scan_iter(match=f"{key_prefix}:*", count=1000):
                client.delete(key)
        except redis.RedisError:  # a Redis of the caller's own, already stopped
            pass
        client.close()
