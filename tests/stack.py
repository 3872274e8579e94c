"""The whole stack as real processes (API, local store or S3, worker, Triton), started by the
standalone supervisor exactly as ``subtone standalone up`` starts it, with a Redis key prefix
and a queue of its own; shared by the integration, fault and desktop tests."""

from __future__ import annotations

import socket
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis

from server.auth.service import TokenService
from server.settings import Settings
from server.standalone.supervisor import Ports, Supervisor

REDIS_URL = "redis://127.0.0.1:6379/0"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def distinct_ports() -> Ports:
    ports: set[int] = set()
    while len(ports) < 6:
        ports.add(free_port())
    api, grpc, store, http, metrics, worker_metrics = sorted(ports)
    return Ports(api=api, triton_grpc=grpc, localstore=store, triton_http=http,
                 triton_metrics=metrics, worker_metrics=worker_metrics)  # fmt: skip


@contextmanager
def rabbit_vhost(prefix: str = "subtone-test") -> Iterator[str]:
    """A vhost of our own on the machine's RabbitMQ (its AMQP URL), deleted afterwards."""
    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", name], check=True)
    subprocess.run(
        ["rabbitmqctl", "-q", "set_permissions", "-p", name, "guest", ".*", ".*", ".*"],
        check=True,
    )
    try:
        yield f"amqp://guest:guest@127.0.0.1:5672/{name}"
    finally:
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", name], check=False)


@dataclass
class Stack:
    url: str
    token: str
    other_token: str
    settings: Settings
    supervisor: Supervisor
    redis: redis.Redis


@contextmanager
def running_stack(
    data_dir: Path,
    broker_url: str,
    *,
    redis_url: str = REDIS_URL,
    ports: Ports | None = None,
    model_repository: Path | None = None,
    **overrides: object,
) -> Iterator[Stack]:
    """The stack on ``broker_url`` and ``redis_url`` with these settings overrides; two
    tenants' tokens; everything stopped and its Redis keys deleted afterwards."""
    prefix = f"subtone-test-{uuid.uuid4().hex[:10]}"
    settings = Settings(
        DATA_DIR=data_dir,
        REDIS_URL=redis_url,
        REDIS_PREFIX=prefix,
        BROKER_URL=broker_url,
        QUEUE_NAME=f"{prefix}-jobs",
        **overrides,  # type: ignore[arg-type]
    )
    models = {"model_repository": model_repository} if model_repository is not None else {}
    supervisor = Supervisor(settings, ports or distinct_ports(), **models)
    client = redis.Redis.from_url(redis_url)
    try:
        supervisor.up(report=lambda _: None)
        tokens = TokenService(client, prefix=prefix)
        alice, _ = tokens.create("alice")
        bob, _ = tokens.create("bob")
        yield Stack(supervisor.api_url, alice, bob, settings, supervisor, client)
    finally:
        supervisor.down(report=lambda _: None)
        try:
            for key in client.scan_iter(match=f"{prefix}:*", count=1000):
                client.delete(key)
        except redis.RedisError:  # a Redis of the test's own, already stopped
            pass
        client.close()
