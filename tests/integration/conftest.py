"""The whole stack as real processes: API, local store, worker, Triton, on the machine's
RabbitMQ (a vhost of our own) and Redis (a key prefix of our own), started by the standalone
supervisor exactly as ``subtone standalone up`` starts it."""

from __future__ import annotations

import socket
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from pydantic import SecretStr

from server.auth.service import TokenService
from server.integrations.s3 import S3Store
from server.settings import Settings, StorageBackend
from server.standalone.supervisor import Ports, Supervisor
from tests.servers import moto_server

REDIS_URL = "redis://127.0.0.1:6379/0"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def distinct_ports() -> Ports:
    ports: set[int] = set()
    while len(ports) < 5:
        ports.add(free_port())
    api, grpc, store, http, metrics = sorted(ports)
    return Ports(api=api, triton_grpc=grpc, localstore=store, triton_http=http,
                 triton_metrics=metrics)  # fmt: skip


@pytest.fixture(scope="session")
def rabbit_vhost() -> Iterator[str]:
    """A RabbitMQ vhost of our own on the machine's broker, deleted afterwards."""
    name = f"subtone-test-{uuid.uuid4().hex[:10]}"
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", name], check=True)
    subprocess.run(
        ["rabbitmqctl", "-q", "set_permissions", "-p", name, "guest", ".*", ".*", ".*"],
        check=True,
    )
    yield f"amqp://guest:guest@127.0.0.1:5672/{name}"
    subprocess.run(["rabbitmqctl", "-q", "delete_vhost", name], check=False)


@dataclass
class Stack:
    url: str
    token: str
    other_token: str
    settings: Settings
    supervisor: Supervisor
    redis: redis.Redis


def _start(tmp: Path, broker_url: str, **overrides: object) -> Iterator[Stack]:
    prefix = f"subtone-test-{uuid.uuid4().hex[:10]}"
    settings = Settings(
        DATA_DIR=tmp,
        REDIS_URL=REDIS_URL,
        REDIS_PREFIX=prefix,
        BROKER_URL=broker_url,
        QUEUE_NAME=f"{prefix}-jobs",
        **overrides,  # type: ignore[arg-type]
    )
    supervisor = Supervisor(settings, distinct_ports())
    client = redis.Redis.from_url(REDIS_URL)
    try:
        supervisor.up(report=lambda _: None)
        tokens = TokenService(client, prefix=prefix)
        alice, _ = tokens.create("alice")
        bob, _ = tokens.create("bob")
        yield Stack(supervisor.api_url, alice, bob, settings, supervisor, client)
    finally:
        supervisor.down(report=lambda _: None)
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            client.delete(key)
        client.close()


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, rabbit_vhost: str) -> Iterator[Stack]:
    """The standalone stack with the local folder store."""
    yield from _start(tmp_path_factory.mktemp("stack"), rabbit_vhost)


@pytest.fixture(scope="session")
def s3_stack(tmp_path_factory: pytest.TempPathFactory, rabbit_vhost: str) -> Iterator[Stack]:
    """The same stack on S3: a moto S3 server process instead of the local store."""
    with moto_server(tmp_path_factory.mktemp("moto") / "moto.log") as url:
        s3 = {
            "STORAGE_BACKEND": StorageBackend.S3,
            "S3_ENDPOINT": url,
            "S3_ACCESS_KEY": "testing",
            "S3_SECRET_KEY": SecretStr("testing"),
            "S3_BUCKET": f"subtone-{uuid.uuid4().hex[:10]}",
        }
        S3Store(url, "testing", "testing", str(s3["S3_BUCKET"])).ensure_bucket()
        yield from _start(tmp_path_factory.mktemp("s3-stack"), rabbit_vhost, **s3)


@pytest.fixture(params=["local", "s3"])
def any_stack(request: pytest.FixtureRequest) -> Stack:
    """Each storage backend's stack in turn."""
    name = "stack" if request.param == "local" else "s3_stack"
    found: Stack = request.getfixturevalue(name)
    return found
