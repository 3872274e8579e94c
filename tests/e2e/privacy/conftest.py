"""The standalone stack on a RabbitMQ vhost of its own whose every message is recorded.

RabbitMQ's firehose tracer (``rabbitmqctl trace_on -p VHOST``, a setting of that vhost only)
copies every message published to or delivered from any queue of the vhost to the
``amq.rabbitmq.trace`` exchange; a queue bound there keeps the copies for the test to read.
The vhost (with its trace and queue) is deleted afterwards; no other vhost is touched.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pika
import pytest

from tests.e2e.conftest import Stack, _start

TRACE_EXCHANGE = "amq.rabbitmq.trace"
TRACE_QUEUE = "privacy-firehose"


@dataclass
class Recorder:
    """The trace queue on the vhost; :meth:`drain` returns every message copied so far."""

    url: str
    bodies: list[bytes] = field(default_factory=list)
    headers: list[str] = field(default_factory=list)

    def drain(self) -> list[bytes]:
        connection = pika.BlockingConnection(pika.URLParameters(self.url))
        try:
            channel = connection.channel()
            while True:
                method, properties, body = channel.basic_get(TRACE_QUEUE, auto_ack=True)
                if method is None:
                    break
                self.bodies.append(body)
                self.headers.append(repr(properties.headers))
        finally:
            connection.close()
        return self.bodies


def _ctl(*args: str, check: bool = True) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=check, capture_output=True)


@pytest.fixture(scope="session")
def traced_vhost() -> Iterator[Recorder]:
    name = f"subtone-privacy-{uuid.uuid4().hex[:10]}"
    _ctl("add_vhost", name)
    try:
        _ctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        _ctl("trace_on", "-p", name)
        url = f"amqp://guest:guest@127.0.0.1:5672/{name}"
        connection = pika.BlockingConnection(pika.URLParameters(url))
        try:
            channel = connection.channel()
            channel.queue_declare(TRACE_QUEUE, durable=False, auto_delete=False)
            channel.queue_bind(TRACE_QUEUE, TRACE_EXCHANGE, routing_key="#")
        finally:
            connection.close()
        yield Recorder(url)
    finally:
        _ctl("trace_off", "-p", name, check=False)
        _ctl("delete_vhost", name, check=False)


@pytest.fixture(scope="session")
def traced_stack(
    tmp_path_factory: pytest.TempPathFactory, traced_vhost: Recorder
) -> Iterator[Stack]:
    yield from _start(tmp_path_factory.mktemp("privacy-stack"), traced_vhost.url)
