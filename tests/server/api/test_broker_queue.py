"""The API's sending side of the queue on the machine's RabbitMQ (a queue of its own, deleted)."""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator

import pytest
from dramatiq.common import dq_name, xq_name

from server.integrations.broker import (
    RUN_JOB_ACTOR,
    BrokerQueue,
    QueueUnavailable,
    build_broker,
)
from server.settings import Settings

pytestmark = pytest.mark.integration

BROKER_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
DOWN_URL = "amqp://guest:guest@127.0.0.1:1/%2F"


def _rabbit_answers() -> bool:
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex(("127.0.0.1", 5672)) == 0


@pytest.fixture
def queue_name() -> str:
    return f"subtone-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def queue(queue_name: str) -> Iterator[BrokerQueue]:
    if not _rabbit_answers():
        pytest.skip("no RabbitMQ on 127.0.0.1:5672")
    broker = build_broker(Settings(BROKER_URL=BROKER_URL, QUEUE_NAME=queue_name))
    sender = BrokerQueue(broker, queue_name)
    yield sender
    for name in (queue_name, dq_name(queue_name), xq_name(queue_name)):
        broker.channel.queue_delete(name)
    sender.close()


def test_a_job_id_is_sent_to_run_job_on_our_queue(queue: BrokerQueue, queue_name: str) -> None:
    queue.ping()
    assert queue.queue_depth() == 0
    queue.enqueue("job_abcdefghijkl")
    assert queue.queue_depth() == 1
    broker = queue._broker
    method, _, body = broker.channel.basic_get(queue_name, auto_ack=True)
    assert method is not None
    message = json.loads(body)
    assert message["actor_name"] == RUN_JOB_ACTOR
    assert message["queue_name"] == queue_name
    assert message["args"] == ["job_abcdefghijkl"]


def test_an_unreachable_broker_is_queue_unavailable(queue_name: str) -> None:
    sender = BrokerQueue(
        build_broker(Settings(BROKER_URL=DOWN_URL, QUEUE_NAME=queue_name)), queue_name
    )
    try:
        with pytest.raises(QueueUnavailable):
            sender.enqueue("job_abcdefghijkl")
        with pytest.raises(QueueUnavailable):
            sender.ping()
    finally:
        sender.close()
