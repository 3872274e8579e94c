"""Fixtures for the worker's tests: the machine's Redis under a key prefix of our own, a local
folder store and (for the integration tests) a RabbitMQ vhost of our own. Everything a fixture
creates it removes. Helpers live in :mod:`tests.server.worker.support`."""

from __future__ import annotations

import io
import json
import logging
import socket
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from server.integrations.localstore import LocalStore
from server.jobs.runner import RunnerDeps
from server.kit.logs import JsonFormatter
from server.settings import Settings
from tests.server.worker.support import PART_SIZE_BYTES, REDIS_URL, World, make_deps


def _answers(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    if not _answers(6379):
        pytest.skip("no Redis on 127.0.0.1:6379")
    client = redis.Redis.from_url(REDIS_URL)
    yield client
    client.close()


@pytest.fixture
def prefix(redis_client: redis.Redis) -> Iterator[str]:
    """A Redis key prefix of this test's own; its keys are deleted afterwards."""
    name = f"subtone-test-worker-{uuid.uuid4().hex[:10]}"
    yield name
    for key in redis_client.scan_iter(match=f"{name}:*", count=1000):
        redis_client.delete(key)


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "objects", "test-secret-of-the-worker-tests", min_part_size=1)


@pytest.fixture
def settings(tmp_path: Path, prefix: str) -> Settings:
    return Settings(
        DATA_DIR=tmp_path,
        REDIS_URL=REDIS_URL,
        REDIS_PREFIX=prefix,
        PART_SIZE_BYTES=PART_SIZE_BYTES,
        WINDOWS_IN_FLIGHT=2,
    )


@pytest.fixture
def deps(settings: Settings, redis_client: redis.Redis, store: LocalStore) -> RunnerDeps:
    return make_deps(settings, redis_client, store)


@pytest.fixture
def world(deps: RunnerDeps, store: LocalStore) -> World:
    return World(deps, store)


@pytest.fixture
def log_lines() -> Iterator[Callable[[], list[dict[str, object]]]]:
    """The JSON log lines (:mod:`server.kit.logs`) every thread writes during the test, at
    INFO and above; call it for those written so far."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("worker"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)
    root.setLevel(level)


# -- RabbitMQ ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rabbit_vhost() -> Iterator[str]:
    """A RabbitMQ vhost of this module's own on the machine's broker, deleted afterwards."""
    if not _answers(5672):
        pytest.skip("no RabbitMQ on 127.0.0.1:5672")
    name = f"subtone-test-worker-{uuid.uuid4().hex[:10]}"
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", name], check=True)
    subprocess.run(
        ["rabbitmqctl", "-q", "set_permissions", "-p", name, "guest", ".*", ".*", ".*"],
        check=True,
    )
    yield name
    subprocess.run(["rabbitmqctl", "-q", "delete_vhost", name], check=False)
