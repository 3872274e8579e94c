"""compose/rabbitmq: the durable definitions RabbitMQ loads at boot match what Dramatiq declares.

RabbitMQ refuses a queue.declare whose arguments differ from the existing queue's
(PRECONDITION_FAILED), so the queues in definitions.json must carry exactly the arguments that
server/integrations/broker.py and Dramatiq's RabbitmqBroker declare. The expected arguments are
taken from that code (its declarations, recorded), and the definitions are loaded into the
machine's RabbitMQ, in a vhost of their own, before the real broker code declares its queues.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.errors import ConnectionClosed

from server.integrations.broker import build_broker
from server.settings import Settings
from tests.deploy.conftest import COMPOSE_DIR, COMPOSE_FILE, compose_config

RABBITMQ_DIR = COMPOSE_DIR / "rabbitmq"
DEFINITIONS = RABBITMQ_DIR / "definitions.json"
START = RABBITMQ_DIR / "start.sh"
CONF = RABBITMQ_DIR / "20-subtone.conf"
LOADED_FROM = "/etc/rabbitmq/subtone-definitions"
MOUNTED_AT = "/subtone"
AMQP = ("127.0.0.1", 5672)


class RecordingChannel:
    """Stands in for pika's channel: keeps each queue.declare the broker code makes."""

    def __init__(self) -> None:
        self.declared: dict[str, dict[str, Any]] = {}

    def queue_declare(self, queue: str, **kwargs: Any) -> None:
        self.declared[queue] = kwargs


def compose_settings(**overrides: Any) -> Settings:
    """The settings compose gives the API and the workers, as far as the queues go."""
    env = compose_config(COMPOSE_FILE)["services"]["worker"]["environment"]
    fields = ("QUEUE_NAME", "CONSUMER_TIMEOUT_SECONDS", "JOB_TIME_LIMIT_SECONDS")
    return Settings.model_validate({f: env[f"SUBTONE_{f}"] for f in fields} | overrides)


def declared_by_the_broker(settings: Settings) -> dict[str, dict[str, Any]]:
    """queue name → the queue.declare keyword arguments that the real broker code sends."""
    broker = build_broker(settings)
    channel = RecordingChannel()
    broker.state.channel = channel
    try:
        broker.declare_queue(settings.QUEUE_NAME, ensure=True)
    finally:
        del broker.state.channel
    return channel.declared


def definitions() -> dict[str, Any]:
    loaded = json.loads(DEFINITIONS.read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_the_definitions_declare_exactly_the_queues_dramatiq_declares() -> None:
    settings = compose_settings()
    declared = declared_by_the_broker(settings)
    queue = settings.QUEUE_NAME
    assert set(declared) == {queue, f"{queue}.DQ", f"{queue}.XQ"}
    queues = {q["name"]: q for q in definitions()["queues"]}
    assert set(queues) == set(declared)
    for name, declare in declared.items():
        defined = queues[name]
        assert defined["vhost"] == "/"
        assert defined["durable"] is declare["durable"] is True
        assert defined["auto_delete"] is False
        assert defined["arguments"] == declare["arguments"], name
        assert "exclusive" not in declare or declare["exclusive"] is False


def test_the_comparison_sees_a_different_consumer_timeout() -> None:
    """The recorded declarations follow the settings: the check above can fail."""
    other = compose_settings(CONSUMER_TIMEOUT_SECONDS=4 * 3600)
    queue = other.QUEUE_NAME
    queues = {q["name"]: q for q in definitions()["queues"]}
    assert declared_by_the_broker(other)[queue]["arguments"] != queues[queue]["arguments"]


def test_the_definitions_declare_the_vhost_of_the_broker_url() -> None:
    env = compose_config(COMPOSE_FILE)["services"]["worker"]["environment"]
    assert env["SUBTONE_BROKER_URL"].endswith("@rabbitmq:5672/%2F")
    assert definitions()["vhosts"] == [{"name": "/"}]
    assert "users" not in definitions(), "the password would be in version control"


def test_rabbitmq_loads_the_folder_start_sh_writes() -> None:
    (line,) = [x for x in CONF.read_text().splitlines() if x.startswith("load_definitions")]
    assert line.split("=", 1)[1].strip() == LOADED_FROM
    rabbitmq = compose_config(COMPOSE_FILE)["services"]["rabbitmq"]
    assert rabbitmq["entrypoint"] == ["/bin/sh", f"{MOUNTED_AT}/start.sh"]
    assert rabbitmq["command"] == ["rabbitmq-server"]
    mounts = [
        v if isinstance(v, str) else f"{v['source']}:{v['target']}" for v in rabbitmq["volumes"]
    ]
    assert any(
        m.split(":")[1] == MOUNTED_AT and Path(m.split(":")[0]) == RABBITMQ_DIR for m in mounts
    )


def test_start_sh_writes_the_user_and_its_permissions_from_the_environment(
    tmp_path: Path,
) -> None:
    out = tmp_path / "definitions"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    entrypoint = bin_dir / "docker-entrypoint.sh"
    entrypoint.write_text('#!/bin/sh\necho "entrypoint $*"\n')
    entrypoint.chmod(0o755)
    password = 'pa"ss\\word'
    result = subprocess.run(
        ["sh", str(START), "rabbitmq-server"],
        env={
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "RABBITMQ_DEFAULT_USER": "subtone",
            "RABBITMQ_DEFAULT_PASS": password,
            "DEFINITIONS_DIR": str(out),
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "entrypoint rabbitmq-server\n"
    assert sorted(p.name for p in out.iterdir()) == ["10-subtone.json", "20-users.json"]
    assert json.loads((out / "10-subtone.json").read_text()) == definitions()
    users = out / "20-users.json"
    assert users.stat().st_mode & 0o077 == 0, "the password file is readable by others"
    written = json.loads(users.read_text())
    assert written["users"] == [
        {"name": "subtone", "password": password, "tags": ["administrator"]}
    ]
    assert written["permissions"] == [
        {"user": "subtone", "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"}
    ]


def test_start_sh_refuses_to_start_without_the_password(tmp_path: Path) -> None:
    result = subprocess.run(
        ["sh", str(START), "rabbitmq-server"],
        env={
            "PATH": os.environ["PATH"],
            "RABBITMQ_DEFAULT_USER": "subtone",
            "DEFINITIONS_DIR": str(tmp_path),
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert not list(tmp_path.iterdir())


# --- on the machine's RabbitMQ ---------------------------------------------------------------


def rabbitmqctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["rabbitmqctl", "-q", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _broker_answers() -> bool:
    try:
        socket.create_connection(AMQP, timeout=2).close()
    except OSError:
        return False
    return True


@pytest.fixture
def loaded_vhost() -> Iterator[Any]:
    """Load a definitions document into a fresh vhost of the machine's broker; delete it after.

    ``rabbitmqctl import_definitions`` is global, so the document is rewritten to name only the
    fresh vhost (its queues, and the permissions of the machine's guest user on it).
    """
    if not _broker_answers():
        # As the rest of the suite does (tests/worker): a service, started by the machine.
        pytest.skip(f"no RabbitMQ on {AMQP[0]}:{AMQP[1]}")
    created: list[str] = []

    def load(document: dict[str, Any]) -> str:
        vhost = f"subtone-test-defs-{uuid.uuid4().hex[:12]}"
        rewritten = {
            "vhosts": [{"name": vhost}],
            "permissions": [
                {"user": "guest", "vhost": vhost, "configure": ".*", "write": ".*", "read": ".*"}
            ],
            "queues": [{**q, "vhost": vhost} for q in document["queues"]],
        }
        created.append(vhost)
        # rabbitmqctl runs as the rabbitmq user: the file must be readable by others (it holds
        # no secret), in a folder they may enter.
        readable = Path(tempfile.mkdtemp(prefix="subtone-defs-"))
        try:
            readable.chmod(0o755)
            path = readable / "definitions.json"
            path.write_text(json.dumps(rewritten))
            path.chmod(0o644)
            result = rabbitmqctl("import_definitions", str(path))
        finally:
            shutil.rmtree(readable)
        assert result.returncode == 0, result.stdout + result.stderr
        return vhost

    try:
        yield load
    finally:
        for vhost in created:
            rabbitmqctl("delete_vhost", vhost)


def declare_through_dramatiq(vhost: str) -> RabbitmqBroker:
    url = f"amqp://guest:guest@{AMQP[0]}:{AMQP[1]}/{quote(vhost, safe='')}"
    settings = compose_settings(BROKER_URL=url)
    broker = build_broker(settings)
    try:
        broker.declare_queue(settings.QUEUE_NAME, ensure=True)
    except BaseException:
        broker.close()
        raise
    return broker


@pytest.mark.integration
def test_dramatiq_declares_its_queues_over_the_loaded_definitions(loaded_vhost: Any) -> None:
    vhost = loaded_vhost(definitions())
    broker = declare_through_dramatiq(vhost)
    try:
        for queue in definitions()["queues"]:
            broker.channel.queue_declare(queue=queue["name"], passive=True)
    finally:
        broker.close()


@pytest.mark.integration
def test_rabbitmq_refuses_dramatiq_over_definitions_with_other_arguments(
    loaded_vhost: Any,
) -> None:
    """The check above can fail: a queue defined with other arguments is refused."""
    document = copy.deepcopy(definitions())
    for queue in document["queues"]:
        if queue["name"].endswith(".XQ"):
            queue["arguments"]["x-message-ttl"] += 1
    vhost = loaded_vhost(document)
    with pytest.raises(ConnectionClosed) as refused:
        declare_through_dramatiq(vhost)
    assert "PRECONDITION_FAILED" in str(refused.value)
